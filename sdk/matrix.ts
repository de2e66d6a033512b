/**
 * Types for matrix stages: one stage per combination of values.
 *
 * @module
 */

/**
 * A value a matrix dimension can take.
 *
 * @example
 * ```ts
 * import type { MatrixValue } from "deno-ci";
 *
 * const values: MatrixValue[] = ["2.1", 18, true];
 * ```
 */
export type MatrixValue = string | number | boolean;

/**
 * The dimensions of a matrix: each key lists the values it takes.
 *
 * @example
 * ```ts
 * import type { MatrixValues } from "deno-ci";
 *
 * const versions: MatrixValues = { deno: ["1.46", "2.1"], os: ["linux"] };
 * ```
 */
export type MatrixValues = Readonly<Record<string, readonly MatrixValue[]>>;

/**
 * One combination of a matrix: each dimension with one of its values.
 *
 * @example
 * ```ts
 * import type { MatrixLeg } from "deno-ci";
 *
 * const leg: MatrixLeg<{ deno: readonly ["1.46", "2.1"] }> = { deno: "2.1" };
 * ```
 */
export type MatrixLeg<M extends MatrixValues> = { readonly [K in keyof M]: M[K][number] };

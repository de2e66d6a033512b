/**
 * The builder handed to `Pipeline.parallel`.
 *
 * @module
 */

import type { MatrixLeg, MatrixValues } from "./matrix.ts";
import type { StageFn } from "./pipeline.ts";
import type { StageOptions } from "./stage_options.ts";

/**
 * Declares the stages of a parallel group. They all need the entry before the
 * group, not each other, and the entry after the group needs all of them.
 *
 * @example
 * ```ts
 * import { Pipeline, run } from "deno-ci";
 *
 * export default new Pipeline()
 *   .stage("install", () => run("deno install"))
 *   .parallel("checks", (group) => {
 *     group.stage("lint", () => run("deno lint"));
 *     group.stage("test", () => run("deno test"));
 *   })
 *   .stage("deploy", () => run("./deploy.sh")); // needs lint and test
 * ```
 */
export interface ParallelGroup {
  /** Adds a stage to the group; see `Pipeline.stage`. */
  stage(name: string, fn: StageFn): ParallelGroup;
  /** Adds a stage with options to the group; see `Pipeline.stage`. */
  stage(name: string, options: StageOptions, fn: StageFn): ParallelGroup;
  /** Adds every leg of a matrix to the group; see `Pipeline.matrix`. */
  matrix<const M extends MatrixValues>(
    name: string,
    values: M,
    fn: (leg: MatrixLeg<M>) => unknown,
  ): ParallelGroup;
  /** Adds every leg of a matrix with options to the group; see `Pipeline.matrix`. */
  matrix<const M extends MatrixValues>(
    name: string,
    values: M,
    options: StageOptions,
    fn: (leg: MatrixLeg<M>) => unknown,
  ): ParallelGroup;
}

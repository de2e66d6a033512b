/**
 * Read access to the stage's environment variables.
 *
 * @module
 */

/**
 * Read-only view of the environment; see {@linkcode env}.
 *
 * @example
 * ```ts
 * import { type Env, env } from "deno-ci";
 *
 * function registry(source: Env): string {
 *   return source.get("REGISTRY") ?? "registry.example.com";
 * }
 * console.log(registry(env));
 * ```
 */
export interface Env {
  /** Returns the variable's value, or `undefined` when it is not set. */
  get(name: string): string | undefined;
  /**
   * Returns the variable's value.
   *
   * @throws {Deno.errors.NotFound} When the variable is not set.
   */
  require(name: string): string;
  /** Tells whether the variable is set. */
  has(name: string): boolean;
  /** Returns every variable the stage may read. */
  toObject(): Record<string, string>;
}

/**
 * The environment of the running stage: the stage's `env` option, its
 * `secrets` and the platform's `DENO_CI_*` variables.
 *
 * Reading needs the stage's `env` permission (granted by default). Pipeline
 * files are planned with no permissions, so read variables inside stage
 * functions, not at the top level of the file.
 *
 * @example Use a secret
 * ```ts
 * import { env, Pipeline, run } from "deno-ci";
 *
 * export default new Pipeline()
 *   .stage("publish", { secrets: ["NPM_TOKEN"] }, async () => {
 *     await run(["npm", "publish"], { env: { NODE_AUTH_TOKEN: env.require("NPM_TOKEN") } });
 *   });
 * ```
 */
export const env: Env = Object.freeze({
  get(name: string): string | undefined {
    return guarded(name, () => Deno.env.get(name));
  },
  require(name: string): string {
    const value = guarded(name, () => Deno.env.get(name));
    if (value === undefined) {
      throw new Deno.errors.NotFound(
        `Cannot read environment variable '${name}': it is not set; declare it in the stage's env or secrets option`,
      );
    }
    return value;
  },
  has(name: string): boolean {
    return guarded(name, () => Deno.env.has(name));
  },
  toObject(): Record<string, string> {
    return guarded("*", () => Deno.env.toObject());
  },
});

function guarded<T>(name: string, read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (!(error instanceof Deno.errors.NotCapable)) throw error;
    throw new Deno.errors.NotCapable(
      `Cannot read environment variable '${name}': the stage has no env permission for it (pipeline files are planned with no permissions, so read variables inside stage functions)`,
    );
  }
}

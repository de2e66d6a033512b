/**
 * Which run this is.
 *
 * @module
 */

import { readEnvIfAllowed } from "./_env.ts";

/**
 * The platform's identifier of the current run, from the `DENO_CI_RUN_ID`
 * environment variable; empty when the stage runs outside the platform.
 *
 * @example Tag a build with the run
 * ```ts
 * import { Pipeline, run, runId } from "deno-ci";
 *
 * export default new Pipeline()
 *   .stage("image", async () => {
 *     await run(["docker", "build", "-t", `app:run-${runId}`, "."]);
 *   });
 * ```
 */
export const runId: string = readEnvIfAllowed("DENO_CI_RUN_ID") ?? "";

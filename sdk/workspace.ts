/**
 * Where the repository is checked out.
 *
 * @module
 */

import { readEnvIfAllowed } from "./_env.ts";

/**
 * The absolute path of the checkout the stage runs in, from the
 * `DENO_CI_WORKSPACE` environment variable, or the current directory when it
 * is unset (running a stage locally).
 *
 * @example Read a file of the repository
 * ```ts
 * import { Pipeline, workspace } from "deno-ci";
 *
 * export default new Pipeline()
 *   .stage("version", async () => {
 *     const config = await Deno.readTextFile(`${workspace}/deno.json`);
 *     console.log(JSON.parse(config).version);
 *   });
 * ```
 */
export const workspace: string = readEnvIfAllowed("DENO_CI_WORKSPACE") || Deno.cwd();

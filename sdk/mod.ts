/**
 * The pipeline SDK of Deno CI. A repository's `deno-pipeline.ts` imports it
 * as `"deno-ci"` and exports a {@linkcode Pipeline} as default:
 *
 * ```ts
 * import { Pipeline, run } from "deno-ci";
 *
 * export default new Pipeline()
 *   .stage("lint", () => run("deno lint"))
 *   .stage("test", () => run(["deno", "test", "--allow-read"]))
 *   .stage("deploy", { branches: ["main"], secrets: ["DEPLOY_TOKEN"] }, () => run("./deploy.sh"));
 * ```
 *
 * Each stage runs in a sandboxed Deno process of its own, which imports the
 * pipeline file again and calls only that stage's function. Reusable sets of
 * stages live in `"deno-ci/templates"`; a team's own templates are ordinary
 * modules exporting a function that takes a `Pipeline`.
 *
 * Importing this module also installs the legacy `Deno.run` (removed in
 * Deno 2) so that Deno 1 pipeline files run unchanged; see `deno_run.ts`.
 *
 * @module
 */

import "./deno_run.ts";

export * from "./artifacts.ts";
export * from "./command_error.ts";
export type * from "./deploy.ts";
export * from "./env.ts";
export { event, type EventKind, type PullRequest, type TriggerEvent } from "./event.ts";
export type * from "./matrix.ts";
export type * from "./parallel.ts";
export * from "./pipeline.ts";
export * from "./run.ts";
export * from "./run_id.ts";
export type * from "./stage_options.ts";
export * from "./workspace.ts";

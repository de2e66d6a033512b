/**
 * Reusable sets of stages, imported as `"deno-ci/templates"`.
 *
 * A template is a function that takes a {@linkcode Pipeline} and adds stages
 * to it. A team writes its own the same way, as an ordinary module in its
 * repository, and imports it from `deno-pipeline.ts` by relative path:
 *
 * ```ts
 * // ci/docker.ts
 * import { type Pipeline, run, runId } from "deno-ci";
 *
 * export interface DockerImageOptions {
 *   image: string;
 *   branches?: string[];
 * }
 *
 * export function dockerImage(pipeline: Pipeline, options: DockerImageOptions): Pipeline {
 *   const tag = `${options.image}:run-${runId}`;
 *   pipeline.stage("image", { branches: options.branches ?? ["main"] }, async () => {
 *     await run(["docker", "build", "-t", tag, "."]);
 *     await run(["docker", "push", tag]);
 *   });
 *   return pipeline;
 * }
 * ```
 *
 * ```ts ignore
 * // deno-pipeline.ts
 * import { Pipeline } from "deno-ci";
 * import { denoLibrary } from "deno-ci/templates";
 * import { dockerImage } from "./ci/docker.ts";
 *
 * const pipeline = new Pipeline();
 * denoLibrary(pipeline);
 * dockerImage(pipeline, { image: "registry.example.com/app" });
 * export default pipeline;
 * ```
 *
 * Stages a template adds report the line of the template's call in the
 * pipeline file when a template of this package declares them, and the line
 * inside the team's template module otherwise.
 *
 * @module
 */

export * from "./deno_library.ts";

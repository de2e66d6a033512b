/**
 * Passing files from one stage to a later one.
 *
 * @module
 */

import { sendControlEvent } from "./_control.ts";
import { workspace } from "./workspace.ts";

const ARTIFACT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * Publishes files as an artifact named `name`. The platform collects them
 * after the stage succeeds (nothing is collected from a failed stage) and
 * places them under `.deno-ci/artifacts/<name>/` in the workspace of every
 * later stage that needs this one; see {@linkcode artifactPath}.
 *
 * @param name Letters, digits, `.`, `_` and `-`; unique within the run.
 * @param paths Files or directories, relative to the workspace.
 *
 * @throws {TypeError} When the name or a path is not acceptable.
 *
 * @example
 * ```ts
 * import { Pipeline, publishArtifact, run } from "deno-ci";
 *
 * export default new Pipeline()
 *   .stage("build", async () => {
 *     await run("deno task build");
 *     publishArtifact("site", ["dist"]);
 *   });
 * ```
 */
export function publishArtifact(name: string, paths: readonly string[]): void {
  checkName(name);
  if (!Array.isArray(paths) || paths.length === 0) {
    throw new TypeError(`Cannot publish artifact '${name}': give at least one path`);
  }
  for (const path of paths) {
    if (
      typeof path !== "string" || path === "" || path.startsWith("/") ||
      path.split("/").includes("..")
    ) {
      throw new TypeError(
        `Cannot publish artifact '${name}': path ${
          JSON.stringify(path)
        } must be relative to the workspace and stay inside it`,
      );
    }
  }
  if (!sendControlEvent({ type: "artifact", name, paths: [...paths] })) {
    console.error(
      `deno-ci: artifact '${name}' not published: this stage is not running under the platform`,
    );
  }
}

/**
 * Returns the absolute path of an artifact published by an earlier stage:
 * `<workspace>/.deno-ci/artifacts/<name>`. The stage must need (directly or
 * not) the stage that published it, so that the platform places it there.
 *
 * Needs read permission for the artifact's folder.
 *
 * @throws {Deno.errors.NotFound} When the artifact is not there.
 *
 * @example
 * ```ts
 * import { artifactPath, Pipeline, run } from "deno-ci";
 *
 * export default new Pipeline()
 *   .stage("build", () => run("deno task build"))
 *   .stage("deploy", { needs: ["build"] }, async () => {
 *     await run(["./deploy.sh", artifactPath("site")]);
 *   });
 * ```
 */
export function artifactPath(name: string): string {
  checkName(name);
  const path = `${workspace}/.deno-ci/artifacts/${name}`;
  try {
    Deno.statSync(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    throw new Deno.errors.NotFound(
      `Cannot find artifact '${name}' at '${path}': no stage this one needs published it, or that stage has not run`,
    );
  }
  return path;
}

function checkName(name: string): void {
  if (typeof name !== "string" || !ARTIFACT_NAME.test(name)) {
    throw new TypeError(
      `Artifact name ${
        JSON.stringify(name)
      } must start with a letter or digit and hold only letters, digits, '.', '_' and '-'`,
    );
  }
}

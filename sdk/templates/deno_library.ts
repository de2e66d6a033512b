/**
 * The stages every Deno library needs.
 *
 * @module
 */

import { publishArtifact } from "../artifacts.ts";
import type { Pipeline } from "../pipeline.ts";
import { run } from "../run.ts";
import type { StageOptions } from "../stage_options.ts";

// The platform places earlier stages' artifacts under .deno-ci/ in the
// workspace; they are not the library's code.
const IGNORE = "--ignore=.deno-ci";
// The platform reads JUnit XML and LCOV files from here after a stage ends,
// passed or failed, and shows them on the run's page.
const REPORTS = ".deno-ci/reports";

/**
 * Options for {@linkcode denoLibrary}.
 *
 * @example
 * ```ts
 * import type { DenoLibraryOptions } from "deno-ci/templates";
 *
 * const options: DenoLibraryOptions = { entryPoints: ["mod.ts"], testArgs: ["--allow-read"], prefix: "core:" };
 * ```
 */
export interface DenoLibraryOptions {
  /** Modules to type-check; `["mod.ts"]` by default. */
  entryPoints?: readonly string[];
  /** Extra arguments for `deno test`, such as `["--allow-read"]`. */
  testArgs?: readonly string[];
  /** Where `deno test` writes raw coverage; `"coverage"` by default. */
  coverageDir?: string;
  /** Put before every stage name, so two libraries can share a pipeline; `""` by default. */
  prefix?: string;
  /** Options every stage of the template gets, such as `branches` or `paths`. */
  stageOptions?: Omit<StageOptions, "needs">;
}

/**
 * Adds the stages of a Deno library to `pipeline`: a parallel group `checks`
 * with `fmt` (`deno fmt --check`), `lint` (`deno lint`) and `check`
 * (`deno check` on the entry points), then `test`, which runs
 * `deno test --coverage`, turns the coverage into `coverage.lcov` and
 * publishes it as the artifact `coverage`. The test results (JUnit XML) and
 * the coverage are also written under `.deno-ci/reports/`, where the platform
 * reads them to show the run's tests and coverage. The platform's `.deno-ci/` folder
 * is left out of formatting, linting and tests.
 *
 * Returns the pipeline, so more stages can follow; they run after `test`.
 *
 * @example
 * ```ts
 * import { Pipeline, run } from "deno-ci";
 * import { denoLibrary } from "deno-ci/templates";
 *
 * export default denoLibrary(new Pipeline(), { entryPoints: ["mod.ts", "cli.ts"], testArgs: ["--allow-read"] })
 *   .stage("publish", { tags: ["v*"] }, () => run("deno publish"));
 * ```
 */
export function denoLibrary(pipeline: Pipeline, options: DenoLibraryOptions = {}): Pipeline {
  const prefix = options.prefix ?? "";
  const shared = options.stageOptions ?? {};
  const entryPoints = options.entryPoints ?? ["mod.ts"];
  const coverageDir = options.coverageDir ?? "coverage";

  pipeline.parallel(`${prefix}checks`, (group) => {
    group.stage(`${prefix}fmt`, shared, () => run(["deno", "fmt", "--check", IGNORE]));
    group.stage(`${prefix}lint`, shared, () => run(["deno", "lint", IGNORE]));
    group.stage(`${prefix}check`, shared, () => run(["deno", "check", ...entryPoints]));
  });
  pipeline.stage(`${prefix}test`, shared, async () => {
    await run([
      "deno",
      "test",
      IGNORE,
      `--coverage=${coverageDir}`,
      `--junit-path=${REPORTS}/junit.xml`,
      ...(options.testArgs ?? []),
    ]);
    await run(["deno", "coverage", "--lcov", "--output=coverage.lcov", coverageDir]);
    await Deno.mkdir(REPORTS, { recursive: true });
    await Deno.copyFile("coverage.lcov", `${REPORTS}/coverage.lcov`);
    publishArtifact(`${prefix.replace(/[^A-Za-z0-9._-]/g, "-")}coverage`, ["coverage.lcov"]);
  });
  return pipeline;
}

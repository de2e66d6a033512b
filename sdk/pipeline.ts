/**
 * The pipeline: the stages of a run and the order they run in.
 *
 * @module
 */

import { callerLocation, type SourceLocation } from "./_location.ts";
import { checkMatrixValues, expandMatrix, legName } from "./_matrix.ts";
import {
  type CollectionRecord,
  createState,
  type PipelineState,
  type StageRecord,
  stateOf,
} from "./_model.ts";
import type { MatrixLeg, MatrixValues } from "./matrix.ts";
import type { ParallelGroup } from "./parallel.ts";
import type { StageOptions } from "./stage_options.ts";
import { type DeployOptions, splitDeployOptions } from "./deploy.ts";

/**
 * The work of a stage. It may return a promise, which is awaited; the stage
 * fails if the function throws or the promise rejects.
 *
 * @example A stage function kept in a variable
 * ```ts
 * import { Pipeline, run, type StageFn } from "deno-ci";
 *
 * const test: StageFn = () => run("deno test");
 * export default new Pipeline().stage("test", test);
 * ```
 */
export type StageFn = () => unknown;

/** When a pipeline's notification fires: the run's outcome, or `fixed` for a pass after a failure. */
export type NotifyEvent = "failure" | "success" | "fixed" | "cancelled" | "always";

const NOTIFY_EVENTS: string[] = ["failure", "success", "fixed", "cancelled", "always"];

/** A notification a pipeline asks for with {@linkcode Pipeline.prototype.notify}. */
export interface NotificationRule {
  /** The outcomes that send it. */
  on: NotifyEvent[];
  /** A channel configured in the project's notification settings, by name or kind. */
  channel: string;
  /** For email channels: one recipient, a project member or an address the channel lists. */
  to?: string;
}

/** Pipeline-wide settings, given to `new Pipeline(options)`. */
export interface PipelineOptions {
  /** `{ cancelInProgress: true }` makes a newer run of a branch cancel the older one still going. */
  concurrency?: { cancelInProgress: boolean };
}

/**
 * The stages of a pipeline file. A `deno-pipeline.ts` creates one and exports
 * it as default.
 *
 * Ordering: every call to {@linkcode Pipeline.stage},
 * {@linkcode Pipeline.parallel} or {@linkcode Pipeline.matrix} adds an entry,
 * and each entry needs every stage of the entry before it, so stages declared
 * one after another run one after another. The stages of a parallel group or a
 * matrix run side by side. A stage that lists `needs` explicitly needs exactly
 * those (stages, groups or matrices by name), which turns the pipeline into
 * any graph without cycles.
 *
 * Declaring stages never throws: mistakes such as duplicate names are
 * collected and reported, all at once, when the platform plans the run.
 *
 * @example The sequential pipeline of the requirements document
 * ```ts
 * import { Pipeline, run } from "deno-ci";
 *
 * export default new Pipeline()
 *   .stage("Build", () => run("deno bundle main.ts"))
 *   .stage("Test", () => run("deno test"))
 *   .stage("Deploy", { branches: ["main"] }, () => run("./deploy-script.sh"));
 * ```
 *
 * @example A graph: docs build alongside the tests, deploy waits for both
 * ```ts
 * import { Pipeline, run } from "deno-ci";
 *
 * export default new Pipeline()
 *   .stage("build", () => run("deno task build"))
 *   .stage("test", () => run("deno test"))
 *   .stage("docs", { needs: ["build"] }, () => run("deno task docs"))
 *   .stage("deploy", { needs: ["test", "docs"] }, () => run("deno task deploy"));
 * ```
 */
export class Pipeline {
  /**
   * Creates an empty pipeline.
   *
   * @param options Pipeline-wide settings, such as `concurrency`.
   *
   * @example
   * ```ts
   * import { Pipeline } from "deno-ci";
   *
   * // A push to a branch cancels that branch's older run if it is still going.
   * export default new Pipeline({ concurrency: { cancelInProgress: true } });
   * ```
   */
  constructor(options: PipelineOptions = {}) {
    const state = createState(this, callerLocation());
    const concurrency = options.concurrency;
    if (concurrency !== undefined) {
      if (typeof concurrency?.cancelInProgress !== "boolean") {
        state.problems.push({
          message:
            "Option 'concurrency' must be { cancelInProgress: true } or { cancelInProgress: false }",
          location: state.location,
        });
      } else {
        state.concurrency = { cancelInProgress: concurrency.cancelInProgress };
      }
    }
  }

  /**
   * Asks the platform to notify a channel when a run ends in one of `rule.on`.
   *
   * `channel` names a channel configured in the project's notification settings (by
   * its name or kind); the platform refuses channels the project has not set up, so a
   * pipeline cannot send run details anywhere it likes. `to` is an email address,
   * accepted only for project members or addresses the channel lists.
   *
   * @example
   * ```ts
   * import { Pipeline, run } from "deno-ci";
   *
   * export default new Pipeline()
   *   .notify({ on: ["failure", "fixed"], channel: "slack" })
   *   .stage("test", () => run("deno test"));
   * ```
   */
  notify(rule: NotificationRule): this {
    const state = stateOf(this)!;
    const location = callerLocation();
    const events = Array.isArray(rule?.on) ? rule.on : [];
    const unknown = events.filter((word) => !NOTIFY_EVENTS.includes(word));
    if (
      events.length === 0 || unknown.length > 0 || typeof rule.channel !== "string" ||
      rule.channel === ""
    ) {
      state.problems.push({
        message: `notify() needs 'on' (a list of ${
          NOTIFY_EVENTS.map((word) => `'${word}'`).join(", ")
        }) ` +
          `and a 'channel' name${
            unknown.length
              ? `; unknown: ${unknown.map((word) => `'${word}'`).join(", ")}`
              : ""
          }`,
        location,
      });
      return this;
    }
    state.notifications.push({
      on: [...events],
      channel: rule.channel,
      ...(rule.to ? { to: rule.to } : {}),
    });
    return this;
  }

  /**
   * Adds a stage that runs after the previous entry, or after its `needs`.
   *
   * @param name Unique within the pipeline; shown in the run's page.
   * @param fn The stage's work, run in a sandboxed Deno process of its own.
   *
   * @example
   * ```ts
   * import { Pipeline, run } from "deno-ci";
   *
   * export default new Pipeline()
   *   .stage("test", async () => {
   *     await run(["deno", "test", "--allow-read"]);
   *   })
   *   .stage("release", { tags: ["v*"], secrets: ["JSR_TOKEN"] }, async () => {
   *     await run("deno publish");
   *   });
   * ```
   */
  stage(name: string, fn: StageFn): this;
  /**
   * Adds a stage with options; see {@linkcode StageOptions}.
   *
   * @param name Unique within the pipeline; shown in the run's page.
   * @param options Filters, needs, permissions, timeout and the like.
   * @param fn The stage's work, run in a sandboxed Deno process of its own.
   */
  stage(name: string, options: StageOptions, fn: StageFn): this;
  stage(name: string, optionsOrFn: StageOptions | StageFn, fn?: StageFn): this {
    const state = internalState(this);
    const record = declareStage(state, name, optionsOrFn, fn, null);
    state.entries.push({ name: record.name, stages: [record] });
    return this;
  }

  /**
   * Adds a deploy stage: when it runs, the platform records the artifact
   * `options.release.artifact` of the run as a release and deploys it to
   * `options.environment` with `options.strategy`. `fn`, if given, runs
   * first in the sandbox like any stage. See {@linkcode DeployOptions}.
   *
   * @param name Unique within the pipeline; shown in the run's page.
   * @param options Where, what and how to deploy, plus the usual stage options.
   * @param fn Optional work before the deployment is created.
   *
   * @example Blue-green to staging after the build
   * ```ts
   * import { Pipeline, publishArtifact, run } from "deno-ci";
   *
   * export default new Pipeline()
   *   .stage("build", async () => {
   *     await run("deno task build");
   *     await publishArtifact("site", ["dist"]);
   *   })
   *   .deploy("staging", {
   *     environment: "staging",
   *     release: { artifact: "site" },
   *     strategy: {
   *       type: "blueGreen",
   *       previewAnalysis: [{ type: "http", path: "/health" }],
   *       keepPreviousFor: 600,
   *     },
   *   });
   * ```
   */
  deploy(name: string, options: DeployOptions, fn?: StageFn): this {
    const state = internalState(this);
    const location = callerLocation();
    const { stage, spec, problems } = splitDeployOptions(options, typeof fn === "function");
    const record = createRecord(state, name, stage, fn ?? null, location, null);
    for (const problem of problems) {
      state.problems.push({ message: `Deploy stage '${record.name}': ${problem}`, location });
    }
    if (fn !== undefined && typeof fn !== "function") {
      state.problems.push({
        message: `Deploy stage '${record.name}': the third argument must be a function`,
        location,
      });
    }
    record.deploy = spec;
    state.entries.push({ name: record.name, stages: [record] });
    return this;
  }

  /**
   * Adds a group of stages that run side by side. The group needs the
   * previous entry, its stages do not need each other, and the next entry
   * needs every stage in the group. A name lets `needs` refer to the whole
   * group; without one the group is called `parallel-1`, `parallel-2`, ...
   *
   * @example
   * ```ts
   * import { Pipeline, run } from "deno-ci";
   *
   * export default new Pipeline()
   *   .parallel("checks", (group) => {
   *     group.stage("fmt", () => run("deno fmt --check"));
   *     group.stage("lint", () => run("deno lint"));
   *   })
   *   .stage("test", () => run("deno test")); // needs fmt and lint
   * ```
   */
  parallel(build: (group: ParallelGroup) => void): this;
  /** Adds a named group of stages that run side by side. */
  parallel(name: string, build: (group: ParallelGroup) => void): this;
  parallel(
    nameOrBuild: string | ((group: ParallelGroup) => void),
    build?: (group: ParallelGroup) => void,
  ): this {
    const state = internalState(this);
    const location = callerLocation();
    const count = state.collections.filter((item) => item.kind === "parallel").length;
    const name = typeof nameOrBuild === "string" ? nameOrBuild : `parallel-${count + 1}`;
    const callback = typeof nameOrBuild === "function" ? nameOrBuild : build;
    const collection: CollectionRecord = { kind: "parallel", name, stages: [], location };
    state.collections.push(collection);

    if (typeof callback !== "function") {
      state.problems.push({
        message: `Parallel group '${name}' needs a function that declares its stages`,
        location,
      });
      return this;
    }
    callback(groupBuilder(state, collection));
    if (collection.stages.length === 0) {
      state.problems.push({ message: `Parallel group '${name}' declares no stages`, location });
    }
    state.entries.push({ name, stages: collection.stages });
    return this;
  }

  /**
   * Adds one stage per combination of the matrix's values, run side by side.
   * Each leg is named like `test (deno=2.1, os=linux)` and `fn` receives its
   * values; `needs` may name the matrix (`"test"`) to mean every leg.
   *
   * @example
   * ```ts
   * import { Pipeline, run } from "deno-ci";
   *
   * export default new Pipeline()
   *   .matrix("test", { deno: ["1.46", "2.1"], os: ["linux"] }, async (leg) => {
   *     await run(["deno", "test"], { env: { DENO_VERSION: leg.deno } });
   *   });
   * ```
   */
  matrix<const M extends MatrixValues>(
    name: string,
    values: M,
    fn: (leg: MatrixLeg<M>) => unknown,
  ): this;
  /** Adds a matrix whose legs share the given options. */
  matrix<const M extends MatrixValues>(
    name: string,
    values: M,
    options: StageOptions,
    fn: (leg: MatrixLeg<M>) => unknown,
  ): this;
  matrix(name: string, values: MatrixValues, ...rest: unknown[]): this {
    const state = internalState(this);
    const legs = declareMatrix(state, name, values, rest, null);
    state.entries.push({ name, stages: legs });
    return this;
  }
}

function internalState(pipeline: Pipeline): PipelineState {
  const state = stateOf(pipeline);
  if (!state) throw new TypeError("Cannot add a stage: 'this' is not a Pipeline");
  return state;
}

function groupBuilder(state: PipelineState, collection: CollectionRecord): ParallelGroup {
  const group: ParallelGroup = {
    stage(name: string, optionsOrFn: StageOptions | StageFn, fn?: StageFn) {
      collection.stages.push(declareStage(state, name, optionsOrFn, fn, collection.name));
      return group;
    },
    matrix(name: string, values: MatrixValues, ...rest: unknown[]) {
      collection.stages.push(...declareMatrix(state, name, values, rest, collection.name));
      return group;
    },
  } as ParallelGroup;
  return group;
}

function declareStage(
  state: PipelineState,
  name: unknown,
  optionsOrFn: unknown,
  fn: unknown,
  group: string | null,
): StageRecord {
  const location = callerLocation();
  const [options, run] = typeof optionsOrFn === "function" ? [{}, optionsOrFn] : [optionsOrFn, fn];
  const record = createRecord(state, name, options, run, location, group);
  if (typeof run !== "function") {
    state.problems.push({ message: `Stage '${record.name}' needs a function to run`, location });
  }
  return { ...record, run: typeof run === "function" ? run as StageFn : null };
}

function declareMatrix(
  state: PipelineState,
  name: unknown,
  values: unknown,
  rest: unknown[],
  group: string | null,
): StageRecord[] {
  const location = callerLocation();
  const [options, fn] = rest.length >= 2 ? rest : [{}, rest[0]];
  const base = createRecord(state, name, options, fn, location, group);
  state.collections.push({ kind: "matrix", name: base.name, stages: [], location });
  const collection = state.collections.at(-1)!;
  const problem = checkMatrixValues(values) ??
    (typeof fn === "function" ? null : "it needs a function to run for each leg");
  if (problem) {
    state.problems.push({ message: `Matrix '${base.name}': ${problem}`, location });
    return [];
  }
  for (const leg of expandMatrix(values as MatrixValues)) {
    collection.stages.push({
      ...base,
      name: legName(base.name, leg),
      run: () => (fn as (leg: unknown) => unknown)(Object.freeze({ ...leg })),
      matrix: { name: base.name, values: leg },
    });
  }
  return collection.stages;
}

const MAX_NAME_LENGTH = 200;
// C0 and C1 control characters, DEL, and the bidirectional overrides and isolates.
// deno-lint-ignore no-control-regex -- matching control characters is the point
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

function createRecord(
  state: PipelineState,
  name: unknown,
  options: unknown,
  run: unknown,
  location: SourceLocation | null,
  group: string | null,
): StageRecord {
  let checkedName = typeof name === "string" ? name.trim() : "";
  if (checkedName === "") {
    state.problems.push({
      message: `A stage needs a non-empty name, got ${describe(name)}`,
      location,
    });
    checkedName = typeof name === "string" ? name : String(name);
  } else if (UNPRINTABLE.test(checkedName)) {
    // Names appear in pages, logs and terminals, where control characters could rewrite what people see.
    state.problems.push({
      message: `Stage name ${escaped(checkedName)} contains control characters; use printable text`,
      location,
    });
  } else if (checkedName.length > MAX_NAME_LENGTH) {
    state.problems.push({
      message: `Stage name ${
        describe(name)
      } is ${checkedName.length} characters long; use at most ${MAX_NAME_LENGTH}`,
      location,
    });
  }
  let checkedOptions = options;
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    state.problems.push({
      message: `Stage '${checkedName}' options must be an object, got ${describe(options)}`,
      location,
    });
    checkedOptions = {};
  }
  return {
    name: checkedName,
    run: typeof run === "function" ? run as StageFn : null,
    options: checkedOptions as StageOptions,
    location,
    group,
    matrix: null,
  };
}

// JSON.stringify leaves the bidirectional controls as they are, and a terminal would act on them.
function escaped(name: string): string {
  return JSON.stringify(name).replace(
    /[\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g,
    (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  if (typeof value === "function") return "a function";
  return JSON.stringify(value) ?? String(value);
}

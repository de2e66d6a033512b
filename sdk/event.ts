/**
 * The event that triggered the run: a push, a pull request, a tag, a merge, a
 * schedule or a person pressing "run".
 *
 * @module
 */

import { readEnvIfAllowed } from "./_env.ts";

/**
 * What kind of thing triggered a run.
 *
 * @example
 * ```ts
 * import { type EventKind, Pipeline, run } from "deno-ci";
 *
 * const releaseEvents: EventKind[] = ["tag", "manual"];
 * export default new Pipeline().stage("release", { events: releaseEvents }, () => run("deno publish"));
 * ```
 */
export type EventKind =
  /** Commits pushed to a branch. */
  | "push"
  /** A pull (or merge) request opened or updated. */
  | "pull_request"
  /** A pull request merged into its target branch. */
  | "merge"
  /** A tag pushed. */
  | "tag"
  /** Someone started the run by hand. */
  | "manual"
  /** A scheduled run. */
  | "schedule";

/** Every {@linkcode EventKind}, in a stable order. */
export const EVENT_KINDS: readonly EventKind[] = [
  "push",
  "pull_request",
  "merge",
  "tag",
  "manual",
  "schedule",
];

/**
 * The pull request behind a `pull_request` or `merge` event.
 *
 * @example
 * ```ts
 * import { event } from "deno-ci";
 *
 * const pr = event.pullRequest;
 * if (pr) console.log(`#${pr.number}: ${pr.sourceBranch} → ${pr.targetBranch}`);
 * ```
 */
export interface PullRequest {
  /** The number the forge gave the pull request. */
  number: number;
  /** The branch the changes come from. */
  sourceBranch: string;
  /** The branch the changes go into. */
  targetBranch: string;
  /** Whether the source branch lives in a fork of the repository. */
  fork: boolean;
}

/**
 * The event that triggered a run, as the platform normalised it from the
 * forge's webhook.
 *
 * @example
 * ```ts
 * import { event, type TriggerEvent } from "deno-ci";
 *
 * function describe(trigger: TriggerEvent): string {
 *   return trigger.kind === "tag" ? `tag ${trigger.tag}` : `${trigger.kind} to ${trigger.branch}`;
 * }
 * console.log(describe(event));
 * ```
 */
export interface TriggerEvent {
  /** What happened. */
  kind: EventKind;
  /** The branch pushed to or, for pull requests, the source branch; empty when there is none. */
  branch: string;
  /** The tag pushed; empty unless `kind` is `"tag"`. */
  tag: string;
  /** The commit the run checks out. */
  commit: string;
  /** The commit the branch pointed to before a push; empty when unknown. */
  before: string;
  /** The pull request, for `pull_request` and `merge` events. */
  pullRequest: PullRequest | null;
  /** Who triggered the run. */
  author: string;
  /** The head commit's message. */
  message: string;
  /** Files changed by the event, relative to the repository root; `null` when unknown. */
  changedFiles: string[] | null;
}

/**
 * The event that triggered the current run, read from the `DENO_CI_EVENT`
 * environment variable (JSON). When there is none, a `"manual"` event with
 * empty fields.
 *
 * It is available while the pipeline file is planned too, so stages can be
 * declared conditionally; a stage's `branches`, `tags`, `events` and `paths`
 * options are usually clearer.
 *
 * @example Skip a step on pull requests from forks
 * ```ts
 * import { event, Pipeline, run } from "deno-ci";
 *
 * export default new Pipeline()
 *   .stage("e2e", async () => {
 *     if (event.pullRequest?.fork) return;
 *     await run("deno task e2e");
 *   });
 * ```
 */
export let event: TriggerEvent = readEventFromEnv();

/**
 * Replaces {@linkcode event}; the runner calls it while planning, where the
 * environment is not readable. Not exported from `mod.ts`.
 */
export function setEvent(value: TriggerEvent): void {
  event = value;
}

/**
 * Parses a trigger event from JSON, filling missing fields with empty values.
 *
 * @throws {TypeError} When the text is not a JSON object or a field has the wrong type.
 */
export function parseEvent(text: string): TriggerEvent {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new TypeError(`Cannot parse the trigger event: ${(error as Error).message}`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new TypeError("Cannot parse the trigger event: expected a JSON object");
  }
  const fields = raw as Record<string, unknown>;
  const kind = fields.kind ?? "manual";
  if (!EVENT_KINDS.includes(kind as EventKind)) {
    throw new TypeError(
      `Cannot parse the trigger event: kind ${JSON.stringify(kind)} is not one of ${
        EVENT_KINDS.join(", ")
      }`,
    );
  }
  return Object.freeze({
    kind: kind as EventKind,
    branch: stringField(fields, "branch"),
    tag: stringField(fields, "tag"),
    commit: stringField(fields, "commit"),
    before: stringField(fields, "before"),
    pullRequest: parsePullRequest(fields.pullRequest),
    author: stringField(fields, "author"),
    message: stringField(fields, "message"),
    changedFiles: parseChangedFiles(fields.changedFiles),
  });
}

function readEventFromEnv(): TriggerEvent {
  const text = readEnvIfAllowed("DENO_CI_EVENT");
  return parseEvent(text === undefined || text === "" ? "{}" : text);
}

function stringField(fields: Record<string, unknown>, name: string): string {
  const value = fields[name] ?? "";
  if (typeof value !== "string") {
    throw new TypeError(`Cannot parse the trigger event: '${name}' must be a string`);
  }
  return value;
}

function parsePullRequest(value: unknown): PullRequest | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== "object") {
    throw new TypeError("Cannot parse the trigger event: 'pullRequest' must be an object");
  }
  const fields = value as Record<string, unknown>;
  if (typeof fields.number !== "number") {
    throw new TypeError("Cannot parse the trigger event: 'pullRequest.number' must be a number");
  }
  return Object.freeze({
    number: fields.number,
    sourceBranch: stringField(fields, "sourceBranch"),
    targetBranch: stringField(fields, "targetBranch"),
    fork: fields.fork === true,
  });
}

function parseChangedFiles(value: unknown): string[] | null {
  if (value === undefined || value === null) return null;
  if (!Array.isArray(value) || !value.every((item) => typeof item === "string")) {
    throw new TypeError("Cannot parse the trigger event: 'changedFiles' must be a list of strings");
  }
  return Object.freeze([...value]) as string[];
}

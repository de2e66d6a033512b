// Whether a stage's filters select it for an event.

import { matchGlobList } from "./_glob.ts";
import type { NormalisedOptions } from "./_options.ts";
import type { TriggerEvent } from "./event.ts";

/** Returns why the stage is skipped for the event, or `null` when it is selected. */
export function skipReason(options: NormalisedOptions, event: TriggerEvent): string | null {
  return eventReason(options, event) ?? refReason(options, event) ?? pathReason(options, event);
}

/** The branch that `branches` is matched against: a pull request's target branch. */
export function filteredBranch(event: TriggerEvent): string {
  if (event.kind === "pull_request" && event.pullRequest?.targetBranch) {
    return event.pullRequest.targetBranch;
  }
  return event.branch;
}

function eventReason(options: NormalisedOptions, event: TriggerEvent): string | null {
  if (options.events === null || options.events.includes(event.kind)) return null;
  return `event '${event.kind}' is not one of events ${list(options.events)}`;
}

function refReason(options: NormalisedOptions, event: TriggerEvent): string | null {
  const { branches, tags } = options;
  if (branches === null && tags === null) return null;
  const branch = filteredBranch(event);
  const branchMatches = branches !== null && branch !== "" && matchGlobList(branch, branches);
  const tagMatches = tags !== null && event.tag !== "" && matchGlobList(event.tag, tags);
  if (branchMatches || tagMatches) return null;
  const reasons = [];
  if (branches !== null) {
    reasons.push(
      branch === ""
        ? `the event has no branch to match branches ${list(branches)}`
        : `branch '${branch}' does not match branches ${list(branches)}`,
    );
  }
  if (tags !== null) {
    reasons.push(
      event.tag === ""
        ? `the event has no tag to match tags ${list(tags)}`
        : `tag '${event.tag}' does not match tags ${list(tags)}`,
    );
  }
  return reasons.join(" and ");
}

function pathReason(options: NormalisedOptions, event: TriggerEvent): string | null {
  if (options.paths === null || event.changedFiles === null) return null;
  const patterns = options.paths;
  if (event.changedFiles.some((file) => matchGlobList(file, patterns))) return null;
  return `no changed file matches paths ${list(patterns)}`;
}

function list(items: readonly string[]): string {
  return JSON.stringify(items);
}

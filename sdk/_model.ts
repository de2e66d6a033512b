// What a Pipeline records as its file is evaluated.
//
// The records live in a WeakMap rather than on the Pipeline object so that an
// author's editor shows only the public methods. Declaration problems are
// recorded, not thrown, so that planning can report all of them at once.

import type { DeploySpec } from "./deploy.ts";
import type { SourceLocation } from "./_location.ts";
import type { MatrixValue } from "./matrix.ts";
import type { StageOptions } from "./stage_options.ts";

/** One stage as declared; a matrix leg is a stage of its own. */
export interface StageRecord {
  name: string;
  /** The stage function bound to its matrix leg; `null` when none was given. */
  run: (() => unknown) | null;
  options: StageOptions;
  location: SourceLocation | null;
  group: string | null;
  matrix: { name: string; values: Record<string, MatrixValue> } | null;
  /** The deployment a deploy stage asks for; absent for other stages. */
  deploy?: DeploySpec;
}

/** A named set of stages that `needs` may refer to: a parallel group or a matrix. */
export interface CollectionRecord {
  kind: "parallel" | "matrix";
  name: string;
  stages: StageRecord[];
  location: SourceLocation | null;
}

/** A top-level entry; each implicitly needs every stage of the one before. */
export interface EntryRecord {
  name: string;
  stages: StageRecord[];
}

/** A mistake found while the pipeline file declared its stages. */
export interface DeclarationProblem {
  message: string;
  location: SourceLocation | null;
}

/** Everything one Pipeline recorded. */
export interface PipelineState {
  location: SourceLocation | null;
  entries: EntryRecord[];
  collections: CollectionRecord[];
  problems: DeclarationProblem[];
  /** Whether a newer run of the same branch cancels this one while it is queued or running. */
  concurrency: { cancelInProgress: boolean } | null;
  /** Notifications the pipeline asks for, in the platform's plan format. */
  notifications: { on: string[]; channel: string; to?: string }[];
}

const states = new WeakMap<object, PipelineState>();

/**
 * Every state created in this process, newest last, so that the runner can
 * still report declaration problems when the pipeline file threw before
 * exporting its Pipeline.
 */
export const createdStates: PipelineState[] = [];

/** Creates and registers the state of a new Pipeline. */
export function createState(owner: object, location: SourceLocation | null): PipelineState {
  const state: PipelineState = {
    location,
    entries: [],
    collections: [],
    problems: [],
    concurrency: null,
    notifications: [],
  };
  states.set(owner, state);
  createdStates.push(state);
  return state;
}

/** Returns the state of a Pipeline, or `undefined` for any other object. */
export function stateOf(owner: unknown): PipelineState | undefined {
  return typeof owner === "object" && owner !== null ? states.get(owner) : undefined;
}

/** Returns every stage in declaration order. */
export function allStages(state: PipelineState): StageRecord[] {
  return state.entries.flatMap((entry) => entry.stages);
}

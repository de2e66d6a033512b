// The plan: every stage with its effective needs, options, flags and whether
// the triggering event selects it, or the problems that prevent a plan.

import { skipReason } from "./_filters.ts";
import type { SourceLocation } from "./_location.ts";
import { allStages, type PipelineState, type StageRecord } from "./_model.ts";
import { type NormalisedOptions, normaliseOptions } from "./_options.ts";
import { denoFlags } from "./_permissions.ts";
import type { DeploySpec } from "./deploy.ts";
import type { TriggerEvent } from "./event.ts";
import type { MatrixValue } from "./matrix.ts";

/** A problem with the pipeline file, as the runner reports it. */
export interface PlanError {
  file: string;
  line: number | null;
  column: number | null;
  message: string;
}

/** One stage of the plan; see the runner protocol in README.md. */
export interface PlannedStage {
  name: string;
  index: number;
  needs: string[];
  file: string | null;
  line: number | null;
  column: number | null;
  group: string | null;
  matrix: Record<string, MatrixValue> | null;
  matrixName: string | null;
  options: NormalisedOptions;
  denoFlags: string[];
  selected: boolean;
  skipReason: string | null;
  /** The deployment spec of a deploy stage, `null` for other stages. */
  deploy: DeploySpec | null;
}

/** The runner's `plan` output. */
export interface Plan {
  stages: PlannedStage[];
  errors: PlanError[];
  /** `new Pipeline({ concurrency })`, or null. */
  concurrency?: { cancelInProgress: boolean } | null;
  /** The rules given to `pipeline.notify(...)`. */
  notifications?: { on: string[]; channel: string; to?: string }[];
}

interface Node {
  record: StageRecord;
  options: NormalisedOptions;
  needs: number[];
}

/**
 * Builds the plan of a pipeline. With `event`, each stage's filters are
 * evaluated; a stage that needs a skipped stage is skipped too. Any error
 * empties `stages`.
 */
export function buildPlan(
  state: PipelineState,
  event: TriggerEvent | null,
  pipelineFile: string,
): Plan {
  const errors = new ErrorList(pipelineFile);
  const records = allStages(state);
  for (const problem of state.problems) errors.add(problem.location, problem.message);
  checkNames(state, errors);

  const nodes = records.map((record) => toNode(record, errors));
  resolveNeeds(state, nodes, errors);
  checkCycles(nodes, errors);
  if (errors.list.length > 0) return { stages: [], errors: errors.sorted() };

  const reasons = event ? selection(nodes, event) : nodes.map(() => null);
  return {
    stages: nodes.map((node, index) => plannedStage(node, index, nodes, reasons[index])),
    errors: [],
    concurrency: state.concurrency,
    notifications: state.notifications,
  };
}

/** Returns the declaration problems and duplicate names of a pipeline that failed to load. */
export function declarationErrors(state: PipelineState, pipelineFile: string): PlanError[] {
  const errors = new ErrorList(pipelineFile);
  for (const problem of state.problems) errors.add(problem.location, problem.message);
  checkNames(state, errors);
  return errors.sorted();
}

class ErrorList {
  readonly list: PlanError[] = [];
  #seen = new Set<string>();

  constructor(readonly pipelineFile: string) {}

  add(location: SourceLocation | null, message: string): void {
    const error = {
      file: location?.file ?? this.pipelineFile,
      line: location?.line ?? null,
      column: location?.column ?? null,
      message,
    };
    const key = JSON.stringify(error);
    if (this.#seen.has(key)) return;
    this.#seen.add(key);
    this.list.push(error);
  }

  sorted(): PlanError[] {
    return [...this.list].sort((a, b) =>
      (a.file === b.file ? 0 : a.file === this.pipelineFile ? -1 : 1) ||
      (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0)
    );
  }
}

function checkNames(state: PipelineState, errors: ErrorList): void {
  const seen = new Map<string, { what: string; location: SourceLocation | null }>();
  const declarations = [
    ...allStages(state).map((record) => ({
      what: "stage",
      name: record.name,
      location: record.location,
    })),
    ...state.collections.map((item) => ({
      what: item.kind === "parallel" ? "parallel group" : "matrix",
      name: item.name,
      location: item.location,
    })),
  ];
  for (const declaration of declarations) {
    const first = seen.get(declaration.name);
    if (!first) {
      seen.set(declaration.name, declaration);
      continue;
    }
    const where = first.location
      ? ` at line ${first.location.line}, column ${first.location.column}`
      : "";
    const message = first.what === declaration.what && declaration.what === "stage"
      ? `Stage '${declaration.name}' is declared twice; the first declaration is${where}`
      : `The ${declaration.what} '${declaration.name}' has the same name as the ${first.what}${where}; names must be unique`;
    errors.add(declaration.location, message);
  }
}

function toNode(record: StageRecord, errors: ErrorList): Node {
  const { options, problems } = normaliseOptions(record.options);
  const subject = record.matrix ? `Matrix '${record.matrix.name}'` : `Stage '${record.name}'`;
  for (const problem of problems) errors.add(record.location, `${subject}: ${problem}`);
  return { record, options, needs: [] };
}

function resolveNeeds(state: PipelineState, nodes: Node[], errors: ErrorList): void {
  const indexOf = new Map<StageRecord, number>(nodes.map((node, index) => [node.record, index]));
  const byName = new Map<string, number[]>();
  for (const item of state.collections) {
    byName.set(item.name, item.stages.map((record) => indexOf.get(record)!));
  }
  nodes.forEach((node, index) => {
    if (!byName.has(node.record.name)) byName.set(node.record.name, [index]);
  });

  let previous: number[] = [];
  for (const entry of state.entries) {
    for (const record of entry.stages) {
      const node = nodes[indexOf.get(record)!];
      node.needs = node.options.needs === null ? previous : resolveExplicit(node, byName, errors);
    }
    previous = entry.stages.map((record) => indexOf.get(record)!);
  }
}

function resolveExplicit(node: Node, byName: Map<string, number[]>, errors: ErrorList): number[] {
  const result = new Set<number>();
  for (const name of node.options.needs ?? []) {
    const targets = byName.get(name);
    if (!targets) {
      const subject = node.record.matrix
        ? `Matrix '${node.record.matrix.name}'`
        : `Stage '${node.record.name}'`;
      errors.add(
        node.record.location,
        `${subject} needs '${name}', which the pipeline does not define`,
      );
      continue;
    }
    for (const target of targets) result.add(target);
  }
  return [...result].sort((a, b) => a - b);
}

function checkCycles(nodes: Node[], errors: ErrorList): void {
  const state = nodes.map(() => "new" as "new" | "open" | "done");
  const path: number[] = [];
  const reported = new Set<string>();
  const visit = (index: number) => {
    state[index] = "open";
    path.push(index);
    for (const need of nodes[index].needs) {
      if (state[need] === "open") reportCycle(path.slice(path.indexOf(need)));
      else if (state[need] === "new") visit(need);
    }
    path.pop();
    state[index] = "done";
  };
  const reportCycle = (cycle: number[]) => {
    const key = [...cycle].sort((a, b) => a - b).join(",");
    if (reported.has(key)) return;
    reported.add(key);
    const first = Math.min(...cycle);
    const start = cycle.indexOf(first);
    const ordered = [...cycle.slice(start), ...cycle.slice(0, start), first];
    const names = ordered.map((index) => `'${nodes[index].record.name}'`).join(" needs ");
    errors.add(nodes[first].record.location, `Stages need each other in a cycle: ${names}`);
  };
  nodes.forEach((_, index) => state[index] === "new" && visit(index));
}

function selection(nodes: Node[], event: TriggerEvent): (string | null)[] {
  const reasons: (string | null | undefined)[] = nodes.map(() => undefined);
  const reasonOf = (index: number): string | null => {
    if (reasons[index] !== undefined) return reasons[index]!;
    const own = skipReason(nodes[index].options, event);
    const skippedNeed = own === null
      ? nodes[index].needs.find((need) => reasonOf(need) !== null)
      : undefined;
    reasons[index] = own ??
      (skippedNeed === undefined
        ? null
        : `needs '${nodes[skippedNeed].record.name}', which is skipped`);
    return reasons[index]!;
  };
  return nodes.map((_, index) => reasonOf(index));
}

function plannedStage(
  node: Node,
  index: number,
  nodes: Node[],
  reason: string | null,
): PlannedStage {
  const { record, options } = node;
  return {
    name: record.name,
    index,
    needs: node.needs.map((need) => nodes[need].record.name),
    file: record.location?.file ?? null,
    line: record.location?.line ?? null,
    column: record.location?.column ?? null,
    group: record.group,
    matrix: record.matrix?.values ?? null,
    matrixName: record.matrix?.name ?? null,
    options,
    denoFlags: denoFlags(options.permissions),
    selected: reason === null,
    skipReason: reason,
    deploy: record.deploy ?? null,
  };
}

// Importing a pipeline file and finding its Pipeline.

import { PIPELINE_SPECIFIER } from "./_import_map.ts";
import { errorLocation } from "./_location.ts";
import { createdStates, type PipelineState, stateOf } from "./_model.ts";
import { fromFileUrl, toFileUrl } from "./_paths.ts";
import type { PlanError } from "./_plan.ts";
import { Pipeline } from "./pipeline.ts";

/** A pipeline file after import: its state, or why there is none. */
export interface LoadedPipeline {
  state: PipelineState | null;
  errors: PlanError[];
  /** The error the import threw, if it did. */
  thrown: unknown;
}

/**
 * Imports the pipeline file through the "deno-ci:pipeline" specifier of the
 * import map and returns the state of its default export.
 */
export async function loadPipeline(givenFile: string): Promise<LoadedPipeline> {
  const url = toFileUrl(givenFile);
  const file = fromFileUrl(url);
  const mapped = resolveMapped();
  // Compared as paths: the platform writes the map's URL with its own escaping (':' as %3A).
  if (mapped === null || !mapped.startsWith("file:") || fromFileUrl(mapped) !== file) {
    const message = mapped === null
      ? `The import map does not map '${PIPELINE_SPECIFIER}'; create it with \`runner.ts import-map ${file}\``
      : `The import map maps '${PIPELINE_SPECIFIER}' to '${mapped}', not to the pipeline file '${url}'`;
    return { state: null, errors: [{ file, line: null, column: null, message }], thrown: null };
  }

  let module: Record<string, unknown>;
  try {
    module = await import("deno-ci:pipeline");
  } catch (error) {
    return { state: null, errors: [importError(error, file, url)], thrown: error };
  }
  return exportedState(module, file);
}

/** The state of the newest Pipeline created, for reporting after a failed import. */
export function newestState(): PipelineState | null {
  return createdStates.at(-1) ?? null;
}

function resolveMapped(): string | null {
  try {
    const resolved = import.meta.resolve(PIPELINE_SPECIFIER);
    return resolved === PIPELINE_SPECIFIER ? null : resolved;
  } catch {
    return null;
  }
}

function importError(error: unknown, file: string, url: string): PlanError {
  const location = errorLocation(error, url);
  const text = error instanceof Error ? error.message : String(error);
  const firstLine = text.split("\n")[0].replace(
    /^(TypeError|SyntaxError): (?=SyntaxError|Module not found)/,
    "",
  );
  const isLoadError = /^(SyntaxError|Module not found|Relative import path|Import ')/.test(
    firstLine,
  );
  const message = isLoadError ? withCause(firstLine, text) : thrownMessage(error, firstLine);
  return {
    file: location?.file ?? file,
    line: location?.line ?? null,
    column: location?.column ?? null,
    message,
  };
}

// Deno lists the causes of a failed remote import on numbered lines after the first
// ("0: error sending request ...", ... "3: Connection refused"); the last one names what to fix.
function withCause(firstLine: string, text: string): string {
  const causes = text.split("\n").filter((line) => /^\s*\d+: /.test(line))
    .map((line) => line.replace(/^\s*\d+: /, "").trim());
  if (!/^Import '.*' failed\.?$/.test(firstLine) || causes.length === 0) return firstLine;
  return `${firstLine.replace(/\.$/, "")}: ${causes.at(-1)}`;
}

function thrownMessage(error: unknown, firstLine: string): string {
  if (error instanceof Deno.errors.NotCapable) {
    // Deno's own advice (a flag) cannot be followed: the platform loads every pipeline file without permissions.
    const need = firstLine.replace(/, run again with .*$/, "");
    return `The pipeline file needs a permission while loading: ${need}. It is loaded with no ` +
      "permissions; read the environment, files or the network inside a stage function, where the " +
      "stage's permissions apply";
  }
  if (!(error instanceof Error)) {
    return `The pipeline file threw ${JSON.stringify(error) ?? String(error)} while loading; ` +
      "throw an Error instead, which carries the place it was thrown";
  }
  return `The pipeline file threw while loading: ${error.name}: ${firstLine}`;
}

function exportedState(module: Record<string, unknown>, file: string): LoadedPipeline {
  const exported = module.default;
  const state = stateOf(exported);
  if (exported instanceof Pipeline && state) return { state, errors: [], thrown: null };

  const created = newestState();
  const location = created?.location ?? null;
  const message = exported === undefined
    ? "The pipeline file has no default export; end it with `export default pipeline;`"
    : `The pipeline file's default export is not a Pipeline from "deno-ci" (got ${
      describe(exported)
    })`;
  return {
    state: null,
    errors: [{
      file: location?.file ?? file,
      line: location?.line ?? null,
      column: location?.column ?? null,
      message,
    }],
    thrown: null,
  };
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") return `an object of class ${value.constructor?.name ?? "Object"}`;
  return `a ${typeof value}`;
}

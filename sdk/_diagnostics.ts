// Parsing `deno check` output (run with NO_COLOR) into error records.
//
// A type error looks like:
//
//   TS2322 [ERROR]: Type 'string' is not assignable to type 'number'.
//   const a: number = "s";
//         ^
//       at file:///repo/deno-pipeline.ts:2:7
//
// with possibly several message lines and no source excerpt. Other failures
// (syntax errors, missing modules) start with "error: " instead.

import { displayPath } from "./_location.ts";
import type { PlanError } from "./_plan.ts";

const HEADER = /^(?:(TS\d+) \[(?:ERROR|WARN)\]: |error: )(.*)$/;
const AT = /^\s+at ((?:file|https?):\/\/\S+?):(\d+):(\d+)\s*$/;
const UNDERLINE = /^\s*[~^]+\s*$/;
const SUMMARY =
  /^(Found \d+ errors?\.|error: Type checking failed\.|Check |Stack backtrace:|\s+\d+: )/;

/** Extracts the diagnostics from `deno check` output; `fallbackFile` names errors without a location. */
export function parseDiagnostics(output: string, fallbackFile: string): PlanError[] {
  const errors: PlanError[] = [];
  let current: { code: string | undefined; lines: string[] } | null = null;
  const flush = (location: RegExpExecArray | null) => {
    if (!current) return;
    errors.push(toError(current.code, messageLines(current.lines), location, fallbackFile));
    current = null;
  };

  for (const line of output.split("\n")) {
    const header = HEADER.exec(line);
    if (header && !SUMMARY.test(line)) {
      flush(null);
      current = { code: header[1], lines: [header[2]] };
      continue;
    }
    if (!current) continue;
    const at = AT.exec(line);
    if (at) flush(at);
    else if (line.trim() !== "") current.lines.push(line);
  }
  flush(null);
  return errors;
}

function messageLines(lines: string[]): string {
  const kept = [...lines];
  const last = kept.length - 1;
  if (last >= 2 && UNDERLINE.test(kept[last])) kept.splice(last - 1, 2);
  return kept.filter((line) => !/^\s*\|/.test(line) && !/^\d+ \| /.test(line)).map((line) =>
    line.trim()
  ).join(
    "\n",
  );
}

function toError(
  code: string | undefined,
  message: string,
  location: RegExpExecArray | null,
  fallbackFile: string,
): PlanError {
  return {
    file: location ? displayPath(location[1]) : fallbackFile,
    line: location ? Number(location[2]) : null,
    column: location ? Number(location[3]) : null,
    message: code ? `${code}: ${message}` : message,
  };
}

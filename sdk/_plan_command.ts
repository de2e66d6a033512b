// `runner.ts plan`: print the plan of a pipeline file as one JSON document.

import { buildPlan, declarationErrors, type Plan, type PlanError } from "./_plan.ts";
import { loadPipeline, newestState } from "./_load.ts";
import { parseEvent, setEvent, type TriggerEvent } from "./event.ts";
import { fromFileUrl, toFileUrl } from "./_paths.ts";

/** Options of the plan command. */
export interface PlanCommandOptions {
  /** Path of the event JSON file; `null` plans without an event. */
  eventFile: string | null;
}

/**
 * Plans `file` and prints the plan on stdout; returns the exit code.
 *
 * Anything the pipeline file logs with `console` while it is imported goes to
 * stderr, so stdout holds only the JSON document.
 */
export async function planCommand(givenFile: string, options: PlanCommandOptions): Promise<number> {
  const file = fromFileUrl(toFileUrl(givenFile));
  const event = options.eventFile === null ? null : readEvent(options.eventFile);
  if (event && "error" in event) return print({ stages: [], errors: [event.error] });
  if (event) setEvent(event.value);

  const restoreConsole = consoleToStderr();
  const loaded = await loadPipeline(file);
  restoreConsole();

  if (!loaded.state) {
    const created = newestState();
    const extra = loaded.thrown && created ? declarationErrors(created, file) : [];
    return print({ stages: [], errors: [...loaded.errors, ...extra] });
  }
  return print(buildPlan(loaded.state, event?.value ?? null, file));
}

function readEvent(path: string): { value: TriggerEvent } | { error: PlanError } {
  try {
    const text = Deno.readTextFileSync(path);
    Deno.permissions.revokeSync({ name: "read", path });
    return { value: parseEvent(text) };
  } catch (error) {
    const reason = error instanceof Deno.errors.NotCapable
      ? `run the plan with --allow-read=${path}`
      : (error as Error).message;
    return {
      error: {
        file: path,
        line: null,
        column: null,
        message: `Cannot read the event file: ${reason}`,
      },
    };
  }
}

function consoleToStderr(): () => void {
  const saved = {
    log: console.log,
    info: console.info,
    debug: console.debug,
    table: console.table,
  };
  console.log =
    console.info =
    console.debug =
    console.table =
      console.error;
  return () => Object.assign(console, saved);
}

function print(plan: Plan): number {
  // On a line of its own, even after output of the pipeline file's that did not end its line.
  console.log("\n" + JSON.stringify(plan));
  return plan.errors.length === 0 ? 0 : 1;
}

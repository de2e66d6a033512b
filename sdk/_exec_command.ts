// `runner.ts exec`: run one stage of a pipeline file.
//
// Order matters: the control channel is opened (and the C library grant
// revoked) before the pipeline file is imported, so the file's code never
// runs with more than its stage's permissions.

import { settleChildren } from "./_children.ts";
import { openControlChannel, sendControlEvent, waitForStart } from "./_control.ts";
import { loadPipeline } from "./_load.ts";
import { allStages, type StageRecord } from "./_model.ts";
import { CommandError } from "./command_error.ts";

/** Why a stage failed. */
interface Failure {
  message: string;
  exitCode: number | null;
  /** The command's last lines, shown again under the failure. */
  lastLines?: readonly string[];
}

/** Runs the stage named `stageName` of `file`; returns the process exit code. */
export async function execCommand(file: string, stageName: string): Promise<number> {
  try {
    openControlChannel();
    // A stage prepared ahead of time has loaded the runner by now. Its own code starts at the platform's signal.
    if (!(await waitForStart(loadWhileHeld))) return 1;
  } catch (error) {
    console.error(`deno-ci: ${(error as Error).message}`);
    return 1;
  }

  const loaded = await loadPipeline(file);
  if (!loaded.state) {
    const error = loaded.errors[0];
    const where = error.line === null ? error.file : `${error.file}:${error.line}:${error.column}`;
    if (loaded.thrown instanceof Error && loaded.thrown.stack) console.error(loaded.thrown.stack);
    return finish(stageName, {
      message: `Cannot load the pipeline file: ${error.message} (${where})`,
      exitCode: null,
    });
  }

  const matches = allStages(loaded.state).filter((record) => record.name === stageName);
  if (matches.length !== 1 || !matches[0].run) {
    return finish(stageName, {
      message: lookupProblem(stageName, matches, allStages(loaded.state)),
      exitCode: null,
    });
  }
  return await runStage(matches[0]);
}

// What a held stage does while it waits, so that its code starts sooner once released.
// The SDK is the platform's code: loading it runs nothing of the pipeline's. A stage's
// first command took about 5 ms longer than later ones. Deno loads its process API and
// streams on first use, and their code is not yet optimised. So a command that does
// nothing and prints nothing runs first, through the same `run`.
async function loadWhileHeld(): Promise<void> {
  const { run } = await import("./mod.ts");
  try {
    await run(["true"]);
  } catch {
    // The stage may not run programs, or `true` is missing: its own commands then fail with the reason.
  }
}

async function runStage(record: StageRecord): Promise<number> {
  const late: unknown[] = [];
  addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    late.push(event.reason);
  });
  addEventListener("error", (event) => {
    event.preventDefault();
    late.push(event.error);
  });

  sendControlEvent({ type: "stage_started", stage: record.name });
  let failure: Failure | null = null;
  try {
    await record.run!();
  } catch (error) {
    failure = describeError(error);
  }
  if (!failure && late.length > 0) failure = describeError(late[0]);
  if (!failure && record.options.allowChildFailures !== true) failure = await childFailure();
  return finish(record.name, failure);
}

async function childFailure(): Promise<Failure | null> {
  const failures = await settleChildren();
  if (failures.length === 0) return null;
  const first = failures[0];
  const more = failures.length > 1 ? ` (and ${failures.length - 1} more)` : "";
  return {
    message: `Command '${
      first.command.join(" ")
    }' started with Deno.run exited with code ${first.code}${more}`,
    exitCode: first.code,
  };
}

function describeError(error: unknown): Failure {
  if (error instanceof CommandError) {
    return { message: error.message, exitCode: error.exitCode, lastLines: error.lastLines };
  }
  if (error instanceof Error) {
    console.error(error.stack ?? `${error.name}: ${error.message}`);
    return { message: `${error.name}: ${error.message}`, exitCode: null };
  }
  return { message: `Uncaught ${JSON.stringify(error) ?? String(error)}`, exitCode: null };
}

function finish(stage: string, failure: Failure | null): number {
  if (failure) console.error(`deno-ci: stage '${stage}' failed: ${failure.message}`);
  if (failure?.lastLines?.length) {
    console.error(`deno-ci: last lines of output:\n  ${failure.lastLines.join("\n  ")}`);
  }
  try {
    sendControlEvent({
      type: "stage_finished",
      stage,
      status: failure ? "failed" : "success",
      error: failure?.message ?? null,
      exitCode: failure?.exitCode ?? null,
    });
  } catch (sendError) {
    console.error(`deno-ci: ${(sendError as Error).message}`);
    return 1;
  }
  return failure ? 1 : 0;
}

function lookupProblem(name: string, matches: StageRecord[], all: StageRecord[]): string {
  if (matches.length > 1) {
    return `Cannot run stage '${name}': the pipeline declares it ${matches.length} times`;
  }
  if (matches.length === 1) return `Cannot run stage '${name}': it has no function to run`;
  const names = all.map((record) => `'${record.name}'`).join(", ") || "none";
  return `Cannot run stage '${name}': the pipeline does not define it (stages: ${names})`;
}

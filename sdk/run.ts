/**
 * Running commands from a stage.
 *
 * @module
 */

import { spawnCommand } from "./_spawn.ts";
import { CommandError } from "./command_error.ts";

/** How many of a command's last lines a {@linkcode CommandError} carries. */
const TAIL_LINES = 20;

/**
 * Milliseconds run() waits for the command's output to end after the command
 * exited. A process it started in the background (`server &`) keeps the pipes
 * open, and waiting for it would hang the stage until the background process ends.
 */
const OUTPUT_GRACE_MS = 2000;

/**
 * Options for {@linkcode run}.
 *
 * @example
 * ```ts
 * import { run, type RunOptions } from "deno-ci";
 *
 * const inPackage: RunOptions = { cwd: "packages/core", env: { CI: "1" } };
 * await run("deno test", inPackage);
 * ```
 */
export interface RunOptions {
  /** Directory to run in; the stage's current directory (the workspace) by default. */
  cwd?: string;
  /** Variables added to the stage's environment for this command. */
  env?: Record<string, string>;
}

/**
 * What a successful {@linkcode run} returns.
 *
 * @example
 * ```ts
 * import { run } from "deno-ci";
 *
 * const result = await run(["git", "describe", "--tags"]);
 * console.log(result.lastLines.at(-1));
 * ```
 */
export interface RunResult {
  /** The command as it was started, program first. */
  command: readonly string[];
  /** Always 0: a non-zero exit throws {@linkcode CommandError}. */
  exitCode: number;
  /** The last lines (at most 20) the command printed. */
  lastLines: readonly string[];
}

/**
 * Runs a command and waits for it. A list runs the program directly; a string
 * runs through `sh -c`, so pipes and `&&` work. The command's stdout and
 * stderr stream to the stage's as they come. run() returns at most 2 seconds
 * after the command exits, even when a process it started in the background
 * still holds its output open; that process's output goes on to the stage's.
 *
 * A bare program name that is not on PATH but is a file in the workspace root
 * runs from there.
 *
 * Needs the stage's `run` permission for the program (and for `sh`).
 *
 * @throws {CommandError} When the command exits non-zero; it carries the exit
 * code and the last 20 lines of output.
 * @throws {Deno.errors.NotFound} When the program cannot be found.
 *
 * @example
 * ```ts
 * import { Pipeline, run } from "deno-ci";
 *
 * export default new Pipeline()
 *   .stage("test", async () => {
 *     await run(["deno", "test", "--allow-read"]);
 *     await run("deno coverage --lcov > coverage.lcov", { cwd: "packages/core" });
 *   });
 * ```
 */
export async function run(
  command: string | readonly string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const argv = typeof command === "string" ? ["sh", "-c", command] : [...command];
  const child = spawnCommand(argv, {
    cwd: options.cwd,
    env: options.env,
    stdin: "inherit",
    stdout: "piped",
    stderr: "piped",
  });

  const tail = new Tail(TAIL_LINES);
  // The relays go on after run() returns, so a background server's output still reaches the log.
  const relays = Promise.all([
    relay(child.stdout, Deno.stdout, tail),
    relay(child.stderr, Deno.stderr, tail),
  ]);
  const status = await child.status;
  await settleWithin(relays, OUTPUT_GRACE_MS);

  const lastLines = tail.lines();
  if (!status.success) throw new CommandError(argv, status.code, lastLines);
  return { command: argv, exitCode: 0, lastLines };
}

async function settleWithin(promise: Promise<unknown>, milliseconds: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, milliseconds);
  });
  try {
    await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

class Tail {
  #lines: string[] = [];

  constructor(readonly size: number) {}

  push(line: string): void {
    this.#lines.push(line.endsWith("\r") ? line.slice(0, -1) : line);
    if (this.#lines.length > this.size) this.#lines.shift();
  }

  lines(): string[] {
    return [...this.#lines];
  }
}

async function relay(
  stream: ReadableStream<Uint8Array>,
  target: { write(p: Uint8Array): Promise<number> },
  tail: Tail,
): Promise<void> {
  const decoder = new TextDecoder();
  let partial = "";
  for await (const chunk of stream) {
    await writeAll(target, chunk);
    const lines = (partial + decoder.decode(chunk, { stream: true })).split("\n");
    partial = lines.pop()!;
    for (const line of lines) tail.push(line);
  }
  partial += decoder.decode();
  if (partial !== "") tail.push(partial);
}

async function writeAll(
  target: { write(p: Uint8Array): Promise<number> },
  bytes: Uint8Array,
): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await target.write(bytes.subarray(offset));
}

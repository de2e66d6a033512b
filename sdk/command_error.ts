/**
 * The error a failed command throws.
 *
 * @module
 */

/**
 * Thrown by {@linkcode run} when a command exits with a non-zero code. It
 * carries the last lines the command printed, which the runner shows again
 * under the stage's failure.
 *
 * @example Retry a flaky command once
 * ```ts
 * import { CommandError, Pipeline, run } from "deno-ci";
 *
 * export default new Pipeline()
 *   .stage("e2e", async () => {
 *     try {
 *       await run("deno task e2e");
 *     } catch (error) {
 *       if (!(error instanceof CommandError) || error.exitCode !== 75) throw error;
 *       await run("deno task e2e");
 *     }
 *   });
 * ```
 */
export class CommandError extends Error {
  /** The command as it was started, program first. */
  readonly command: readonly string[];
  /** The command's exit code. */
  readonly exitCode: number;
  /** The last lines (at most 20) of the command's stdout and stderr, in the order printed. */
  readonly lastLines: readonly string[];

  /**
   * Creates the error for a command that exited with `exitCode`.
   *
   * @example
   * ```ts
   * import { CommandError } from "deno-ci";
   *
   * const error = new CommandError(["deno", "test"], 1, ["FAILED | 0 passed | 1 failed"]);
   * console.log(error.message); // Command 'deno test' failed with exit code 1
   * ```
   */
  constructor(command: readonly string[], exitCode: number, lastLines: readonly string[]) {
    super(`Command '${displayCommand(command)}' failed with exit code ${exitCode}`);
    this.name = "CommandError";
    this.command = command;
    this.exitCode = exitCode;
    this.lastLines = lastLines;
  }
}

function displayCommand(command: readonly string[]): string {
  if (command.length === 3 && command[0] === "sh" && command[1] === "-c") return command[2];
  return command.map((part) => /^[\w@%+=:,./-]+$/.test(part) ? part : JSON.stringify(part)).join(
    " ",
  );
}

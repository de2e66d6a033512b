// Starting commands the way pipeline authors expect.
//
// A bare program name that is not on PATH but is a file in the workspace root
// is run from there, so `Deno.run({ cmd: ["deploy-script.sh"] })` works as the
// requirements' sample expects, without "./".

import { workspace } from "./workspace.ts";

/**
 * Spawns `command` with Deno.Command, falling back to the workspace root for
 * a bare name that is not found on PATH.
 *
 * @throws {Deno.errors.NotFound} When the program is neither on PATH nor in the workspace root.
 */
export function spawnCommand(
  command: readonly string[],
  options: Deno.CommandOptions,
): Deno.ChildProcess {
  const [program, ...args] = command;
  if (program === undefined || program === "") {
    throw new TypeError("Cannot run a command: the command is empty");
  }
  try {
    return new Deno.Command(program, { ...options, args }).spawn();
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound) || program.includes("/")) throw error;
  }
  try {
    return new Deno.Command(`${workspace}/${program}`, { ...options, args }).spawn();
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    throw new Deno.errors.NotFound(
      `Cannot run '${program}': it is neither on PATH nor a file in the workspace root '${workspace}'`,
    );
  }
}

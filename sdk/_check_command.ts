// `runner.ts check`: type-check a pipeline file without running it.

import { parseDiagnostics } from "./_diagnostics.ts";

/** Options of the check command. */
export interface CheckCommandOptions {
  /** The import map the pipeline file resolves "deno-ci" with. */
  importMap: string;
}

/**
 * Runs `deno check` on `file` and prints `{"errors": [...]}` on stdout;
 * returns 0 when the file type-checks, 1 otherwise.
 */
export async function checkCommand(file: string, options: CheckCommandOptions): Promise<number> {
  const check = [
    Deno.execPath(),
    "check",
    "--no-config",
    "--quiet",
    "--allow-import",
    `--import-map=${options.importMap}`,
    file,
  ];
  const [program, ...args] = [...killedWithRunner(), ...check];
  const output = await new Deno.Command(program, {
    args,
    env: { NO_COLOR: "1", RUST_BACKTRACE: "0" },
    stdout: "piped",
    stderr: "piped",
  }).output();

  const text = new TextDecoder().decode(output.stderr) + new TextDecoder().decode(output.stdout);
  let errors = parseDiagnostics(text, file);
  if (!output.success && errors.length === 0) {
    const message = text.trim().split("\n")[0] || `deno check exited with code ${output.code}`;
    errors = [{ file, line: null, column: null, message }];
  }
  console.log(JSON.stringify({ errors }));
  return output.success ? 0 : 1;
}

// On the host the platform names, in DENO_CI_KILL_WITH_PARENT, the command that makes the kernel
// kill a child with its parent, which takes the parent's pid next. Without it a `deno check` stuck
// on a remote import outlived a `deno-ci validate` that was killed. In the sandbox the variable is
// not set, because the sandbox ends all its processes itself.
function killedWithRunner(): string[] {
  const value = Deno.env.get("DENO_CI_KILL_WITH_PARENT");
  if (!value) return [];
  const prefix = JSON.parse(value);
  if (!Array.isArray(prefix) || !prefix.every((part) => typeof part === "string")) return [];
  return [...prefix, String(Deno.pid)];
}

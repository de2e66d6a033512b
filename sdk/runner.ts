/**
 * The runner the platform calls to plan a pipeline file, type-check it and
 * execute one of its stages. The protocol (command lines, JSON documents,
 * control events, exit codes) is described in README.md.
 *
 * ```sh
 * deno run --no-prompt --no-config --import-map=MAP runner.ts plan deno-pipeline.ts --event event.json
 * ```
 *
 * @module
 */

const USAGE = `Usage:
  runner.ts import-map <pipeline-file> [--sdk <dir>]
  runner.ts plan <pipeline-file> [--event <event.json> | --event -]
  runner.ts check <pipeline-file> --import-map <map>
  runner.ts exec <pipeline-file> --stage <name>`;

/** Parsed command line. */
interface Args {
  command: string;
  file: string;
  flags: Record<string, string>;
}

function parseArgs(argv: string[]): Args | string {
  const [command, file, ...rest] = argv;
  if (!command || !file || file.startsWith("--")) return "Missing the command or the pipeline file";
  const flags: Record<string, string> = {};
  for (let i = 0; i < rest.length; i += 2) {
    const [name, value] = [rest[i], rest[i + 1]];
    if (!name.startsWith("--") || value === undefined) return `Unexpected argument '${name}'`;
    flags[name.slice(2)] = value;
  }
  return { command, file, flags };
}

async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  if (typeof args === "string") return usage(args);
  const { command, file, flags } = args;

  if (command === "import-map") {
    const { importMapFor } = await import("./_import_map.ts");
    console.log(JSON.stringify(importMapFor(file, flags.sdk), null, 2));
    return 0;
  }
  if (command === "plan") {
    const { planCommand } = await import("./_plan_command.ts");
    const eventFile = flags.event === undefined || flags.event === "-" ? null : flags.event;
    return await planCommand(file, { eventFile });
  }
  if (command === "check") {
    if (!flags["import-map"]) return usage("check needs --import-map <map>");
    const { checkCommand } = await import("./_check_command.ts");
    return await checkCommand(file, { importMap: flags["import-map"] });
  }
  if (command === "exec") {
    if (!flags.stage) return usage("exec needs --stage <name>");
    const { execCommand } = await import("./_exec_command.ts");
    return await execCommand(file, flags.stage);
  }
  return usage(`Unknown command '${command}'`);
}

function usage(problem: string): number {
  console.error(`deno-ci runner: ${problem}\n${USAGE}`);
  return 2;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}

// Helpers for tests that run the runner in a throw-away workspace.

import { importMapFor } from "./_import_map.ts";
import { fromFileUrl } from "./_paths.ts";

/** The SDK folder, ending in "/". */
export const SDK_DIR: string = fromFileUrl(new URL(".", import.meta.url).href);
/** The runner script. */
export const RUNNER: string = `${SDK_DIR}runner.ts`;
/** The helper that gives a command a control pipe on descriptor 3. */
export const CONTROL_FD_HELPER: string = `${SDK_DIR}testdata/control_fd.py`;

const DENO = Deno.execPath();
const DENO_DIR = DENO.slice(0, DENO.lastIndexOf("/"));
const BASE_ENV = {
  NO_COLOR: "1",
  DENO_NO_UPDATE_CHECK: "1",
  RUST_BACKTRACE: "0",
  PATH: `${DENO_DIR}:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`,
};

const workspaces: string[] = [];
addEventListener("unload", () => {
  for (const path of workspaces) Deno.removeSync(path, { recursive: true });
});

/**
 * Creates a temporary workspace holding `files` (path → content); returns its
 * path. Workspaces are removed when the test process ends.
 */
export async function makeWorkspace(files: Record<string, string>): Promise<string> {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "deno-ci-sdk-test-" }));
  workspaces.push(root);
  for (const [path, content] of Object.entries(files)) {
    const full = `${root}/${path}`;
    await Deno.mkdir(full.slice(0, full.lastIndexOf("/")), { recursive: true });
    await Deno.writeTextFile(full, content);
  }
  return root;
}

/** Writes the import map for the workspace's pipeline file; returns its path. */
export async function writeImportMap(
  workspace: string,
  pipelineFile = "deno-pipeline.ts",
): Promise<string> {
  const path = `${workspace}/.deno-ci/import_map.json`;
  await Deno.mkdir(`${workspace}/.deno-ci`, { recursive: true });
  await Deno.writeTextFile(path, JSON.stringify(importMapFor(`${workspace}/${pipelineFile}`)));
  return path;
}

/** What a runner command produced. */
export interface RunnerResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `deno` with `args` in `cwd`. */
export async function deno(
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
): Promise<RunnerResult> {
  const output = await new Deno.Command(DENO, {
    args,
    cwd,
    env: { ...BASE_ENV, ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** Runs `runner.ts plan` with no permissions (or only read access to the event file). */
export async function plan(
  workspace: string,
  options: { event?: unknown; file?: string } = {},
  // deno-lint-ignore no-explicit-any
): Promise<RunnerResult & { json: any }> {
  const file = options.file ?? "deno-pipeline.ts";
  const map = await writeImportMap(workspace, file);
  const eventArgs: string[] = [];
  const flags: string[] = [];
  if (options.event !== undefined) {
    const eventFile = `${workspace}/.deno-ci/event.json`;
    await Deno.writeTextFile(eventFile, JSON.stringify(options.event));
    eventArgs.push("--event", eventFile);
    flags.push(`--allow-read=${eventFile}`);
  }
  const result = await deno(
    [
      "run",
      "--no-prompt",
      "--no-config",
      ...flags,
      `--import-map=${map}`,
      RUNNER,
      "plan",
      file,
      ...eventArgs,
    ],
    workspace,
  );
  let json = null;
  try {
    json = JSON.parse(result.stdout);
  } catch {
    throw new Error(
      `plan printed no JSON (exit ${result.code}):\n${result.stdout}\n${result.stderr}`,
    );
  }
  return { ...result, json };
}

/** The permission flags the plan lists for `stage`. */
export async function planFlags(
  workspace: string,
  stage: string,
  file?: string,
): Promise<string[]> {
  const { json } = await plan(workspace, { file });
  // deno-lint-ignore no-explicit-any
  const found = json.stages.find((item: any) => item.name === stage);
  if (!found) throw new Error(`stage ${stage} is not in the plan: ${JSON.stringify(json)}`);
  return found.denoFlags;
}

/**
 * Runs `runner.ts exec` for `stage` through the control-pipe helper, with the
 * flags the plan lists for the stage unless `flags` is given.
 */
export async function exec(
  workspace: string,
  stage: string,
  options: { flags?: string[]; env?: Record<string, string>; file?: string; controlFd?: boolean } =
    {},
  // deno-lint-ignore no-explicit-any
): Promise<RunnerResult & { events: any[] }> {
  const file = options.file ?? "deno-pipeline.ts";
  const flags = options.flags ?? await planFlags(workspace, stage, file);
  const map = await writeImportMap(workspace, file);
  const eventsFile = `${workspace}/.deno-ci/events.jsonl`;
  await Deno.writeTextFile(eventsFile, "");
  const command = [
    "run",
    "--no-prompt",
    "--no-config",
    "--no-check",
    ...flags,
    `--import-map=${map}`,
    RUNNER,
    "exec",
    file,
    "--stage",
    stage,
  ];
  const env = {
    DENO_CI_WORKSPACE: workspace,
    DENO_CI_RUN_ID: "42",
    DENO_CI_STAGE: stage,
    DENO_CI_EVENT: JSON.stringify({ kind: "push", branch: "main", commit: "abc" }),
    ...options.env,
  };
  const result = options.controlFd === false
    ? await deno(command, workspace, env)
    : await runWithControlFd([DENO, ...command], workspace, env, eventsFile);
  const events = (await Deno.readTextFile(eventsFile)).split("\n").filter((line) => line !== "")
    .map((line) => JSON.parse(line));
  return { ...result, events };
}

async function runWithControlFd(
  command: string[],
  cwd: string,
  env: Record<string, string>,
  eventsFile: string,
): Promise<RunnerResult> {
  const output = await new Deno.Command("python3", {
    args: [CONTROL_FD_HELPER, eventsFile, ...command],
    cwd,
    env: { ...BASE_ENV, ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

// End-to-end tests of the runner: pipelines in temporary workspaces, planned
// with no permissions and executed with a control pipe on descriptor 3.

import { assert, assertEquals, assertFalse, assertStringIncludes } from "./_test_assert.ts";
import { deno, exec, makeWorkspace, plan, RUNNER, SDK_DIR, writeImportMap } from "./_test_utils.ts";

const PRD_SAMPLE = `${SDK_DIR}../../shared/fixtures/pipelines/prd-sample.deno-pipeline.ts`;
const hasPrdSample = await Deno.stat(PRD_SAMPLE).then(() => true, () => false);
const FAILING_TEST = `Deno.test("fails", () => { throw new Error("expected failure"); });\n`;

// deno-lint-ignore no-explicit-any
type Json = any;

function stageNamed(json: Json, name: string): Json {
  return json.stages.find((stage: Json) => stage.name === name);
}

Deno.test({
  name: "plan of the PRD sample lists Build, Test and Deploy in order",
  ignore: !hasPrdSample,
  async fn() {
    const workspace = await makeWorkspace({
      "deno-pipeline.ts": await Deno.readTextFile(PRD_SAMPLE),
    });
    const { code, json } = await plan(workspace);
    assertEquals(code, 0);
    assertEquals(json.errors, []);
    assertEquals(
      json.stages.map((stage: Json) => [stage.name, stage.needs, stage.line, stage.column]),
      [
        ["Build", [], 5, 10],
        ["Test", ["Build"], 9, 10],
        ["Deploy", ["Test"], 13, 10],
      ],
    );
  },
});

Deno.test({
  name: "exec of the PRD sample's Test fails when its deno test child fails",
  ignore: !hasPrdSample,
  async fn() {
    const workspace = await makeWorkspace({
      "deno-pipeline.ts": await Deno.readTextFile(PRD_SAMPLE),
      "failing_test.ts": FAILING_TEST,
    });
    const result = await exec(workspace, "Test");
    assertEquals(result.code, 1);
    assertEquals(result.events, [
      { type: "stage_started", stage: "Test" },
      {
        type: "stage_finished",
        stage: "Test",
        status: "failed",
        error: "Command 'deno test' started with Deno.run exited with code 1",
        exitCode: 1,
      },
    ]);
    assertStringIncludes(result.stdout, "expected failure");
  },
});

Deno.test({
  name: "exec of the PRD sample's Deploy runs deploy-script.sh from the workspace root",
  ignore: !hasPrdSample,
  async fn() {
    const workspace = await makeWorkspace({
      "deno-pipeline.ts": await Deno.readTextFile(PRD_SAMPLE),
      "deploy-script.sh": "#!/bin/sh\necho deployed from $(pwd)\n",
    });
    await Deno.chmod(`${workspace}/deploy-script.sh`, 0o755);
    const result = await exec(workspace, "Deploy");
    assertEquals(result.code, 0, result.stderr);
    assertStringIncludes(result.stdout, `deployed from ${workspace}`);
    assertEquals(result.events.at(-1).status, "success");
  },
});

Deno.test({
  name: "check of the PRD sample passes although Deno 2 has no Deno.run types",
  ignore: !hasPrdSample,
  async fn() {
    const workspace = await makeWorkspace({
      "deno-pipeline.ts": await Deno.readTextFile(PRD_SAMPLE),
    });
    const result = await check(workspace);
    assertEquals(result.json, { errors: [] });
    assertEquals(result.code, 0);
  },
});

const GRAPH = `import { Pipeline } from "deno-ci";

const pipeline = new Pipeline();
pipeline.stage("install", () => {});
pipeline.parallel("checks", (group) => {
  group.stage("lint", () => {});
  group.matrix("test", { deno: ["1.46", "2.1"], os: ["linux"] }, () => {});
});
pipeline.stage("docs", { needs: ["install"] }, () => {});
pipeline.stage("deploy", { branches: ["main"], timeout: "10m", permissions: { net: false } }, () => {});
export default pipeline;
`;

Deno.test("plan reports groups, matrix legs, needs and normalised options", async () => {
  const workspace = await makeWorkspace({ "deno-pipeline.ts": GRAPH });
  const { code, json } = await plan(workspace);
  assertEquals(code, 0);
  assertEquals(
    json.stages.map((stage: Json) => [stage.name, stage.index, stage.group, stage.needs]),
    [
      ["install", 0, null, []],
      ["lint", 1, "checks", ["install"]],
      ["test (deno=1.46, os=linux)", 2, "checks", ["install"]],
      ["test (deno=2.1, os=linux)", 3, "checks", ["install"]],
      ["docs", 4, null, ["install"]],
      ["deploy", 5, null, ["docs"]],
    ],
  );
  const leg = stageNamed(json, "test (deno=2.1, os=linux)");
  assertEquals([leg.line, leg.column, leg.matrix, leg.matrixName], [7, 9, {
    deno: "2.1",
    os: "linux",
  }, "test"]);
  const deploy = stageNamed(json, "deploy");
  assertEquals(deploy.options.timeout, 600);
  assertEquals(deploy.options.permissions.net, false);
  assertFalse(deploy.denoFlags.some((flag: string) => flag.startsWith("--allow-net")));
  assertEquals([deploy.selected, deploy.skipReason], [true, null]);
});

Deno.test("plan with an event selects stages by their filters", async () => {
  const workspace = await makeWorkspace({
    "deno-pipeline.ts": `import { Pipeline } from "deno-ci";
export default new Pipeline()
  .stage("test", { paths: ["src/**", "!src/**/*.md"] }, () => {})
  .stage("release", { tags: ["v*"], needs: [] }, () => {})
  .stage("deploy", { branches: ["main", "!release/*"], events: ["push"], needs: ["test"] }, () => {});
`,
  });
  const { json } = await plan(workspace, {
    event: { kind: "push", branch: "main", changedFiles: ["src/app/main.ts", "README.md"] },
  });
  assertEquals(json.stages.map((stage: Json) => [stage.name, stage.selected, stage.skipReason]), [
    ["test", true, null],
    ["release", false, `the event has no tag to match tags ["v*"]`],
    ["deploy", true, null],
  ]);
  const docsOnly = await plan(workspace, {
    event: { kind: "push", branch: "main", changedFiles: ["src/a.md"] },
  });
  assertEquals(stageNamed(docsOnly.json, "deploy").skipReason, "needs 'test', which is skipped");
});

async function planErrors(source: string, files: Record<string, string> = {}): Promise<Json[]> {
  const workspace = await makeWorkspace({ "deno-pipeline.ts": source, ...files });
  const { code, json } = await plan(workspace);
  assertEquals(code, 1);
  assertEquals(json.stages, []);
  return json.errors.map((error: Json) => ({
    ...error,
    file: error.file.slice(workspace.length + 1),
  }));
}

Deno.test("plan reports duplicate names, unknown needs and cycles with their locations", async () => {
  const errors = await planErrors(`import { Pipeline } from "deno-ci";
const pipeline = new Pipeline();
pipeline.stage("build", () => {});
pipeline.stage("build", () => {});
pipeline.stage("test", { needs: ["bild"] }, () => {});
pipeline.stage("a", { needs: ["b"] }, () => {});
  pipeline.stage("b", { needs: ["a"] }, () => {});
export default pipeline;
`);
  assertEquals(errors, [
    {
      file: "deno-pipeline.ts",
      line: 4,
      column: 10,
      message: "Stage 'build' is declared twice; the first declaration is at line 3, column 10",
    },
    {
      file: "deno-pipeline.ts",
      line: 5,
      column: 10,
      message: "Stage 'test' needs 'bild', which the pipeline does not define",
    },
    {
      file: "deno-pipeline.ts",
      line: 6,
      column: 10,
      message: "Stages need each other in a cycle: 'a' needs 'b' needs 'a'",
    },
  ]);
});

Deno.test("plan reports a pipeline file without a default export", async () => {
  const errors = await planErrors(`import { Pipeline } from "deno-ci";
const pipeline = new Pipeline();
pipeline.stage("build", () => {});
`);
  assertEquals(errors, [{
    file: "deno-pipeline.ts",
    line: 2,
    column: 18,
    message: "The pipeline file has no default export; end it with `export default pipeline;`",
  }]);
});

Deno.test("plan reports a default export that is not a Pipeline", async () => {
  const errors = await planErrors(`export default { stages: [] };\n`);
  assertEquals(errors, [{
    file: "deno-pipeline.ts",
    line: null,
    column: null,
    message:
      `The pipeline file's default export is not a Pipeline from "deno-ci" (got an object of class Object)`,
  }]);
});

Deno.test("plan reports a throw at import time where it happened, with earlier problems", async () => {
  const errors = await planErrors(`import { Pipeline } from "deno-ci";
const pipeline = new Pipeline();
pipeline.stage("x", () => {});
pipeline.stage("x", () => {});
const config = JSON.parse("{ broken");
export default pipeline;
`);
  assertEquals(errors.length, 2);
  assertEquals(errors[0].line, 5);
  assertEquals(errors[0].column, 21);
  assertStringIncludes(errors[0].message, "The pipeline file threw while loading: SyntaxError:");
  assertEquals([errors[1].line, errors[1].column], [4, 10]);
  assertStringIncludes(errors[1].message, "Stage 'x' is declared twice");
});

Deno.test("plan explains a permission needed at the top level", async () => {
  const errors = await planErrors(`import { Pipeline } from "deno-ci";
const home = Deno.env.get("HOME");
export default new Pipeline().stage("a", () => console.log(home));
`);
  assertEquals([errors[0].line, errors[0].column], [2, 23]);
  assertStringIncludes(
    errors[0].message,
    'needs a permission while loading: Requires env access to "HOME".',
  );
  assertStringIncludes(errors[0].message, "inside a stage function");
  assertFalse(errors[0].message.includes("--allow-env"));
});

Deno.test("plan names a thrown value that is not an Error", async () => {
  const errors = await planErrors(`import { Pipeline } from "deno-ci";
throw "a plain string";
`);
  assertStringIncludes(errors[0].message, 'The pipeline file threw "a plain string" while loading');
});

Deno.test("plan reports a syntax error with its location", async () => {
  const errors = await planErrors(`import { Pipeline } from "deno-ci";
const pipeline = new Pipeline(;
export default pipeline;
`);
  assertEquals(errors.length, 1);
  assertEquals([errors[0].file, errors[0].line], ["deno-pipeline.ts", 2]);
  assert(errors[0].column > 0);
  assertStringIncludes(errors[0].message, "SyntaxError");
});

Deno.test("plan reports a missing module with the importing line", async () => {
  const errors = await planErrors(`import { Pipeline } from "deno-ci";
import { helper } from "./ci/helper.ts";
export default new Pipeline();
`);
  assertEquals([errors[0].line, errors[0].column], [2, 24]);
  assertStringIncludes(errors[0].message, "Module not found");
});

Deno.test("plan runs the pipeline file with no permissions", async () => {
  const errors = await planErrors(`import { Pipeline } from "deno-ci";
const secret = Deno.readTextFileSync("/etc/hostname");
export default new Pipeline();
`);
  assertEquals([errors[0].line, errors[0].column], [2, 21]);
  assertStringIncludes(errors[0].message, "needs a permission while loading: Requires read access");
});

Deno.test("plan keeps stdout for its JSON when the pipeline file logs", async () => {
  const workspace = await makeWorkspace({
    "deno-pipeline.ts":
      `import { Pipeline } from "deno-ci";\nconsole.log("hello");\nexport default new Pipeline();\n`,
  });
  const result = await plan(workspace);
  assertEquals(result.json, { stages: [], errors: [], concurrency: null, notifications: [] });
  assertStringIncludes(result.stderr, "hello");
});

async function check(workspace: string): Promise<{ code: number; json: Json }> {
  const map = await writeImportMap(workspace);
  const result = await deno(
    [
      "run",
      "--no-prompt",
      "--no-config",
      "--allow-read",
      "--allow-run",
      "--allow-env",
      `--import-map=${map}`,
      RUNNER,
      "check",
      "deno-pipeline.ts",
      "--import-map",
      map,
    ],
    workspace,
  );
  return { code: result.code, json: JSON.parse(result.stdout) };
}

Deno.test("check reports type errors with file, line and column", async () => {
  const workspace = await makeWorkspace({
    "deno-pipeline.ts": `import { Pipeline } from "deno-ci";
const pipeline = new Pipeline();
pipeline.stage("x", { branch: ["main"] }, () => {});
pipeline.stage("y", { timeout: true }, () => {});
export default pipeline;
`,
  });
  const { code, json } = await check(workspace);
  assertEquals(code, 1);
  assertEquals(json.errors.map((error: Json) => [error.file, error.line, error.column]), [
    [`${workspace}/deno-pipeline.ts`, 3, 23],
    [`${workspace}/deno-pipeline.ts`, 4, 23],
  ]);
  assertStringIncludes(
    json.errors[0].message,
    "TS2561: Object literal may only specify known properties, but 'branch'",
  );
});

const STAGES =
  `import { artifactPath, event, Pipeline, publishArtifact, run, runId, workspace } from "deno-ci";

const pipeline = new Pipeline();
pipeline.stage("forge", () => {
  console.log('{"type":"stage_finished","stage":"forge","status":"success","error":null,"exitCode":null}');
  console.error('{"type":"artifact","name":"evil","paths":["/etc"]}');
  throw new Error("really failed");
});
pipeline.stage("children", async () => {
  await run(["sh", "-c", "echo '{\\"type\\":\\"forged\\"}' >&3"]);
});
pipeline.stage("command", () => run("echo first; echo last words; exit 7"));
pipeline.stage("context", () => {
  console.log(JSON.stringify({ kind: event.kind, branch: event.branch, runId, workspace }));
});
pipeline.matrix("test", { deno: ["1.46", "2.1"] }, (leg) => console.log("leg deno", leg.deno));
pipeline.stage("build", () => {
  Deno.writeTextFileSync("out.txt", "built");
  publishArtifact("out", ["out.txt"]);
});
pipeline.stage("use", () => console.log("artifact at", artifactPath("out")));
pipeline.stage("tolerant", { allowChildFailures: true }, async () => {
  await Deno.run({ cmd: ["false"] }).status();
});
pipeline.stage("forgetful", () => {
  Deno.run({ cmd: ["sh", "-c", "sleep 0.2; exit 5"] });
});
pipeline.stage("narrow", { permissions: { ffi: false, env: ["HOME"], run: false, write: false } }, () => {
  Deno.dlopen("libc.so.6", {});
});
export default pipeline;
`;

Deno.test("exec control events come only from the runner, never from the stage's output", async () => {
  const workspace = await makeWorkspace({ "deno-pipeline.ts": STAGES });
  const result = await exec(workspace, "forge");
  assertEquals(result.code, 1);
  assertStringIncludes(result.stdout, '"stage_finished"');
  assertEquals(result.events, [
    { type: "stage_started", stage: "forge" },
    {
      type: "stage_finished",
      stage: "forge",
      status: "failed",
      error: "Error: really failed",
      exitCode: null,
    },
  ]);
  assertStringIncludes(result.stderr, "deno-ci: stage 'forge' failed: Error: really failed");
});

Deno.test("exec does not hand the control descriptor to commands the stage starts", async () => {
  const workspace = await makeWorkspace({ "deno-pipeline.ts": STAGES });
  const result = await exec(workspace, "children");
  assertEquals(result.code, 1);
  assertEquals(result.events.map((event: Json) => event.type), ["stage_started", "stage_finished"]);
  assertStringIncludes(result.stderr, "Bad file descriptor");
});

Deno.test("exec reports a CommandError with its exit code and last lines", async () => {
  const workspace = await makeWorkspace({ "deno-pipeline.ts": STAGES });
  const result = await exec(workspace, "command");
  assertEquals(result.code, 1);
  assertEquals(result.events.at(-1), {
    type: "stage_finished",
    stage: "command",
    status: "failed",
    error: "Command 'echo first; echo last words; exit 7' failed with exit code 7",
    exitCode: 7,
  });
  assertStringIncludes(result.stderr, "last lines of output:\n  first\n  last words");
});

Deno.test("exec gives the stage the event, run id and workspace", async () => {
  const workspace = await makeWorkspace({ "deno-pipeline.ts": STAGES });
  const result = await exec(workspace, "context");
  assertEquals(result.code, 0, result.stderr);
  assertEquals(JSON.parse(result.stdout), { kind: "push", branch: "main", runId: "42", workspace });
});

Deno.test("exec runs one matrix leg by its full name", async () => {
  const workspace = await makeWorkspace({ "deno-pipeline.ts": STAGES });
  const result = await exec(workspace, "test (deno=2.1)");
  assertEquals(result.code, 0, result.stderr);
  assertEquals(result.stdout, "leg deno 2.1\n");
  assertEquals(result.events[0], { type: "stage_started", stage: "test (deno=2.1)" });
});

Deno.test("exec sends published artifacts, and artifactPath() finds placed ones", async () => {
  const workspace = await makeWorkspace({ "deno-pipeline.ts": STAGES });
  const build = await exec(workspace, "build");
  assertEquals(build.events[1], { type: "artifact", name: "out", paths: ["out.txt"] });
  const missing = await exec(workspace, "use");
  assertStringIncludes(missing.events.at(-1).error, "Cannot find artifact 'out'");
  await Deno.mkdir(`${workspace}/.deno-ci/artifacts/out`, { recursive: true });
  const found = await exec(workspace, "use");
  assertEquals(found.stdout, `artifact at ${workspace}/.deno-ci/artifacts/out\n`);
});

Deno.test("exec lets a stage opt out of failing on Deno.run children", async () => {
  const workspace = await makeWorkspace({ "deno-pipeline.ts": STAGES });
  const result = await exec(workspace, "tolerant");
  assertEquals(result.code, 0, result.stderr);
  assertEquals(result.events.at(-1).status, "success");
});

Deno.test("exec waits for Deno.run children the stage did not await", async () => {
  const workspace = await makeWorkspace({ "deno-pipeline.ts": STAGES });
  const result = await exec(workspace, "forgetful");
  assertEquals(result.code, 1);
  assertEquals(result.events.at(-1).exitCode, 5);
});

Deno.test("exec with narrow permissions keeps the control channel but denies the stage FFI", async () => {
  const workspace = await makeWorkspace({ "deno-pipeline.ts": STAGES });
  const result = await exec(workspace, "narrow");
  assertEquals(result.code, 1);
  assertEquals(result.events.length, 2);
  assertStringIncludes(result.events[1].error, "NotCapable: Requires ffi access");
});

Deno.test("exec names the stages when asked for one the pipeline does not define", async () => {
  const workspace = await makeWorkspace({ "deno-pipeline.ts": STAGES });
  const result = await exec(workspace, "nope", { flags: ["--allow-all"] });
  assertEquals(result.code, 1);
  assertEquals(result.events.length, 1);
  assertStringIncludes(
    result.events[0].error,
    "Cannot run stage 'nope': the pipeline does not define it (stages: 'forge'",
  );
});

Deno.test("exec without a control descriptor still reports the outcome by exit code", async () => {
  const workspace = await makeWorkspace({ "deno-pipeline.ts": STAGES });
  const result = await exec(workspace, "context", { controlFd: false });
  assertEquals(result.code, 0, result.stderr);
  assertEquals(result.events, []);
});

Deno.test("exec reports a pipeline file that fails to load as a failed stage", async () => {
  const workspace = await makeWorkspace({
    "deno-pipeline.ts": `throw new Error("no pipeline today");\n`,
  });
  const result = await exec(workspace, "build", { flags: ["--allow-all"] });
  assertEquals(result.code, 1);
  assertStringIncludes(
    result.events[0].error,
    "Cannot load the pipeline file: The pipeline file threw while loading: Error: no pipeline today",
  );
});

Deno.test("plan explains an import map without the pipeline file", async () => {
  const workspace = await makeWorkspace({ "deno-pipeline.ts": `export default 1;\n` });
  const result = await deno([
    "run",
    "--no-prompt",
    "--no-config",
    RUNNER,
    "plan",
    "deno-pipeline.ts",
  ], workspace);
  assertEquals(result.code, 1);
  assertStringIncludes(
    JSON.parse(result.stdout).errors[0].message,
    "The import map does not map 'deno-ci:pipeline'; create it with `runner.ts import-map",
  );
});

Deno.test("import-map needs no permissions and maps the SDK beside the runner", async () => {
  const workspace = await makeWorkspace({});
  const result = await deno([
    "run",
    "--no-prompt",
    "--no-config",
    RUNNER,
    "import-map",
    "deno-pipeline.ts",
  ], workspace);
  assertEquals(result.code, 0, result.stderr);
  assertEquals(JSON.parse(result.stdout).imports["deno-ci"], `file://${SDK_DIR}mod.ts`);
  assertEquals(
    JSON.parse(result.stdout).imports["deno-ci:pipeline"],
    `file://${workspace}/deno-pipeline.ts`,
  );
});

Deno.test("runner exits 2 with usage for a bad command line", async () => {
  const result = await deno([
    "run",
    "--no-prompt",
    "--no-config",
    RUNNER,
    "exec",
    "deno-pipeline.ts",
  ], SDK_DIR);
  assertEquals(result.code, 2);
  assertStringIncludes(result.stderr, "exec needs --stage <name>");
});

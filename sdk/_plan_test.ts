import { assert, assertEquals, assertStringIncludes } from "./_test_assert.ts";
import { stateOf } from "./_model.ts";
import { buildPlan, type Plan } from "./_plan.ts";
import { parseEvent } from "./event.ts";
import { Pipeline } from "./pipeline.ts";

const noop = () => {};

function planOf(pipeline: Pipeline, event?: Record<string, unknown>): Plan {
  return buildPlan(
    stateOf(pipeline)!,
    event ? parseEvent(JSON.stringify(event)) : null,
    "deno-pipeline.ts",
  );
}

function needs(plan: Plan): Record<string, string[]> {
  return Object.fromEntries(plan.stages.map((stage) => [stage.name, stage.needs]));
}

Deno.test("buildPlan() orders stages declared one after another", () => {
  const pipeline = new Pipeline().stage("Build", noop).stage("Test", noop).stage("Deploy", noop);
  assertEquals(needs(planOf(pipeline)), { Build: [], Test: ["Build"], Deploy: ["Test"] });
});

Deno.test("buildPlan() runs a parallel group's stages side by side", () => {
  const pipeline = new Pipeline()
    .stage("install", noop)
    .parallel((group) => {
      group.stage("lint", noop);
      group.stage("test", noop);
    })
    .stage("deploy", noop);
  const plan = planOf(pipeline);
  assertEquals(needs(plan), {
    install: [],
    lint: ["install"],
    test: ["install"],
    deploy: ["lint", "test"],
  });
  assertEquals(plan.stages.map((stage) => stage.group), [null, "parallel-1", "parallel-1", null]);
});

Deno.test("buildPlan() uses exactly the explicit needs of a stage", () => {
  const pipeline = new Pipeline()
    .stage("build", noop)
    .stage("test", noop)
    .stage("docs", { needs: ["build"] }, noop)
    .stage("deploy", { needs: ["test", "docs"] }, noop)
    .stage("notify", noop);
  assertEquals(needs(planOf(pipeline)), {
    build: [],
    test: ["build"],
    docs: ["build"],
    deploy: ["test", "docs"],
    notify: ["deploy"],
  });
});

Deno.test("buildPlan() expands needs on a group or matrix name to all its stages", () => {
  const pipeline = new Pipeline()
    .parallel("checks", (group) => {
      group.stage("fmt", noop);
      group.stage("lint", noop);
    })
    .matrix("test", { deno: ["1.46", "2.1"] }, { needs: [] }, noop)
    .stage("deploy", { needs: ["checks", "test"] }, noop);
  assertEquals(needs(planOf(pipeline)).deploy, [
    "fmt",
    "lint",
    "test (deno=1.46)",
    "test (deno=2.1)",
  ]);
});

Deno.test("buildPlan() makes one stage per matrix combination", () => {
  const pipeline = new Pipeline()
    .stage("build", noop)
    .matrix("test", { deno: ["1.46", "2.1"], os: ["linux", "mac"] }, noop)
    .stage("deploy", noop);
  const plan = planOf(pipeline);
  assertEquals(plan.stages.map((stage) => stage.name), [
    "build",
    "test (deno=1.46, os=linux)",
    "test (deno=1.46, os=mac)",
    "test (deno=2.1, os=linux)",
    "test (deno=2.1, os=mac)",
    "deploy",
  ]);
  assertEquals(plan.stages[3].matrix, { deno: "2.1", os: "linux" });
  assertEquals(plan.stages[3].matrixName, "test");
  assertEquals(plan.stages[3].needs, ["build"]);
  assertEquals(plan.stages[5].needs.length, 4);
});

Deno.test("buildPlan() reports duplicates, unknown needs and cycles together", () => {
  const pipeline = new Pipeline()
    .stage("a", { needs: ["c"] }, noop)
    .stage("b", noop)
    .stage("b", noop)
    .stage("c", { needs: ["a", "nope"] }, noop);
  const plan = planOf(pipeline);
  assertEquals(plan.stages, []);
  const messages = plan.errors.map((error) => error.message);
  assertEquals(messages.length, 3);
  assertStringIncludes(messages[0], "Stages need each other in a cycle: 'a' needs 'c' needs 'a'");
  assertStringIncludes(
    messages[1],
    "Stage 'b' is declared twice; the first declaration is at line",
  );
  assertEquals(messages[2], "Stage 'c' needs 'nope', which the pipeline does not define");
  assert(plan.errors.every((error) => error.file.endsWith("_plan_test.ts") && error.line! > 0));
});

Deno.test("buildPlan() reports a stage without a function and an empty group", () => {
  const pipeline = new Pipeline();
  (pipeline.stage as (name: string, options: object) => void)("lonely", {});
  pipeline.parallel("empty", () => {});
  const messages = planOf(pipeline).errors.map((error) => error.message);
  assertEquals(messages, [
    "Stage 'lonely' needs a function to run",
    "Parallel group 'empty' declares no stages",
  ]);
});

Deno.test("buildPlan() selects stages by the event and skips what needs a skipped stage", () => {
  const pipeline = new Pipeline()
    .stage("test", noop)
    .stage("deploy", { branches: ["main"] }, noop)
    .stage("smoke", noop)
    .stage("docs", { needs: ["test"], paths: ["docs/**"] }, noop);
  const plan = planOf(pipeline, { kind: "push", branch: "dev", changedFiles: ["src/a.ts"] });
  assertEquals(plan.stages.map((stage) => [stage.name, stage.selected, stage.skipReason]), [
    ["test", true, null],
    ["deploy", false, `branch 'dev' does not match branches ["main"]`],
    ["smoke", false, "needs 'deploy', which is skipped"],
    ["docs", false, `no changed file matches paths ["docs/**"]`],
  ]);
});

Deno.test("buildPlan() selects everything without an event", () => {
  const pipeline = new Pipeline().stage("deploy", { branches: ["main"] }, noop);
  assertEquals(planOf(pipeline).stages[0].selected, true);
});

Deno.test("buildPlan() lists the deno flags of each stage", () => {
  const pipeline = new Pipeline()
    .stage("all", noop)
    .stage(
      "narrow",
      { permissions: { net: false, write: ["dist"], env: ["HOME"], ffi: false } },
      noop,
    );
  const [all, narrow] = planOf(pipeline).stages;
  assertEquals(all.denoFlags, [
    "--allow-read",
    "--allow-write",
    "--allow-net",
    "--allow-env",
    "--allow-run",
    "--allow-ffi",
    "--allow-sys",
    "--allow-import",
  ]);
  assertEquals(narrow.denoFlags.slice(0, 3), [
    "--allow-read",
    "--allow-write=dist",
    "--allow-env=HOME,DENO_CI_EVENT,DENO_CI_RUN_ID,DENO_CI_WORKSPACE,DENO_CI_STAGE,DENO_CI_CONTROL_FD,DENO_CI_START_FD",
  ]);
  assert(
    narrow.denoFlags.some((flag) => flag.startsWith("--allow-ffi=/") && flag.includes("libc.so.6")),
  );
  assert(!narrow.denoFlags.some((flag) => flag.startsWith("--allow-net")));
});

Deno.test("buildPlan() reports option problems at the stage", () => {
  const pipeline = new Pipeline().stage("x", { timeout: "forever" }, noop);
  const [error] = planOf(pipeline).errors;
  assertEquals(
    error.message,
    `Stage 'x': option 'timeout' must be positive seconds or a duration like "10m", got "forever"`,
  );
  assert(error.file.endsWith("_plan_test.ts"));
});

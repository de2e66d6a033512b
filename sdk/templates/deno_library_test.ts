import { assertEquals, assertStringIncludes } from "../_test_assert.ts";
import { stateOf } from "../_model.ts";
import { buildPlan } from "../_plan.ts";
import { exec, makeWorkspace } from "../_test_utils.ts";
import { Pipeline } from "../pipeline.ts";
import { denoLibrary } from "./deno_library.ts";

Deno.test("denoLibrary() adds fmt, lint and check side by side, then test", () => {
  const pipeline = denoLibrary(new Pipeline()).stage("publish", () => {});
  const plan = buildPlan(stateOf(pipeline)!, null, "deno-pipeline.ts");
  assertEquals(plan.errors, []);
  assertEquals(plan.stages.map((stage) => [stage.name, stage.group, stage.needs]), [
    ["fmt", "checks", []],
    ["lint", "checks", []],
    ["check", "checks", []],
    ["test", null, ["fmt", "lint", "check"]],
    ["publish", null, ["test"]],
  ]);
});

Deno.test("denoLibrary() applies the prefix and shared stage options", () => {
  const pipeline = denoLibrary(new Pipeline(), {
    prefix: "core:",
    stageOptions: { paths: ["core/**"] },
  });
  const plan = buildPlan(stateOf(pipeline)!, null, "deno-pipeline.ts");
  assertEquals(plan.stages.map((stage) => stage.name), [
    "core:fmt",
    "core:lint",
    "core:check",
    "core:test",
  ]);
  assertEquals(plan.stages.map((stage) => stage.options.paths), [["core/**"], ["core/**"], [
    "core/**",
  ], ["core/**"]]);
});

const LIBRARY = {
  "deno-pipeline.ts": `import { Pipeline } from "deno-ci";
import { denoLibrary } from "deno-ci/templates";

export default denoLibrary(new Pipeline(), { entryPoints: ["mod.ts"] });
`,
  "mod.ts": "export function add(a: number, b: number): number {\n  return a + b;\n}\n",
  "mod_test.ts": `import { add } from "./mod.ts";

Deno.test("add() adds", () => {
  if (add(1, 2) !== 3) throw new Error("wrong sum");
});
`,
};

Deno.test("denoLibrary() stages pass on a clean library and publish coverage", async () => {
  const workspace = await makeWorkspace(LIBRARY);
  for (const stage of ["fmt", "lint", "check"]) {
    const result = await exec(workspace, stage);
    assertEquals(result.code, 0, `${stage}: ${result.stderr}`);
  }
  const test = await exec(workspace, "test");
  assertEquals(test.code, 0, test.stderr);
  assertEquals(test.events[1], { type: "artifact", name: "coverage", paths: ["coverage.lcov"] });
  assertStringIncludes(await Deno.readTextFile(`${workspace}/coverage.lcov`), "SF:");
});

Deno.test("denoLibrary() fmt stage fails on unformatted code", async () => {
  const workspace = await makeWorkspace({ ...LIBRARY, "mod.ts": "export const x={a:1}\n" });
  const result = await exec(workspace, "fmt");
  assertEquals(result.code, 1);
  assertEquals(result.events.at(-1).exitCode, 1);
});

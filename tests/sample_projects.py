"""Small Deno projects that tests turn into git repositories."""

# The sample pipeline of the requirements document, unchanged: it uses Deno 1's
# `Deno.run`, which the SDK provides again.
PRD_SAMPLE_PIPELINE = '''import { Pipeline } from "deno-ci";

const pipeline = new Pipeline();

pipeline.stage("Build", async () => {
  await Deno.run({ cmd: ["deno", "bundle", "main.ts"] }).status();
});

pipeline.stage("Test", async () => {
  await Deno.run({ cmd: ["deno", "test"] }).status();
});

pipeline.stage("Deploy", async () => {
  await Deno.run({ cmd: ["deploy-script.sh"] }).status();
});

export default pipeline;
'''

LIBRARY_MAIN = '''export function add(a: number, b: number): number {
  return a + b;
}

if (import.meta.main) {
  console.log(add(1, 2));
}
'''

PASSING_TEST = '''import { add } from "./main.ts";

Deno.test("add sums two numbers", () => {
  if (add(2, 3) !== 5) throw new Error("add(2, 3) should be 5");
});
'''

FAILING_TEST = '''import { add } from "./main.ts";

Deno.test("add sums two numbers", () => {
  if (add(2, 3) !== 6) throw new Error("expected 6, got " + add(2, 3));
});
'''

DEPLOY_SCRIPT = '''#!/bin/sh
echo "deploying release from $(pwd)"
'''


def prd_sample_project(failing: bool = False) -> dict[str, str]:
    """Return the files of a library with tests, deployed by the PRD's sample pipeline."""
    return {
        "deno-pipeline.ts": PRD_SAMPLE_PIPELINE,
        "main.ts": LIBRARY_MAIN,
        "main_test.ts": FAILING_TEST if failing else PASSING_TEST,
        "deploy-script.sh": DEPLOY_SCRIPT,
    }

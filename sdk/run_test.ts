import { assertEquals, assertRejects, assertStringIncludes } from "./_test_assert.ts";
import { CommandError } from "./command_error.ts";
import { run } from "./run.ts";
import { workspace } from "./workspace.ts";

Deno.test("run() returns the last lines of a successful command", async () => {
  const result = await run(["sh", "-c", "echo one; echo two >&2"]);
  assertEquals(result.exitCode, 0);
  assertEquals([...result.lastLines].sort(), ["one", "two"]);
});

Deno.test("run() throws CommandError with the exit code and the last 20 lines", async () => {
  const error = await assertRejects(
    () => run("for i in $(seq 1 30); do echo line $i; done; echo oops; exit 3"),
    CommandError,
  );
  assertEquals(error.exitCode, 3);
  assertEquals(error.command, [
    "sh",
    "-c",
    "for i in $(seq 1 30); do echo line $i; done; echo oops; exit 3",
  ]);
  assertEquals(error.lastLines.length, 20);
  assertEquals(error.lastLines[0], "line 12");
  assertEquals(error.lastLines.at(-1), "oops");
  assertStringIncludes(error.message, "failed with exit code 3");
});

Deno.test("run() keeps stderr lines in the tail", async () => {
  const error = await assertRejects(
    () => run(["sh", "-c", "echo bad input >&2; exit 2"]),
    CommandError,
  );
  assertEquals(error.lastLines, ["bad input"]);
});

Deno.test("run() keeps a last line without a newline", async () => {
  const error = await assertRejects(
    () => run(["sh", "-c", "printf 'a\\nno newline'; exit 1"]),
    CommandError,
  );
  assertEquals(error.lastLines, ["a", "no newline"]);
});

Deno.test("run() runs a bare name from the workspace root when it is not on PATH", async () => {
  const name = `deno-ci-test-${crypto.randomUUID()}.sh`;
  await Deno.writeTextFile(`${workspace}/${name}`, "#!/bin/sh\necho from-workspace\n", {
    mode: 0o755,
  });
  try {
    const result = await run([name]);
    assertEquals(result.lastLines, ["from-workspace"]);
  } finally {
    await Deno.remove(`${workspace}/${name}`);
  }
});

Deno.test("run() names the program it cannot find", async () => {
  await assertRejects(
    () => run(["deno-ci-no-such-program"]),
    Deno.errors.NotFound,
    "Cannot run 'deno-ci-no-such-program': it is neither on PATH nor a file in the workspace root",
  );
});

Deno.test("run() passes cwd and env", async () => {
  const result = await run("echo $GREETING; pwd", { cwd: "/", env: { GREETING: "hello" } });
  assertEquals(result.lastLines, ["hello", "/"]);
});

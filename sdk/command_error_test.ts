import { assertEquals } from "./_test_assert.ts";
import { CommandError } from "./command_error.ts";

Deno.test("CommandError shows a shell command as it was written", () => {
  const error = new CommandError(["sh", "-c", "deno test && echo ok"], 1, []);
  assertEquals(error.message, "Command 'deno test && echo ok' failed with exit code 1");
  assertEquals(error.name, "CommandError");
});

Deno.test("CommandError quotes arguments with spaces", () => {
  const error = new CommandError(["deno", "test", "my tests/"], 2, ["x"]);
  assertEquals(error.message, `Command 'deno test "my tests/"' failed with exit code 2`);
  assertEquals(error.lastLines, ["x"]);
});

import { assert, assertEquals } from "./_test_assert.ts";
import { callerLocation, errorLocation } from "./_location.ts";

Deno.test("callerLocation() points at the calling test file", () => {
  const location = callerLocation();
  assert(location!.file.endsWith("/_location_test.ts"));
  assertEquals(location!.line, 5);
});

Deno.test("errorLocation() prefers a frame in the given file", () => {
  const error = new Error("boom");
  error.stack =
    "Error: boom\n    at helper (file:///repo/ci/helper.ts:3:9)\n    at file:///repo/deno-pipeline.ts:7:1";
  assertEquals(errorLocation(error, "file:///repo/deno-pipeline.ts"), {
    file: "/repo/deno-pipeline.ts",
    line: 7,
    column: 1,
  });
  assertEquals(errorLocation(error, "file:///elsewhere.ts"), {
    file: "/repo/ci/helper.ts",
    line: 3,
    column: 9,
  });
});

Deno.test("errorLocation() reads the location a load error names in its message", () => {
  const error = new TypeError(
    'Module not found "file:///repo/x.ts".\n    at file:///repo/deno-pipeline.ts:2:24',
  );
  error.stack = "TypeError: ...\n    at async file:///sdk/_load.ts:40:14";
  assertEquals(errorLocation(error, "file:///other.ts"), {
    file: "/repo/deno-pipeline.ts",
    line: 2,
    column: 24,
  });
});

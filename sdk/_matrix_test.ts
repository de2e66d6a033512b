import { assertEquals } from "./_test_assert.ts";
import { checkMatrixValues, expandMatrix, legName } from "./_matrix.ts";

Deno.test("expandMatrix() varies the first dimension slowest", () => {
  assertEquals(expandMatrix({ deno: ["1.46", "2.1"], os: ["linux", "mac"] }), [
    { deno: "1.46", os: "linux" },
    { deno: "1.46", os: "mac" },
    { deno: "2.1", os: "linux" },
    { deno: "2.1", os: "mac" },
  ]);
});

Deno.test("legName() lists the values in declaration order", () => {
  assertEquals(
    legName("test", { deno: "2.1", os: "linux", fast: true }),
    "test (deno=2.1, os=linux, fast=true)",
  );
});

Deno.test("checkMatrixValues() explains unusable values", () => {
  assertEquals(checkMatrixValues({ deno: ["2.1"] }), null);
  assertEquals(checkMatrixValues({}), "its values must name at least one dimension");
  assertEquals(checkMatrixValues({ os: "linux" }), "dimension 'os' must be a non-empty list");
  assertEquals(
    checkMatrixValues({ os: [{}] }),
    "dimension 'os' may only hold strings, numbers and booleans",
  );
});

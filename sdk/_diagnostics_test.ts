import { assertEquals } from "./_test_assert.ts";
import { parseDiagnostics } from "./_diagnostics.ts";

Deno.test("parseDiagnostics() reads type errors with and without a source excerpt", () => {
  const output = `TS2307 [ERROR]: Cannot find module 'file:///repo/nope.ts'.
    at file:///repo/deno-pipeline.ts:1:19

TS2322 [ERROR]: Type 'string' is not assignable to type 'number'.
const a: number = "s";
      ^
    at file:///repo/deno-pipeline.ts:2:7

TS2345 [ERROR]: Argument of type '{ branch: string[]; }' is not assignable to parameter of type 'StageOptions'.
  Object literal may only specify known properties.
pipeline.stage("x", { branch: ["main"] }, () => {});
                      ~~~~~~
    at file:///repo/my%20dir/deno-pipeline.ts:4:23

    'x' is declared here.
    const x = 1;
          ~
        at file:///repo/deno-pipeline.ts:9:7

Found 3 errors.

error: Type checking failed.
`;
  assertEquals(parseDiagnostics(output, "deno-pipeline.ts"), [
    {
      file: "/repo/deno-pipeline.ts",
      line: 1,
      column: 19,
      message: "TS2307: Cannot find module 'file:///repo/nope.ts'.",
    },
    {
      file: "/repo/deno-pipeline.ts",
      line: 2,
      column: 7,
      message: "TS2322: Type 'string' is not assignable to type 'number'.",
    },
    {
      file: "/repo/my dir/deno-pipeline.ts",
      line: 4,
      column: 23,
      message:
        "TS2345: Argument of type '{ branch: string[]; }' is not assignable to parameter of type 'StageOptions'.\nObject literal may only specify known properties.",
    },
  ]);
});

Deno.test("parseDiagnostics() reads a syntax error", () => {
  const output = `error: SyntaxError: Expression expected
  |
1 | const a = ;
  |           ~
    at file:///repo/deno-pipeline.ts:1:11
`;
  assertEquals(parseDiagnostics(output, "x"), [
    {
      file: "/repo/deno-pipeline.ts",
      line: 1,
      column: 11,
      message: "SyntaxError: Expression expected",
    },
  ]);
});

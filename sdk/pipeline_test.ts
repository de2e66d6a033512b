import { assert, assertEquals } from "./_test_assert.ts";
import { allStages, stateOf } from "./_model.ts";
import { Pipeline } from "./pipeline.ts";

Deno.test("Pipeline.stage() records where it was called", () => {
  const pipeline = new Pipeline();
  const line = new Error().stack!.split("\n")[1].match(/:(\d+):\d+\)?$/)![1];
  pipeline.stage("here", () => {});
  const [record] = allStages(stateOf(pipeline)!);
  assert(record.location!.file.endsWith("/pipeline_test.ts"));
  assertEquals(record.location!.line, Number(line) + 1);
  assertEquals(record.location!.column, 12);
});

Deno.test("Pipeline.matrix() calls the function with the leg's values", async () => {
  const seen: unknown[] = [];
  const pipeline = new Pipeline().matrix("test", { deno: ["1.46", "2.1"], fast: [true] }, (leg) => {
    const version: "1.46" | "2.1" = leg.deno;
    seen.push({ version, fast: leg.fast });
  });
  for (const record of allStages(stateOf(pipeline)!)) await record.run!();
  assertEquals(seen, [{ version: "1.46", fast: true }, { version: "2.1", fast: true }]);
});

Deno.test("Pipeline.matrix() records a problem for empty values", () => {
  const pipeline = new Pipeline().matrix("test", { deno: [] }, () => {});
  assertEquals(stateOf(pipeline)!.problems.map((problem) => problem.message), [
    "Matrix 'test': dimension 'deno' must be a non-empty list",
  ]);
});

Deno.test("Pipeline.parallel() names unnamed groups in order", () => {
  const pipeline = new Pipeline()
    .parallel((group) => group.stage("a", () => {}))
    .parallel((group) => group.stage("b", () => {}));
  assertEquals(allStages(stateOf(pipeline)!).map((record) => record.group), [
    "parallel-1",
    "parallel-2",
  ]);
});

Deno.test("Pipeline.stage() never throws on bad arguments", () => {
  const pipeline = new Pipeline();
  (pipeline.stage as (...args: unknown[]) => void)("", () => {});
  (pipeline.stage as (...args: unknown[]) => void)("x", "not options", () => {});
  assertEquals(stateOf(pipeline)!.problems.map((problem) => problem.message), [
    'A stage needs a non-empty name, got ""',
    "Stage 'x' options must be an object, got \"not options\"",
  ]);
});

Deno.test("Pipeline.stage() rejects unprintable and overlong names", () => {
  const pipeline = new Pipeline()
    .stage("line\nbreak", () => {})
    .stage("\u001b[31mred", () => {})
    .stage("x".repeat(201), () => {})
    .stage("bad\u202ename", () => {});
  const messages = stateOf(pipeline)!.problems.map((problem) => problem.message);
  assertEquals(messages.length, 4);
  assertEquals(
    messages[0],
    'Stage name "line\\nbreak" contains control characters; use printable text',
  );
  assertEquals(
    messages[1],
    'Stage name "\\u001b[31mred" contains control characters; use printable text',
  );
  assertEquals(messages[2].endsWith("is 201 characters long; use at most 200"), true);
  assertEquals(
    messages[3],
    'Stage name "bad\\u202ename" contains control characters; use printable text',
  );
});

Deno.test("Pipeline records concurrency and notify() rules", () => {
  const pipeline = new Pipeline({ concurrency: { cancelInProgress: true } })
    .notify({ on: ["failure", "fixed"], channel: "slack" })
    .notify({ on: ["always"], channel: "email", to: "team@example.com" });
  const state = stateOf(pipeline)!;
  assertEquals(state.concurrency, { cancelInProgress: true });
  assertEquals(state.notifications, [
    { on: ["failure", "fixed"], channel: "slack" },
    { on: ["always"], channel: "email", to: "team@example.com" },
  ]);
  assertEquals(state.problems, []);
});

Deno.test("notify() reports unknown events and a missing channel", () => {
  // @ts-expect-error: "exploded" is not a NotifyEvent
  const pipeline = new Pipeline().notify({ on: ["exploded"], channel: "" });
  const [problem] = stateOf(pipeline)!.problems;
  assert(problem.message.includes("unknown: 'exploded'"));
  assertEquals(stateOf(pipeline)!.notifications, []);
});

import { assertEquals, assertThrows } from "./_test_assert.ts";
import { parseEvent } from "./event.ts";

Deno.test("parseEvent() fills missing fields with a manual event", () => {
  assertEquals(parseEvent("{}"), {
    kind: "manual",
    branch: "",
    tag: "",
    commit: "",
    before: "",
    pullRequest: null,
    author: "",
    message: "",
    changedFiles: null,
  });
});

Deno.test("parseEvent() reads a pull request", () => {
  const event = parseEvent(JSON.stringify({
    kind: "pull_request",
    branch: "feature",
    commit: "abc",
    pullRequest: { number: 12, sourceBranch: "feature", targetBranch: "main", fork: true },
    changedFiles: ["src/a.ts"],
  }));
  assertEquals(event.pullRequest, {
    number: 12,
    sourceBranch: "feature",
    targetBranch: "main",
    fork: true,
  });
  assertEquals(event.changedFiles, ["src/a.ts"]);
});

Deno.test("parseEvent() rejects an unknown kind and wrong types", () => {
  assertThrows(
    () => parseEvent('{"kind":"deploy"}'),
    TypeError,
    'kind "deploy" is not one of push',
  );
  assertThrows(() => parseEvent('{"branch":1}'), TypeError, "'branch' must be a string");
  assertThrows(() => parseEvent("[]"), TypeError, "expected a JSON object");
  assertThrows(() => parseEvent("{"), TypeError, "Cannot parse the trigger event");
});

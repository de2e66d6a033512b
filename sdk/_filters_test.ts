import { assertEquals } from "./_test_assert.ts";
import { skipReason } from "./_filters.ts";
import { normaliseOptions } from "./_options.ts";
import { parseEvent } from "./event.ts";
import type { StageOptions } from "./stage_options.ts";

function reason(options: StageOptions, event: Record<string, unknown>): string | null {
  return skipReason(normaliseOptions(options).options, parseEvent(JSON.stringify(event)));
}

const push = (branch: string, changedFiles?: string[]) => ({ kind: "push", branch, changedFiles });

Deno.test("skipReason() selects a stage without filters", () => {
  assertEquals(reason({}, push("dev")), null);
});

Deno.test("skipReason() matches branches by glob", () => {
  assertEquals(reason({ branches: ["release/*"] }, push("release/1.2")), null);
  assertEquals(
    reason({ branches: ["main", "release/*"] }, push("dev")),
    `branch 'dev' does not match branches ["main","release/*"]`,
  );
});

Deno.test("skipReason() excludes branches with a leading !", () => {
  assertEquals(reason({ branches: ["!main"] }, push("dev")), null);
  assertEquals(
    reason({ branches: ["**", "!main"] }, push("main")),
    `branch 'main' does not match branches ["**","!main"]`,
  );
});

Deno.test("skipReason() matches a pull request's target branch", () => {
  const event = {
    kind: "pull_request",
    branch: "feature",
    pullRequest: { number: 7, sourceBranch: "feature", targetBranch: "main", fork: false },
  };
  assertEquals(reason({ branches: ["main"] }, event), null);
});

Deno.test("skipReason() matches tags and skips events without one", () => {
  assertEquals(reason({ tags: ["v*", "!v*-rc*"] }, { kind: "tag", tag: "v1.0.0" }), null);
  assertEquals(
    reason({ tags: ["v*", "!v*-rc*"] }, { kind: "tag", tag: "v1.0.0-rc1" }),
    `tag 'v1.0.0-rc1' does not match tags ["v*","!v*-rc*"]`,
  );
  assertEquals(reason({ tags: ["v*"] }, push("main")), `the event has no tag to match tags ["v*"]`);
});

Deno.test("skipReason() selects when either branches or tags match", () => {
  const options = { branches: ["main"], tags: ["v*"] };
  assertEquals(reason(options, push("main")), null);
  assertEquals(reason(options, { kind: "tag", tag: "v2" }), null);
  assertEquals(
    reason(options, push("dev")),
    `branch 'dev' does not match branches ["main"] and the event has no tag to match tags ["v*"]`,
  );
});

Deno.test("skipReason() filters by event kind", () => {
  assertEquals(reason({ events: ["push", "manual"] }, push("main")), null);
  assertEquals(
    reason({ events: ["tag"] }, push("main")),
    `event 'push' is not one of events ["tag"]`,
  );
});

Deno.test("skipReason() matches changed files against paths with ** and negation", () => {
  const options = { paths: ["src/**", "!src/**/*.md"] };
  assertEquals(reason(options, push("main", ["src/a/b.ts", "README.md"])), null);
  assertEquals(
    reason(options, push("main", ["src/docs/guide.md", "README.md"])),
    `no changed file matches paths ["src/**","!src/**/*.md"]`,
  );
});

Deno.test("skipReason() ignores paths when the changed files are unknown", () => {
  assertEquals(reason({ paths: ["src/**"] }, push("main")), null);
});

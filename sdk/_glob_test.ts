import { assert, assertFalse } from "./_test_assert.ts";
import { globToRegExp, matchGlobList } from "./_glob.ts";

const cases: [string, string, boolean][] = [
  ["main", "main", true],
  ["main", "mainline", false],
  ["release/*", "release/1.0", true],
  ["release/*", "release/1.0/hotfix", false],
  ["release/**", "release/1.0/hotfix", true],
  ["v*", "v1.2.3", true],
  ["v?.?", "v1.2", true],
  ["src/**", "src", true],
  ["src/**", "src/a/b.ts", true],
  ["src/**", "srcx/a.ts", false],
  ["**/*.ts", "main.ts", true],
  ["**/*.ts", "a/b/c.ts", true],
  ["**/*.ts", "a/b/c.js", false],
  ["docs/**/*.md", "docs/a.md", true],
  ["docs/**/*.md", "docs/x/y/a.md", true],
  ["*.{ts,tsx}", "a.tsx", true],
  ["*.{ts,tsx}", "a.js", false],
  ["[abc].txt", "b.txt", true],
  ["[!abc].txt", "b.txt", false],
  ["a.b", "axb", false],
  ["(x)+", "(x)+", true],
];

for (const [glob, value, expected] of cases) {
  Deno.test(`globToRegExp() ${expected ? "matches" : "rejects"} '${value}' for '${glob}'`, () => {
    assert(globToRegExp(glob).test(value) === expected);
  });
}

Deno.test("matchGlobList() excludes values matching a negated pattern", () => {
  assert(matchGlobList("feature/x", ["**", "!main"]));
  assertFalse(matchGlobList("main", ["**", "!main"]));
});

Deno.test("matchGlobList() with only negated patterns includes everything else", () => {
  assert(matchGlobList("dev", ["!main"]));
  assertFalse(matchGlobList("main", ["!main"]));
});

Deno.test("matchGlobList() requires a positive match when one is given", () => {
  assertFalse(matchGlobList("dev", ["main", "release/*"]));
});

import { assertEquals } from "./_test_assert.ts";
import { normaliseOptions, parseTimeout } from "./_options.ts";
import type { StageOptions } from "./stage_options.ts";

Deno.test("normaliseOptions() fills every default", () => {
  const { options, problems } = normaliseOptions({});
  assertEquals(problems, []);
  assertEquals(options, {
    needs: null,
    branches: null,
    tags: null,
    events: null,
    paths: null,
    env: {},
    timeout: null,
    retries: 0,
    permissions: {
      read: true,
      write: true,
      net: true,
      env: true,
      run: true,
      ffi: true,
      sys: true,
      import: true,
    },
    cache: { paths: [], key: [] },
    allowFailure: false,
    secrets: [],
    allowChildFailures: false,
  });
});

Deno.test("normaliseOptions() keeps given permissions and defaults the others to true", () => {
  const { options } = normaliseOptions({ permissions: { net: false, read: ["src", "deno.json"] } });
  assertEquals(options.permissions.net, false);
  assertEquals(options.permissions.read, ["src", "deno.json"]);
  assertEquals(options.permissions.write, true);
});

Deno.test("normaliseOptions() converts a timeout string to seconds", () => {
  assertEquals(normaliseOptions({ timeout: "10m" }).options.timeout, 600);
});

Deno.test("normaliseOptions() reports every bad value", () => {
  const { problems } = normaliseOptions({
    branch: ["main"],
    events: ["push", "deploy"],
    timeout: "soon",
    retries: -1,
    permissions: { network: true, read: 3 },
    env: { "BAD NAME": "x", GOOD: 1 },
    cache: { paths: ["/etc"] },
    secrets: ["not valid"],
    allowFailure: "yes",
  } as unknown as StageOptions);
  assertEquals(problems, [
    "unknown option 'branch'",
    "option 'events' has unknown event 'deploy'; expected some of push, pull_request, merge, tag, manual, schedule",
    "env name 'BAD NAME' is not a valid environment variable name",
    "env 'GOOD' must be a string, got 1",
    'option \'timeout\' must be positive seconds or a duration like "10m", got "soon"',
    "option 'retries' must be a whole number from 0 to 10, got -1",
    "unknown permission 'network'; expected some of read, write, net, env, run, ffi, sys, import",
    "permission 'read' must be true, false or a list of strings, got 3",
    "cache path '/etc' must be relative to the workspace and stay inside it",
    "option 'allowFailure' must be true or false, got \"yes\"",
    "secret name 'not valid' is not a valid environment variable name",
  ]);
});

Deno.test("parseTimeout() reads seconds, units and combinations", () => {
  assertEquals(parseTimeout(90), 90);
  assertEquals(parseTimeout("45"), 45);
  assertEquals(parseTimeout("90s"), 90);
  assertEquals(parseTimeout("2h"), 7200);
  assertEquals(parseTimeout("1h30m"), 5400);
  assertEquals(parseTimeout("0"), null);
  assertEquals(parseTimeout("ten minutes"), null);
  assertEquals(parseTimeout(""), null);
});

Deno.test("normaliseOptions() rejects env and secret names the platform sets", () => {
  const { problems } = normaliseOptions({
    env: { DENO_CI_START_FD: "0", DENO_DIR: "/x", PATH: "/usr/bin" },
    secrets: ["DENO_CI_RUN_ID"],
  });
  assertEquals(problems, [
    "env name 'DENO_CI_START_FD' is set by the platform; use another name (CI, DENO_DIR and names starting with DENO_CI_ are reserved)",
    "env name 'DENO_DIR' is set by the platform; use another name (CI, DENO_DIR and names starting with DENO_CI_ are reserved)",
    "secret name 'DENO_CI_RUN_ID' is set by the platform; use another name (CI, DENO_DIR and names starting with DENO_CI_ are reserved)",
  ]);
});

Deno.test("normaliseOptions() rejects a timeout over 30 days", () => {
  assertEquals(normaliseOptions({ timeout: 1e308 }).problems, [
    "option 'timeout' must be at most 2592000 seconds (30 days), got 1e+308",
  ]);
  assertEquals(normaliseOptions({ timeout: "720h" }).problems, []);
});

Deno.test("normaliseOptions() refuses cache paths that would replace the checkout", () => {
  for (const path of [".", "./", ".git", ".git/objects", "./.git"]) {
    const { problems } = normaliseOptions({ cache: { paths: [path] } });
    assertEquals(problems, [
      `cache path '${path}' would replace the checkout; cache a folder the stage makes, such as '.cache'`,
    ]);
  }
  assertEquals(normaliseOptions({ cache: { paths: [".cache", "node_modules"] } }).problems, []);
});

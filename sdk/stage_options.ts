/**
 * Options that say when a stage runs and what it may do.
 *
 * @module
 */

import type { EventKind } from "./event.ts";

/**
 * One Deno permission: `true` grants it fully, `false` not at all, a list of
 * strings grants it for those paths, hosts, variables or commands only (the
 * values of Deno's `--allow-*` flags; relative paths are relative to the
 * workspace).
 *
 * @example
 * ```ts
 * import type { PermissionValue } from "deno-ci";
 *
 * const readSources: PermissionValue = ["src", "deno.json"];
 * ```
 */
export type PermissionValue = boolean | readonly string[];

/**
 * The Deno permissions a stage's process gets. A key that is left out is
 * `true`: the bubblewrap sandbox around every stage is the main boundary, and
 * these narrow it further.
 *
 * `net: false` also takes the network away from the sandbox, so commands the
 * stage starts have none either.
 *
 * @example A stage that only reads the repository and talks to one host
 * ```ts
 * import { Pipeline } from "deno-ci";
 *
 * export default new Pipeline()
 *   .stage("links", {
 *     permissions: { write: false, run: false, ffi: false, net: ["example.com"] },
 *   }, async () => {
 *     await fetch("https://example.com/");
 *   });
 * ```
 */
export interface StagePermissions {
  /** File system reads (`--allow-read`). */
  read?: PermissionValue;
  /** File system writes (`--allow-write`). */
  write?: PermissionValue;
  /** Network access (`--allow-net`); `false` also means no network in the sandbox. */
  net?: PermissionValue;
  /** Environment variables (`--allow-env`). */
  env?: PermissionValue;
  /** Starting processes (`--allow-run`). */
  run?: PermissionValue;
  /** Loading native libraries (`--allow-ffi`). */
  ffi?: PermissionValue;
  /** System information (`--allow-sys`). */
  sys?: PermissionValue;
  /** Importing code from remote hosts (`--allow-import`). */
  import?: PermissionValue;
}

/**
 * What a stage keeps between runs.
 *
 * @example Cache Deno's module cache, keyed on the lock file
 * ```ts
 * import { Pipeline, run } from "deno-ci";
 *
 * export default new Pipeline()
 *   .stage("test", { cache: { key: ["deno.lock"], paths: [".deno"] } }, async () => {
 *     await run("deno test", { env: { DENO_DIR: ".deno" } });
 *   });
 * ```
 */
export interface CacheOptions {
  /** Extra paths, relative to the workspace, to save after the stage and restore before it. */
  paths?: readonly string[];
  /** Files whose paths and contents form the cache key, with the platform's defaults. */
  key?: readonly string[];
}

/**
 * How a stage is scheduled, filtered and sandboxed. Every option is optional.
 *
 * Filters (`branches`, `tags`, `events`, `paths`) are evaluated against the
 * triggering event when the run is planned; a stage whose filters do not match
 * is skipped, and so is every stage that needs it.
 *
 * @example Deploy from main only, after the tests
 * ```ts
 * import { Pipeline, run } from "deno-ci";
 *
 * export default new Pipeline()
 *   .stage("test", () => run("deno test"))
 *   .stage("deploy", {
 *     branches: ["main"],
 *     events: ["push"],
 *     secrets: ["DEPLOY_TOKEN"],
 *     timeout: "10m",
 *     retries: 1,
 *   }, () => run("./deploy.sh"));
 * ```
 */
export interface StageOptions {
  /**
   * Stages (or parallel groups or matrices, meaning all their stages) that
   * must succeed first. Given, it replaces the implicit "after the previous
   * entry" ordering.
   */
  needs?: readonly string[];
  /**
   * Branch globs; a leading `!` negates. For pull requests the target branch
   * is matched. With `tags` too, the stage runs if either matches.
   */
  branches?: readonly string[];
  /** Tag globs; a leading `!` negates. */
  tags?: readonly string[];
  /** Event kinds the stage runs for. */
  events?: readonly EventKind[];
  /**
   * Globs matched against the files the event changed (`**` crosses folders,
   * a leading `!` excludes); the stage runs if any changed file matches.
   * Ignored when the platform cannot tell which files changed.
   */
  paths?: readonly string[];
  /**
   * Environment variables the platform sets for the stage. `CI`, `DENO_DIR` and
   * names starting with `DENO_CI_` are the platform's own and are rejected.
   */
  env?: Readonly<Record<string, string>>;
  /** Time limit: seconds, or a string such as `"90s"`, `"10m"` or `"1h30m"`. */
  timeout?: number | string;
  /**
   * How many times to try the stage again after it fails, also when
   * `allowFailure` lets the failure pass.
   */
  retries?: number;
  /** The Deno permissions of the stage's process; all granted by default. */
  permissions?: StagePermissions;
  /** Extra cached paths and cache key files. */
  cache?: CacheOptions;
  /** Whether the run may succeed although this stage failed. */
  allowFailure?: boolean;
  /** Names of project secrets to put in the stage's environment. */
  secrets?: readonly string[];
  /**
   * Whether a command started with the legacy `Deno.run` that exits non-zero
   * may leave the stage successful. By default it fails the stage.
   */
  allowChildFailures?: boolean;
}

// Validation and normalisation of StageOptions into the plan's shape.
//
// Pipeline files are TypeScript, but the plan is computed without type
// checking, so every value is checked here and each mistake becomes a problem
// record rather than an exception.

import { EVENT_KINDS, type EventKind } from "./event.ts";
import type { StageOptions } from "./stage_options.ts";

/** The Deno permission names, in the order of the plan's `permissions` object. */
export const PERMISSION_NAMES = [
  "read",
  "write",
  "net",
  "env",
  "run",
  "ffi",
  "sys",
  "import",
] as const;

/** One of {@linkcode PERMISSION_NAMES}. */
export type PermissionName = typeof PERMISSION_NAMES[number];

/** Permissions with every key present. */
export type NormalisedPermissions = Record<PermissionName, boolean | string[]>;

/** Stage options as they appear in the plan: every key present, defaults filled in. */
export interface NormalisedOptions {
  needs: string[] | null;
  branches: string[] | null;
  tags: string[] | null;
  events: EventKind[] | null;
  paths: string[] | null;
  env: Record<string, string>;
  timeout: number | null;
  retries: number;
  permissions: NormalisedPermissions;
  cache: { paths: string[]; key: string[] };
  allowFailure: boolean;
  secrets: string[];
  allowChildFailures: boolean;
}

const KNOWN_KEYS = [
  "needs",
  "branches",
  "tags",
  "events",
  "paths",
  "env",
  "timeout",
  "retries",
  "permissions",
  "cache",
  "allowFailure",
  "secrets",
  "allowChildFailures",
];
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const DURATION = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;

/** Normalises a stage's options; `problems` says what was wrong, one sentence each. */
export function normaliseOptions(options: StageOptions): {
  options: NormalisedOptions;
  problems: string[];
} {
  const problems: string[] = [];
  const raw = options as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (!KNOWN_KEYS.includes(key)) problems.push(`unknown option '${key}'`);
  }
  const normalised: NormalisedOptions = {
    needs: stringList(raw, "needs", problems),
    branches: stringList(raw, "branches", problems),
    tags: stringList(raw, "tags", problems),
    events: eventList(raw, problems),
    paths: stringList(raw, "paths", problems),
    env: envRecord(raw.env, problems),
    timeout: timeoutSeconds(raw.timeout, problems),
    retries: retryCount(raw.retries, problems),
    permissions: normalisePermissions(raw.permissions, problems),
    cache: cacheOptions(raw.cache, problems),
    allowFailure: flag(raw, "allowFailure", problems),
    secrets: stringList(raw, "secrets", problems) ?? [],
    allowChildFailures: flag(raw, "allowChildFailures", problems),
  };
  for (const secret of normalised.secrets) {
    if (!ENV_NAME.test(secret)) {
      problems.push(`secret name '${secret}' is not a valid environment variable name`);
    } else if (isReserved(secret)) {
      problems.push(reservedProblem("secret", secret));
    }
  }
  return { options: normalised, problems };
}

/** Parses a timeout: seconds, or a string such as "90s", "10m" or "1h30m". */
export function parseTimeout(value: number | string): number | null {
  if (typeof value === "number") return Number.isFinite(value) && value > 0 ? value : null;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return parseTimeout(Number(trimmed));
  const match = DURATION.exec(trimmed);
  if (!match || trimmed === "") return null;
  const [hours, minutes, seconds] = match.slice(1).map((part) => Number(part ?? 0));
  const total = hours * 3600 + minutes * 60 + seconds;
  return total > 0 ? total : null;
}

function stringList(
  raw: Record<string, unknown>,
  key: string,
  problems: string[],
): string[] | null {
  const value = raw[key];
  if (value === undefined || value === null) return null;
  if (!Array.isArray(value) || !value.every((item) => typeof item === "string" && item !== "")) {
    problems.push(
      `option '${key}' must be a list of non-empty strings, got ${JSON.stringify(value)}`,
    );
    return null;
  }
  return [...value];
}

function eventList(raw: Record<string, unknown>, problems: string[]): EventKind[] | null {
  const list = stringList(raw, "events", problems);
  if (list === null) return null;
  const unknown = list.filter((kind) => !EVENT_KINDS.includes(kind as EventKind));
  if (unknown.length > 0) {
    problems.push(
      `option 'events' has unknown event ${
        unknown.map((kind) => `'${kind}'`).join(", ")
      }; expected some of ${EVENT_KINDS.join(", ")}`,
    );
  }
  return list.filter((kind) => EVENT_KINDS.includes(kind as EventKind)) as EventKind[];
}

// The platform sets these for every stage; a stage that set them would break its own runner or cache.
const RESERVED_PREFIX = "DENO_CI_";
const RESERVED_NAMES = new Set(["CI", "DENO_DIR"]);

function isReserved(name: string): boolean {
  return name.startsWith(RESERVED_PREFIX) || RESERVED_NAMES.has(name);
}

function reservedProblem(kind: string, name: string): string {
  return `${kind} name '${name}' is set by the platform; use another name (CI, DENO_DIR and names starting with ${RESERVED_PREFIX} are reserved)`;
}

function envRecord(value: unknown, problems: string[]): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value !== "object" || Array.isArray(value)) {
    problems.push("option 'env' must be an object of strings");
    return {};
  }
  const result: Record<string, string> = {};
  for (const [name, item] of Object.entries(value)) {
    if (!ENV_NAME.test(name)) {
      problems.push(`env name '${name}' is not a valid environment variable name`);
    } else if (isReserved(name)) {
      problems.push(reservedProblem("env", name));
    } else if (typeof item !== "string") {
      problems.push(`env '${name}' must be a string, got ${JSON.stringify(item)}`);
    } else result[name] = item;
  }
  return result;
}

function timeoutSeconds(value: unknown, problems: string[]): number | null {
  if (value === undefined || value === null) return null;
  const seconds = typeof value === "number" || typeof value === "string"
    ? parseTimeout(value)
    : null;
  if (seconds === null) {
    problems.push(
      `option 'timeout' must be positive seconds or a duration like "10m", got ${
        JSON.stringify(value)
      }`,
    );
  } else if (seconds > MAX_TIMEOUT_SECONDS) {
    problems.push(
      `option 'timeout' must be at most ${MAX_TIMEOUT_SECONDS} seconds (30 days), got ${
        JSON.stringify(value)
      }`,
    );
    return null;
  }
  return seconds;
}

// The platform refuses longer timeouts too (app/pipelines/plan_check.py).
const MAX_TIMEOUT_SECONDS = 30 * 24 * 3600;

// The platform refuses more, so that a broken stage cannot keep a worker busy without end.
const MAX_RETRIES = 10;

function retryCount(value: unknown, problems: string[]): number {
  if (value === undefined || value === null) return 0;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > MAX_RETRIES) {
    problems.push(
      `option 'retries' must be a whole number from 0 to ${MAX_RETRIES}, got ${
        JSON.stringify(value)
      }`,
    );
    return 0;
  }
  return value;
}

function flag(raw: Record<string, unknown>, key: string, problems: string[]): boolean {
  const value = raw[key];
  if (value === undefined || value === null) return false;
  if (typeof value !== "boolean") {
    problems.push(`option '${key}' must be true or false, got ${JSON.stringify(value)}`);
    return false;
  }
  return value;
}

function cacheOptions(value: unknown, problems: string[]): { paths: string[]; key: string[] } {
  if (value === undefined || value === null) return { paths: [], key: [] };
  if (typeof value !== "object" || Array.isArray(value)) {
    problems.push("option 'cache' must be an object with 'paths' and 'key' lists");
    return { paths: [], key: [] };
  }
  const raw = value as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (key !== "paths" && key !== "key") problems.push(`unknown cache option '${key}'`);
  }
  const paths = stringList(raw, "paths", problems) ?? [];
  const key = stringList(raw, "key", problems) ?? [];
  for (const path of [...paths, ...key]) {
    if (path.startsWith("/") || path.split("/").includes("..")) {
      problems.push(`cache path '${path}' must be relative to the workspace and stay inside it`);
    }
  }
  for (const path of paths) {
    const first = path.split("/").find((part) => part !== "" && part !== ".");
    // A restored path replaces the checkout's: caching the repository itself would run old code.
    if (first === undefined || first === ".git") {
      problems.push(`cache path '${path}' would replace the checkout; cache a folder the stage makes, such as '.cache'`);
    }
  }
  return { paths, key };
}

function normalisePermissions(value: unknown, problems: string[]): NormalisedPermissions {
  const result = Object.fromEntries(
    PERMISSION_NAMES.map((name) => [name, true]),
  ) as NormalisedPermissions;
  if (value === undefined || value === null) return result;
  if (typeof value !== "object" || Array.isArray(value)) {
    problems.push("option 'permissions' must be an object such as { net: false }");
    return result;
  }
  for (const [name, item] of Object.entries(value)) {
    if (!(PERMISSION_NAMES as readonly string[]).includes(name)) {
      problems.push(
        `unknown permission '${name}'; expected some of ${PERMISSION_NAMES.join(", ")}`,
      );
    } else if (typeof item === "boolean") {
      result[name as PermissionName] = item;
    } else if (
      Array.isArray(item) && item.every((entry) => typeof entry === "string" && entry !== "")
    ) {
      const withComma = item.find((entry: string) => entry.includes(","));
      if (withComma) {
        problems.push(`permission '${name}' entry '${withComma}' cannot contain a comma`);
      }
      result[name as PermissionName] = [...item];
    } else {
      problems.push(
        `permission '${name}' must be true, false or a list of strings, got ${
          JSON.stringify(item)
        }`,
      );
    }
  }
  return result;
}

/**
 * Deploy stages: the options of {@linkcode Pipeline.deploy} and the
 * strategies, analysis checks and approval gates they name.
 *
 * A deploy stage does not ship anything itself. When the stage runs, the
 * platform records a release (an artifact an earlier stage published) and
 * a deployment of it to the named environment. The platform's deployment
 * engine then moves the traffic step by step, analyses the new release, and
 * rolls it back when a check fails. The stage's own function, if given, runs first
 * in the sandbox like any stage; the deployment is created only if it
 * succeeds. The stage succeeds once the deployment is recorded and queued;
 * follow the rollout on the environment's page.
 *
 * @module
 */

import type { StageOptions } from "./stage_options.ts";

/** Puts the release live in one step. */
export interface AllAtOnceStrategy {
  /** Discriminant. */
  type: "allAtOnce";
}

/**
 * Installs the release beside the live one, checks it on its preview
 * address, switches all traffic to it, and removes the previous release
 * after `keepPreviousFor` seconds.
 */
export interface BlueGreenStrategy {
  /** Discriminant. */
  type: "blueGreen";
  /** Checks against the preview address before the switch. */
  previewAnalysis?: AnalysisCheck[];
  /** Seconds to keep the previous release installed after the switch (default 0). */
  keepPreviousFor?: number;
}

/** Shifts traffic to the release in steps; the last step is followed by a promote to 100 %. */
export interface CanaryStrategy {
  /** Discriminant. */
  type: "canary";
  /** The steps, in order. */
  steps: CanaryStep[];
}

/**
 * One canary step: give the release `setWeight` percent, pause for
 * `duration` seconds (or, with `{}`, until someone promotes), or analyse.
 */
export type CanaryStep =
  | { setWeight: number }
  | { pause: { duration?: number } }
  | { analysis: AnalysisCheck | AnalysisCheck[] };

/** The strategy by which a deploy stage moves traffic to the new release. */
export type DeployStrategy = AllAtOnceStrategy | BlueGreenStrategy | CanaryStrategy;

/**
 * Options shared by every check. A check takes `count` measurements
 * `interval` seconds apart and fails once more than `failureLimit` of them
 * failed.
 */
export interface CheckOptions {
  /** Measurements to take (default 1). */
  count?: number;
  /** Seconds between measurements (default 1). */
  interval?: number;
  /** Failed measurements tolerated (default 0). */
  failureLimit?: number;
}

/** HTTP probes against the release: status, latency and error rate over `requests` requests. */
export interface HttpCheck extends CheckOptions {
  /** Discriminant. */
  type: "http";
  /** `"preview"` (the release alone, the default where the target has one), `"public"`, or a URL. */
  on?: string;
  /** Path appended to the address. */
  path?: string;
  /** Requests per measurement (default 20). */
  requests?: number;
  /** Inclusive range of good statuses (default `[200, 399]`). */
  expectStatus?: [number, number];
  /** 95th percentile latency limit in milliseconds (default 1000). */
  maxLatencyMs?: number;
  /** Share of bad answers tolerated, from 0 to 1 (default 0). */
  maxErrorRate?: number;
}

/** A Prometheus instant query whose value must stay within `min` and `max`. */
export interface PrometheusCheck extends CheckOptions {
  /** Discriminant. */
  type: "prometheus";
  /** The Prometheus server, such as `"http://prometheus:9090"`. */
  url: string;
  /** PromQL; `{{release}}` is replaced by the release name. */
  query: string;
  /** Highest good value. */
  max?: number;
  /** Lowest good value. */
  min?: number;
}

/** A webhook that gets the deployment as JSON and answers `{"result": "pass"}` or `{"result": "fail"}`. */
export interface WebhookCheck extends CheckOptions {
  /** Discriminant. */
  type: "webhook";
  /** The URL the platform POSTs to. */
  url: string;
}

/** One analysis check. */
export type AnalysisCheck = HttpCheck | PrometheusCheck | WebhookCheck;

/** An approval gate's rule. The person who started the deployment can never approve it. */
export interface ApprovalRule {
  /** The lowest project role a reviewer needs (default `"developer"`). */
  role?: "viewer" | "developer" | "admin";
  /** Approvals needed (default 1). */
  count?: number;
}

/**
 * The options of a deploy stage: the usual {@linkcode StageOptions} plus
 * where, what and how to deploy.
 *
 * @example A canary to production from main, with an HTTP check
 * ```ts
 * import { Pipeline, publishArtifact, run } from "deno-ci";
 *
 * export default new Pipeline()
 *   .stage("build", async () => {
 *     await run("deno task build");
 *     await publishArtifact("site", ["dist"]);
 *   })
 *   .deploy("production", {
 *     branches: ["main"],
 *     environment: "production",
 *     release: { artifact: "site" },
 *     strategy: {
 *       type: "canary",
 *       steps: [
 *         { setWeight: 10 },
 *         { analysis: { type: "http", requests: 50, maxErrorRate: 0.01 } },
 *         { setWeight: 50 },
 *         { pause: { duration: 300 } },
 *       ],
 *     },
 *     approvals: { beforePromote: { role: "developer", count: 1 } },
 *   });
 * ```
 */
export interface DeployOptions extends StageOptions {
  /** The environment's name, such as `"production"` or `` `review-${pr}` ``. */
  environment: string;
  /** The artifact (published by an earlier stage of the run) that becomes the release. */
  release: { artifact: string; name?: string };
  /** Target settings for what the environment leaves unset, such as `{ type: "nginx", ... }`; settings a project admin gave the environment win. No credentials. */
  target?: Record<string, unknown>;
  /** The strategy (default all at once). */
  strategy?: DeployStrategy;
  /** Approval gates before deploying and before promoting. */
  approvals?: { beforeDeploy?: ApprovalRule; beforePromote?: ApprovalRule };
  /** Seconds a step may take before the deployment is rolled back (default 600). */
  progressDeadline?: number;
}

/** The deployment spec a deploy stage carries in the plan; see the runner protocol in README.md. */
export interface DeploySpec {
  environment: string;
  release: { artifact: string; name: string | null };
  target: Record<string, unknown> | null;
  strategy: DeployStrategy;
  approvals: { beforeDeploy?: ApprovalRule; beforePromote?: ApprovalRule };
  progressDeadline: number | null;
  /** Whether the stage has a function to run in the sandbox before the deployment is created. */
  run: boolean;
}

const DEPLOY_KEYS = [
  "environment",
  "release",
  "target",
  "strategy",
  "approvals",
  "progressDeadline",
];
const ENVIRONMENT_NAME = /^[a-z0-9][a-z0-9._-]{0,99}$/;
const STRATEGIES = ["allAtOnce", "blueGreen", "canary"];

/**
 * Splits a deploy stage's options into stage options and the deployment
 * spec, with a sentence for each problem found. The platform checks the
 * spec again, with the target's own limits.
 */
export function splitDeployOptions(options: unknown, hasFunction: boolean): {
  stage: StageOptions;
  spec: DeploySpec;
  problems: string[];
} {
  const raw = (typeof options === "object" && options !== null ? options : {}) as Record<
    string,
    unknown
  >;
  const stage: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (!DEPLOY_KEYS.includes(key)) stage[key] = value;
  }
  const release = (raw.release ?? {}) as { artifact?: unknown; name?: unknown };
  const strategy = (raw.strategy ?? { type: "allAtOnce" }) as DeployStrategy;
  const spec: DeploySpec = {
    environment: String(raw.environment ?? ""),
    release: {
      artifact: String(release.artifact ?? ""),
      name: typeof release.name === "string" ? release.name : null,
    },
    target: (raw.target ?? null) as Record<string, unknown> | null,
    strategy,
    approvals: (raw.approvals ?? {}) as DeploySpec["approvals"],
    progressDeadline: typeof raw.progressDeadline === "number" ? raw.progressDeadline : null,
    run: hasFunction,
  };
  return { stage: stage as StageOptions, spec, problems: specProblems(raw, spec) };
}

function specProblems(raw: Record<string, unknown>, spec: DeploySpec): string[] {
  const problems: string[] = [];
  if (!ENVIRONMENT_NAME.test(spec.environment)) {
    problems.push(
      `'environment' must be a name of lower-case letters, digits, '.', '_' or '-', got ${
        JSON.stringify(raw.environment)
      }`,
    );
  }
  if (spec.release.artifact === "") {
    problems.push("'release.artifact' must name an artifact an earlier stage publishes");
  }
  if (raw.target !== undefined && (typeof raw.target !== "object" || Array.isArray(raw.target))) {
    problems.push(`'target' must be an object, got ${JSON.stringify(raw.target)}`);
  }
  if (
    raw.progressDeadline !== undefined &&
    (typeof raw.progressDeadline !== "number" || raw.progressDeadline <= 0)
  ) {
    problems.push(
      `'progressDeadline' must be seconds above 0, got ${JSON.stringify(raw.progressDeadline)}`,
    );
  }
  const type = (spec.strategy as { type?: unknown })?.type;
  if (!STRATEGIES.includes(String(type))) {
    problems.push(`strategy type ${JSON.stringify(type)} is unknown; use ${STRATEGIES.join(", ")}`);
  } else if (type === "canary") problems.push(...canaryProblems(spec.strategy as CanaryStrategy));
  return problems;
}

function canaryProblems(strategy: CanaryStrategy): string[] {
  if (!Array.isArray(strategy.steps) || strategy.steps.length === 0) {
    return ["a canary needs 'steps': setWeight, pause and analysis steps"];
  }
  const problems: string[] = [];
  strategy.steps.forEach((step, index) => {
    if (step && typeof step === "object" && "setWeight" in step) {
      const weight = step.setWeight;
      if (!Number.isInteger(weight) || weight < 0 || weight > 100) {
        problems.push(
          `canary step ${index + 1}: setWeight must be a whole percent from 0 to 100, got ${
            JSON.stringify(weight)
          }`,
        );
      }
    } else if (!(step && typeof step === "object" && ("pause" in step || "analysis" in step))) {
      problems.push(
        `canary step ${index + 1} must have setWeight, pause or analysis, got ${
          JSON.stringify(step)
        }`,
      );
    }
  });
  return problems;
}

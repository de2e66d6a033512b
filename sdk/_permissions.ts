// Deno permission flags for a stage's `exec`, as listed in the plan.

import { libcPaths, RUNNER_VARIABLES } from "./_control.ts";
import { type NormalisedPermissions, PERMISSION_NAMES } from "./_options.ts";

/**
 * Returns the `--allow-*` flags for a stage's process: the stage's own
 * permissions plus what the runner needs itself, namely its `DENO_CI_*`
 * variables and the C library for the control channel (revoked again before
 * the pipeline is imported).
 */
export function denoFlags(permissions: NormalisedPermissions): string[] {
  const flags: string[] = [];
  for (const name of PERMISSION_NAMES) {
    let value = permissions[name];
    if (name === "env" && value !== true) value = [...(value || []), ...RUNNER_VARIABLES];
    if (name === "ffi" && value !== true) value = [...(value || []), ...libcPaths()];
    if (value === true) flags.push(`--allow-${name}`);
    else if (Array.isArray(value) && value.length > 0) {
      flags.push(`--allow-${name}=${[...new Set(value)].join(",")}`);
    }
  }
  return flags;
}

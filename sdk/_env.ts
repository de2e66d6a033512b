// Environment reads that never throw for a missing permission.
//
// The SDK's module-level values (`event`, `workspace`, `runId`) are computed
// when a pipeline file imports "deno-ci". Planning grants no permissions at
// all, so those reads must degrade to "unset" instead of failing the import.

/** Returns the variable's value, or `undefined` when it is unset or unreadable. */
export function readEnvIfAllowed(name: string): string | undefined {
  const state = Deno.permissions.querySync({ name: "env", variable: name }).state;
  if (state !== "granted") return undefined;
  return Deno.env.get(name);
}

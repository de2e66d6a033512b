// Expansion of matrix values into legs, and the legs' stage names.

import type { MatrixValue, MatrixValues } from "./matrix.ts";

/** Returns a problem with the matrix values, or `null` when they are usable. */
export function checkMatrixValues(values: unknown): string | null {
  if (typeof values !== "object" || values === null || Array.isArray(values)) {
    return 'its values must be an object of lists, such as { deno: ["1.46", "2.1"] }';
  }
  const entries = Object.entries(values);
  if (entries.length === 0) return "its values must name at least one dimension";
  for (const [key, list] of entries) {
    if (!Array.isArray(list) || list.length === 0) {
      return `dimension '${key}' must be a non-empty list`;
    }
    if (!list.every((item) => ["string", "number", "boolean"].includes(typeof item))) {
      return `dimension '${key}' may only hold strings, numbers and booleans`;
    }
  }
  return null;
}

/** Returns every combination, the first dimension varying slowest. */
export function expandMatrix(values: MatrixValues): Record<string, MatrixValue>[] {
  let legs: Record<string, MatrixValue>[] = [{}];
  for (const [key, list] of Object.entries(values)) {
    legs = legs.flatMap((leg) => list.map((value) => ({ ...leg, [key]: value })));
  }
  return legs;
}

/** Names a leg like `test (deno=2.1, os=linux)`. */
export function legName(name: string, leg: Record<string, MatrixValue>): string {
  const parts = Object.entries(leg).map(([key, value]) => `${key}=${value}`);
  return `${name} (${parts.join(", ")})`;
}

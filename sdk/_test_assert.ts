// Minimal assertions for the SDK's own tests.
//
// The SDK has no dependencies so that pipelines plan offline; its tests keep
// to that rule instead of fetching `@std/assert` from a registry.

/** Error thrown by a failed assertion. */
export class AssertionError extends Error {
  /** Creates an assertion error with the given message. */
  constructor(message: string) {
    super(message);
    this.name = "AssertionError";
  }
}

/** Throws unless `condition` is truthy. */
export function assert(condition: unknown, message = "Expected a truthy value"): asserts condition {
  if (!condition) throw new AssertionError(message);
}

/** Throws unless `condition` is falsy. */
export function assertFalse(condition: unknown, message = "Expected a falsy value"): void {
  if (condition) throw new AssertionError(message);
}

/** Throws unless `actual` and `expected` are structurally equal. */
export function assertEquals(actual: unknown, expected: unknown, message?: string): void {
  if (equal(actual, expected)) return;
  const shown = (value: unknown) => Deno.inspect(value, { depth: 10, colors: false });
  throw new AssertionError(
    `${message ? message + ": " : ""}values are not equal\nactual:   ${shown(actual)}\nexpected: ${
      shown(expected)
    }`,
  );
}

/** Throws unless `text` contains `part`. */
export function assertStringIncludes(text: string, part: string): void {
  if (!text.includes(part)) {
    throw new AssertionError(`Expected ${JSON.stringify(text)} to include ${JSON.stringify(part)}`);
  }
}

/** Calls `fn` and returns what it throws; throws if it does not throw or throws another class. */
export function assertThrows<E extends Error = Error>(
  fn: () => unknown,
  // deno-lint-ignore no-explicit-any
  errorClass?: new (...args: any[]) => E,
  includes?: string,
): E {
  try {
    fn();
  } catch (error) {
    return checkError(error, errorClass, includes);
  }
  throw new AssertionError("Expected the function to throw");
}

/** Awaits `fn` and returns what it rejects with; throws if it resolves. */
export async function assertRejects<E extends Error = Error>(
  fn: () => Promise<unknown>,
  // deno-lint-ignore no-explicit-any
  errorClass?: new (...args: any[]) => E,
  includes?: string,
): Promise<E> {
  try {
    await fn();
  } catch (error) {
    return checkError(error, errorClass, includes);
  }
  throw new AssertionError("Expected the promise to reject");
}

function checkError<E extends Error>(
  error: unknown,
  // deno-lint-ignore no-explicit-any
  errorClass?: new (...args: any[]) => E,
  includes?: string,
): E {
  if (errorClass && !(error instanceof errorClass)) {
    throw new AssertionError(`Expected ${errorClass.name}, got ${Deno.inspect(error)}`);
  }
  if (includes !== undefined) assertStringIncludes((error as Error).message, includes);
  return error as E;
}

function equal(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const keysA = Object.keys(a);
  const keysB = Object.keys(b);
  if (keysA.length !== keysB.length) return false;
  return keysA.every((key) =>
    equal((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key])
  );
}

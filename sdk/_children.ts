// Processes started with the legacy Deno.run, so the runner can fail the
// stage when one of them exits non-zero.

/** A process whose exit the runner waits for and judges. */
export interface TrackedChild {
  command: readonly string[];
  status: Promise<Deno.CommandStatus>;
  /** Killed by the stage or detached with close() before it exited: its exit does not count. */
  ignored(): boolean;
}

/** A child that exited non-zero. */
export interface ChildFailure {
  command: readonly string[];
  code: number;
}

const children: TrackedChild[] = [];

/** Registers a child started by the stage. */
export function trackChild(child: TrackedChild): void {
  children.push(child);
}

/**
 * Waits for every tracked child that is not ignored and returns those that
 * exited non-zero, in the order they were started.
 */
export async function settleChildren(): Promise<ChildFailure[]> {
  const failures: ChildFailure[] = [];
  for (const child of children) {
    if (child.ignored()) continue;
    const status = await child.status;
    if (!status.success && !child.ignored()) {
      failures.push({ command: child.command, code: status.code });
    }
  }
  return failures;
}

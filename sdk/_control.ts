// The control channel: JSON lines from the runner to the platform.
//
// The platform passes the write end of a pipe to the stage's process and names
// its descriptor in DENO_CI_CONTROL_FD (it uses 3). Nothing the stage prints
// on stdout or stderr can reach it.
//
// Deno 2 has no API for an inherited descriptor: opening /dev/fd/3 or
// /proc/self/fd/3 requires --allow-all, and node:fs maps numbers to its own
// handles. So the runner calls libc's write(2) through FFI. It loads libc
// before the pipeline is imported, under an --allow-ffi grant limited to the
// C library's usual paths, then revokes that grant, so the pipeline's code
// cannot load native code unless its stage was given `ffi` itself. It also
// marks the descriptor close-on-exec, so commands the stage starts do not
// inherit it.

import { readEnvIfAllowed } from "./_env.ts";

/** The variable naming the control descriptor. */
export const CONTROL_FD_VARIABLE = "DENO_CI_CONTROL_FD";

/**
 * The variable naming the start descriptor of a stage the platform prepared
 * ahead of time: the runner loads, then waits for one byte there before it
 * imports the pipeline file.
 */
export const START_FD_VARIABLE = "DENO_CI_START_FD";

/** Variables the runner reads in every stage, whatever the stage's env permission. */
export const RUNNER_VARIABLES = [
  "DENO_CI_EVENT",
  "DENO_CI_RUN_ID",
  "DENO_CI_WORKSPACE",
  "DENO_CI_STAGE",
  CONTROL_FD_VARIABLE,
  START_FD_VARIABLE,
];

/** An event on the control channel; see the runner protocol in README.md. */
export type ControlEvent =
  | { type: "stage_started"; stage: string }
  | { type: "artifact"; name: string; paths: string[] }
  | {
    type: "stage_finished";
    stage: string;
    status: "success" | "failed";
    error: string | null;
    exitCode: number | null;
  };

const LIBC_PATHS: Record<string, string[]> = {
  x86_64: [
    "/lib/x86_64-linux-gnu/libc.so.6",
    "/usr/lib/x86_64-linux-gnu/libc.so.6",
    "/lib64/libc.so.6",
    "/usr/lib64/libc.so.6",
    "/usr/lib/libc.so.6",
  ],
  aarch64: [
    "/lib/aarch64-linux-gnu/libc.so.6",
    "/usr/lib/aarch64-linux-gnu/libc.so.6",
    "/lib64/libc.so.6",
    "/usr/lib64/libc.so.6",
    "/usr/lib/libc.so.6",
  ],
};

const F_GETFD = 1;
const F_SETFD = 2;
const FD_CLOEXEC = 1;
const SYMBOLS = {
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
} as const;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>;

let channel: ((line: string) => void) | null = null;
let openedLibc: Libc | null = null;

/** Paths where the runner looks for the C library on this machine's architecture. */
export function libcPaths(): string[] {
  return LIBC_PATHS[Deno.build.arch] ?? [];
}

/**
 * Opens the control channel named by DENO_CI_CONTROL_FD. Returns `false` when
 * the variable is unset (a stage run by hand), so events are dropped.
 *
 * @throws {Error} When the variable is set but the descriptor cannot be written.
 */
export function openControlChannel(): boolean {
  const fd = descriptorFrom(CONTROL_FD_VARIABLE, "Cannot open the control channel");
  if (fd === null) return false;
  const libc = openLibc();
  openedLibc = libc;
  if (libc.symbols.fcntl(fd, F_GETFD, 0) === -1) {
    throw new Error(`Cannot open the control channel: file descriptor ${fd} is not open`);
  }
  libc.symbols.fcntl(fd, F_SETFD, FD_CLOEXEC);
  Deno.env.delete(CONTROL_FD_VARIABLE);
  const encoder = new TextEncoder();
  channel = (line) => writeAll(libc, fd, encoder.encode(line));
  return true;
}

/**
 * Waits until the platform lets a stage it prepared ahead of time go on: one
 * byte on the descriptor named by DENO_CI_START_FD. Resolves to `true` at once when
 * the variable is unset, and `false` when the descriptor closed without that
 * byte (the platform dropped the stage). The descriptor is closed afterwards, so
 * the pipeline's code and its commands never see it. `whileHeld` runs first,
 * only when the stage is held: it readies what the stage will need.
 *
 * @throws {Error} When the variable is set without a control channel or is not a descriptor number (the promise rejects).
 */
export async function waitForStart(whileHeld: () => void | Promise<void> = () => {}): Promise<boolean> {
  const fd = descriptorFrom(START_FD_VARIABLE, "Cannot wait for the start");
  if (fd === null) return true;
  if (!openedLibc) {
    throw new Error(
      `Cannot wait for the start: ${START_FD_VARIABLE} needs ${CONTROL_FD_VARIABLE} as well`,
    );
  }
  Deno.env.delete(START_FD_VARIABLE);
  await whileHeld();
  const byte = new Uint8Array(1);
  const read = Number(openedLibc.symbols.read(fd, byte, 1n));
  openedLibc.symbols.close(fd);
  return read === 1;
}

/** Returns the descriptor number in `variable`, or null when it is unset; throws `problem` for any other value. */
function descriptorFrom(variable: string, problem: string): number | null {
  const value = readEnvIfAllowed(variable);
  if (value === undefined || value === "") return null;
  const fd = Number(value);
  if (!Number.isInteger(fd) || fd < 3) {
    throw new Error(`${problem}: ${variable} must be a descriptor number from 3, got '${value}'`);
  }
  return fd;
}

/** Tells whether events currently reach the platform. */
export function hasControlChannel(): boolean {
  return channel !== null;
}

/** Writes one event as a JSON line; returns `false` when there is no channel. */
export function sendControlEvent(event: ControlEvent): boolean {
  if (!channel) return false;
  channel(JSON.stringify(event) + "\n");
  return true;
}

function openLibc(): Libc {
  const candidates = libcPaths();
  const global = Deno.permissions.querySync({ name: "ffi" }).state === "granted";
  try {
    for (const path of global ? [...candidates, "libc.so.6"] : candidates) {
      if (Deno.permissions.querySync({ name: "ffi", path }).state !== "granted") continue;
      try {
        return Deno.dlopen(path, SYMBOLS);
      } catch {
        // Not this distribution's path; try the next one.
      }
    }
  } finally {
    for (const path of candidates) Deno.permissions.revokeSync({ name: "ffi", path });
  }
  throw new Error(
    `Cannot open the control channel: cannot load the C library from ${
      candidates.join(", ")
    } (is --allow-ffi for these paths among the stage's flags?)`,
  );
}

function writeAll(libc: Libc, fd: number, bytes: Uint8Array): void {
  let offset = 0;
  while (offset < bytes.length) {
    const rest = bytes.subarray(offset);
    const written = Number(libc.symbols.write(fd, rest, BigInt(rest.length)));
    if (written <= 0) {
      throw new Error(`Cannot write to the control channel on file descriptor ${fd}`);
    }
    offset += written;
  }
}

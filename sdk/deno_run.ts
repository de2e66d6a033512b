/**
 * The legacy `Deno.run`, which Deno 2 removed, rebuilt on `Deno.Command` so
 * that pipeline files written for Deno 1 (such as the requirements' sample)
 * type-check and run unchanged. Importing `"deno-ci"` installs it.
 *
 * Unlike Deno 1, a process started this way that exits non-zero fails its
 * stage once the stage function returns, unless the stage sets
 * `allowChildFailures: true`; the runner also waits for such processes if the
 * stage function did not. New code should prefer {@linkcode run}, which throws
 * a {@linkcode CommandError} at once.
 *
 * TODO: drop this shim once pipelines no longer use Deno.run; it exists only
 * for compatibility with Deno 1 pipeline files.
 *
 * @module
 */

import { trackChild } from "./_children.ts";
import { spawnCommand } from "./_spawn.ts";

declare global {
  namespace Deno {
    /**
     * Options of the legacy {@linkcode Deno.run}, as in Deno 1.
     *
     * @deprecated Use `Deno.Command` or `run()` from "deno-ci" in new code.
     */
    export interface RunOptions {
      /** The program and its arguments; a `URL` is a `file:` URL of the program. */
      cmd: readonly string[] | [string | URL, ...string[]];
      /** Directory to run in. */
      cwd?: string;
      /** Variables added to (or, with `clearEnv`, replacing) the environment. */
      env?: Record<string, string>;
      /** Start from an empty environment. */
      clearEnv?: boolean;
      /** User id to run as. */
      uid?: number;
      /** Group id to run as. */
      gid?: number;
      /** Where the child's stdout goes; "inherit" by default. */
      stdout?: "inherit" | "piped" | "null";
      /** Where the child's stderr goes; "inherit" by default. */
      stderr?: "inherit" | "piped" | "null";
      /** Where the child's stdin comes from; "inherit" by default. */
      stdin?: "inherit" | "piped" | "null";
    }

    /**
     * How a legacy process ended; `signal` is set when a signal ended it.
     *
     * @deprecated Use `Deno.CommandStatus` in new code.
     */
    export type ProcessStatus =
      | { success: true; code: 0; signal?: undefined }
      | { success: false; code: number; signal?: number };

    /** Something bytes can be read from, as in Deno 1. */
    export interface Reader {
      /** Reads up to `p.length` bytes into `p`; resolves to the count, or `null` at the end. */
      read(p: Uint8Array): Promise<number | null>;
    }

    /** Something bytes can be written to, as in Deno 1. */
    export interface Writer {
      /** Writes `p`; resolves to the count written. */
      write(p: Uint8Array): Promise<number>;
    }

    /** Something that can be closed, as in Deno 1. */
    export interface Closer {
      /** Releases the resource. */
      close(): void;
    }

    /**
     * A process started with the legacy {@linkcode Deno.run}.
     *
     * @deprecated Use `Deno.Command` or `run()` from "deno-ci" in new code.
     */
    export interface Process<T extends RunOptions = RunOptions> {
      /** The operating system's process id. */
      readonly pid: number;
      /** The child's stdin, when `stdin` is "piped". */
      readonly stdin: T["stdin"] extends "piped"
        ? Writer & Closer & { readonly writable: WritableStream<Uint8Array> }
        : (Writer & Closer & { readonly writable: WritableStream<Uint8Array> }) | null;
      /** The child's stdout, when `stdout` is "piped". */
      readonly stdout: T["stdout"] extends "piped"
        ? Reader & Closer & { readonly readable: ReadableStream<Uint8Array> }
        : (Reader & Closer & { readonly readable: ReadableStream<Uint8Array> }) | null;
      /** The child's stderr, when `stderr` is "piped". */
      readonly stderr: T["stderr"] extends "piped"
        ? Reader & Closer & { readonly readable: ReadableStream<Uint8Array> }
        : (Reader & Closer & { readonly readable: ReadableStream<Uint8Array> }) | null;
      /** Waits for the process to exit. */
      status(): Promise<ProcessStatus>;
      /** Reads stdout to its end and closes it; needs `stdout: "piped"`. */
      output(): Promise<Uint8Array>;
      /** Reads stderr to its end and closes it; needs `stderr: "piped"`. */
      stderrOutput(): Promise<Uint8Array>;
      /** Closes the pipes; a process still running is then no longer waited for. */
      close(): void;
      /** Sends a signal, "SIGTERM" by default; the exit then does not fail the stage. */
      kill(signo?: Signal): void;
    }

    /**
     * Starts a process, as Deno 1 did. Inside a Deno CI stage, a process that
     * exits non-zero fails the stage after the stage function returns.
     *
     * @deprecated Use `Deno.Command` or `run()` from "deno-ci" in new code.
     *
     * @example
     * ```ts
     * import { Pipeline } from "deno-ci";
     *
     * export default new Pipeline()
     *   .stage("Test", async () => {
     *     await Deno.run({ cmd: ["deno", "test"] }).status();
     *   });
     * ```
     */
    export function run<T extends RunOptions = RunOptions>(options: T): Process<T>;
  }
}

const SIGNAL_NUMBERS: Partial<Record<Deno.Signal, number>> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
};

class PipeReader {
  #reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  #pending: Uint8Array = new Uint8Array(0);

  constructor(readonly readable: ReadableStream<Uint8Array>) {}

  async read(p: Uint8Array): Promise<number | null> {
    if (this.#pending.length === 0) {
      this.#reader ??= this.readable.getReader();
      const { value, done } = await this.#reader.read();
      if (done) return null;
      this.#pending = value;
    }
    const count = Math.min(p.length, this.#pending.length);
    p.set(this.#pending.subarray(0, count));
    this.#pending = this.#pending.subarray(count);
    return count;
  }

  async readAll(): Promise<Uint8Array> {
    const chunks: Uint8Array[] = [this.#pending];
    this.#reader ??= this.readable.getReader();
    for (let next = await this.#reader.read(); !next.done; next = await this.#reader.read()) {
      chunks.push(next.value);
    }
    this.#pending = new Uint8Array(0);
    const all = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
    let offset = 0;
    for (const chunk of chunks) {
      all.set(chunk, offset);
      offset += chunk.length;
    }
    return all;
  }

  close(): void {
    const done = this.#reader ? this.#reader.cancel() : this.readable.cancel();
    done.catch(() => {});
  }
}

class PipeWriter {
  #writer: WritableStreamDefaultWriter<Uint8Array> | null = null;

  constructor(readonly writable: WritableStream<Uint8Array>) {}

  async write(p: Uint8Array): Promise<number> {
    this.#writer ??= this.writable.getWriter();
    await this.#writer.ready;
    await this.#writer.write(p);
    return p.length;
  }

  close(): void {
    const done = this.#writer ? this.#writer.close() : this.writable.close();
    done.catch(() => {});
  }
}

class LegacyProcess {
  readonly pid: number;
  readonly stdin: PipeWriter | null;
  readonly stdout: PipeReader | null;
  readonly stderr: PipeReader | null;
  #child: Deno.ChildProcess;
  #exited = false;
  #ignored = false;

  constructor(command: readonly string[], options: Deno.RunOptions) {
    this.#child = spawnCommand(command, {
      cwd: options.cwd,
      env: options.env,
      clearEnv: options.clearEnv,
      uid: options.uid,
      gid: options.gid,
      stdin: options.stdin ?? "inherit",
      stdout: options.stdout ?? "inherit",
      stderr: options.stderr ?? "inherit",
    });
    this.pid = this.#child.pid;
    this.stdin = options.stdin === "piped" ? new PipeWriter(this.#child.stdin) : null;
    this.stdout = options.stdout === "piped" ? new PipeReader(this.#child.stdout) : null;
    this.stderr = options.stderr === "piped" ? new PipeReader(this.#child.stderr) : null;
    this.#child.status.then(() => this.#exited = true, () => this.#exited = true);
    trackChild({ command, status: this.#child.status, ignored: () => this.#ignored });
  }

  async status(): Promise<Deno.ProcessStatus> {
    const status = await this.#child.status;
    if (status.success) return { success: true, code: 0 };
    const signal = status.signal ? SIGNAL_NUMBERS[status.signal] : undefined;
    return signal === undefined
      ? { success: false, code: status.code }
      : { success: false, code: status.code, signal };
  }

  async output(): Promise<Uint8Array> {
    if (!this.stdout) {
      throw new TypeError(
        'Cannot read the process\'s output: it was started without stdout: "piped"',
      );
    }
    const bytes = await this.stdout.readAll();
    this.stdout.close();
    return bytes;
  }

  async stderrOutput(): Promise<Uint8Array> {
    if (!this.stderr) {
      throw new TypeError(
        'Cannot read the process\'s stderr: it was started without stderr: "piped"',
      );
    }
    const bytes = await this.stderr.readAll();
    this.stderr.close();
    return bytes;
  }

  close(): void {
    if (!this.#exited) this.#ignored = true;
    this.stdin?.close();
    this.stdout?.close();
    this.stderr?.close();
  }

  kill(signo: Deno.Signal = "SIGTERM"): void {
    this.#ignored = true;
    this.#child.kill(signo);
  }
}

function legacyRun<T extends Deno.RunOptions = Deno.RunOptions>(options: T): Deno.Process<T> {
  if (!options || !Array.isArray(options.cmd) || options.cmd.length === 0) {
    throw new TypeError(
      'Cannot run a process: \'cmd\' must be a non-empty list, such as { cmd: ["deno", "test"] }',
    );
  }
  const command = options.cmd.map((part) =>
    part instanceof URL ? decodeURIComponent(part.pathname) : String(part)
  );
  return new LegacyProcess(command, options) as unknown as Deno.Process<T>;
}

Object.defineProperty(Deno, "run", {
  value: legacyRun,
  writable: true,
  configurable: true,
  enumerable: true,
});

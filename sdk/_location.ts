// Source locations for stage declarations and errors.
//
// A stage's location is the first stack frame outside the SDK's library files,
// so a stage added by a template points at the template's call in the
// pipeline file. Test files in the SDK folder count as "outside".

/** A position in a source file; `file` is a path for local files, else a URL. */
export interface SourceLocation {
  file: string;
  line: number;
  column: number;
}

const SDK_ROOT = new URL(".", import.meta.url).href;
const FRAME = /((?:file|https?|jsr|npm):\/\/?[^\s()]+?):(\d+):(\d+)/;

/** Returns the location of the code that called into the SDK, if the stack shows it. */
export function callerLocation(): SourceLocation | null {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 100;
  const stack = new Error().stack ?? "";
  Error.stackTraceLimit = limit;
  for (const line of stack.split("\n").slice(1)) {
    const frame = parseFrame(line);
    if (frame && !isSdkFrame(frame.url)) return toLocation(frame);
  }
  return null;
}

/**
 * Returns where an error happened: the first frame in `preferredUrl` if the
 * stack has one, else the first frame outside the SDK, else the location that
 * the message itself names (syntax errors and missing modules carry
 * "at file:///...:line:column" in their message).
 */
export function errorLocation(error: unknown, preferredUrl?: string): SourceLocation | null {
  if (!(error instanceof Error)) return null;
  const frames = frameLines(error.stack ?? "").map(parseFrame).filter((frame) => frame !== null);
  const preferred = frames.find((frame) => frame.url === preferredUrl);
  const outside = frames.find((frame) => !isSdkFrame(frame.url) && !frame.url.startsWith("ext:"));
  const fromMessage = parseFrame(
    error.message.split("\n").reverse().find((line) => FRAME.test(line)) ?? "",
  );
  const frame = preferred ?? fromMessage ?? outside;
  return frame ? toLocation(frame) : null;
}

/** Converts a file URL to a path; leaves other URLs as they are. */
export function displayPath(url: string): string {
  return url.startsWith("file:") ? decodeURIComponent(new URL(url).pathname) : url;
}

interface Frame {
  url: string;
  line: number;
  column: number;
}

function frameLines(stack: string): string[] {
  return stack.split("\n").filter((line) => /^\s+at /.test(line));
}

function parseFrame(line: string): Frame | null {
  const match = FRAME.exec(line);
  if (!match) return null;
  return { url: match[1], line: Number(match[2]), column: Number(match[3]) };
}

function isSdkFrame(url: string): boolean {
  return url.startsWith(SDK_ROOT) && !url.endsWith("_test.ts");
}

function toLocation(frame: Frame): SourceLocation {
  return { file: displayPath(frame.url), line: frame.line, column: frame.column };
}

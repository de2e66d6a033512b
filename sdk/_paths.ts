// Path and URL helpers that need no permissions.

/** Converts a path, relative to the current directory or absolute, to a `file:` URL. */
export function toFileUrl(path: string): string {
  const absolute = path.startsWith("/") ? path : `${Deno.cwd()}/${path}`;
  const escaped = absolute.replaceAll("%", "%25").replaceAll("#", "%23").replaceAll("?", "%3F");
  return new URL(`file://${escaped}`).href;
}

/** Converts a `file:` URL to a path. */
export function fromFileUrl(url: string): string {
  return decodeURIComponent(new URL(url).pathname);
}

// Glob patterns for branch, tag and path filters.
//
// `*` matches within one path segment, `**` across segments, `?` one
// character, `[abc]` a class and `{a,b}` alternatives. A pattern is compiled
// once per call; filters hold a handful of short patterns.

/**
 * Converts a glob pattern into an anchored regular expression.
 *
 * `**` as a whole segment (`src/**`, `**\/*.ts`) also matches zero segments, so
 * `src/**` matches `src` and `**\/*.ts` matches `main.ts`.
 */
export function globToRegExp(glob: string): RegExp {
  let source = "";
  let braceDepth = 0;
  for (let i = 0; i < glob.length; i++) {
    const char = glob[i];
    if (char === "*" && glob[i + 1] === "*") {
      const segmentStart = i === 0 || glob[i - 1] === "/";
      const segmentEnd = i + 2 === glob.length || glob[i + 2] === "/";
      if (segmentStart && glob[i + 2] === "/") {
        source += "(?:.*/)?";
        i += 2;
      } else if (segmentStart && segmentEnd && i > 0) {
        source = source.slice(0, -1) + "(?:/.*)?";
        i += 1;
      } else {
        source += ".*";
        i += 1;
      }
    } else if (char === "*") {
      source += "[^/]*";
    } else if (char === "?") {
      source += "[^/]";
    } else if (char === "[") {
      const end = glob.indexOf("]", i + 2);
      if (end === -1) {
        source += "\\[";
        continue;
      }
      let body = glob.slice(i + 1, end).replaceAll("\\", "\\\\");
      if (body.startsWith("!")) body = "^" + body.slice(1);
      source += `[${body}]`;
      i = end;
    } else if (char === "{") {
      braceDepth++;
      source += "(?:";
    } else if (char === "}" && braceDepth > 0) {
      braceDepth--;
      source += ")";
    } else if (char === "," && braceDepth > 0) {
      source += "|";
    } else {
      source += char.replace(/[.+^$()|\\{}\]]/g, "\\$&");
    }
  }
  return new RegExp(`^${source}$`);
}

/**
 * Tells whether `value` passes a list of globs where a leading `!` negates.
 *
 * The value passes when it matches at least one positive pattern (or the list
 * has none) and no negated pattern.
 */
export function matchGlobList(value: string, patterns: readonly string[]): boolean {
  const positive = patterns.filter((pattern) => !pattern.startsWith("!"));
  const negative = patterns
    .filter((pattern) => pattern.startsWith("!"))
    .map((pattern) => pattern.slice(1));
  const included = positive.length === 0 ||
    positive.some((pattern) => globToRegExp(pattern).test(value));
  return included && !negative.some((pattern) => globToRegExp(pattern).test(value));
}

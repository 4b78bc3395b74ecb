import type { RedactPathSegment } from "./types.js";

const NAME = /^[A-Za-z0-9_$-]+/;
const INDEX = /^\[(\d{1,9})\]/;
const QUOTED = /^\[(?:'([^'\\]*)'|"([^"\\]*)")\]/;

/**
 * Parses a JSONPath-style redaction path: `$` followed by `.name`, `..name` (any depth), `.*`, `[*]`,
 * `[3]` or `['name']` steps, e.g. `$.card`, `$..password`, `$.items[*].token`.
 * @throws SyntaxError naming the position and the expected syntax.
 */
export function parseRedactPath(path: string): RedactPathSegment[] {
  if (typeof path !== "string" || !path.startsWith("$")) {
    throw new SyntaxError('a redaction path starts with "$", e.g. "$.card" or "$..password"');
  }
  const segments: RedactPathSegment[] = [];
  let rest = path.slice(1);
  while (rest.length > 0) {
    const at = path.length - rest.length;
    if (rest.startsWith("..")) {
      const name = NAME.exec(rest.slice(2)) ?? null;
      const quoted = name === null ? QUOTED.exec(rest.slice(2)) : null;
      const found = name?.[0] ?? quoted?.[1] ?? quoted?.[2];
      if (found === undefined) {
        throw new SyntaxError(
          `expected a field name after ".." at position ${at} of ${JSON.stringify(path)}`,
        );
      }
      segments.push({ kind: "descendant", name: found });
      rest = rest.slice(2 + (name?.[0].length ?? (quoted?.[0].length as number)));
    } else if (rest.startsWith(".*")) {
      segments.push({ kind: "wildcard" });
      rest = rest.slice(2);
    } else if (rest.startsWith(".")) {
      const match = NAME.exec(rest.slice(1));
      if (match === null) {
        throw new SyntaxError(`expected a field name after "." at position ${at} of ${JSON.stringify(path)}`);
      }
      segments.push({ kind: "property", name: match[0] });
      rest = rest.slice(1 + match[0].length);
    } else if (rest.startsWith("[*]")) {
      segments.push({ kind: "wildcard" });
      rest = rest.slice(3);
    } else if (INDEX.test(rest)) {
      const index = INDEX.exec(rest) as RegExpExecArray;
      segments.push({ kind: "index", index: Number(index[1]) });
      rest = rest.slice(index[0].length);
    } else if (QUOTED.test(rest)) {
      const quoted = QUOTED.exec(rest) as RegExpExecArray;
      segments.push({ kind: "property", name: (quoted[1] ?? quoted[2]) as string });
      rest = rest.slice(quoted[0].length);
    } else {
      throw new SyntaxError(
        `unexpected ${JSON.stringify(rest[0])} at position ${at} of ${JSON.stringify(path)}: use .name, ..name, .*, [*], [3] or ['name']`,
      );
    }
  }
  if (segments.length === 0) {
    throw new SyntaxError('a redaction path must name at least one field after "$", e.g. "$.card"');
  }
  return segments;
}

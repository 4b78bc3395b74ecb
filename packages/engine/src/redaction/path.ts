/**
 * The JSONPath subset redaction rules use: `$`, `.name`, `['name']` / `["name"]`, `[0]` (negative
 * counts from the end), `.*` / `[*]`, and recursive descent `..name` / `..*` / `..[0]`.
 * Filters, unions and slices are refused at compile time rather than silently ignored.
 */

export type PathSelector =
  | { kind: "name"; name: string }
  | { kind: "index"; index: number }
  | { kind: "wildcard" };

export interface PathStep {
  selector: PathSelector;
  /** True for `..` steps: the selector applies at any depth below the current node. */
  descendant: boolean;
}

/** Why a path could not be parsed; `position` is a 0-based character offset. */
export class PathSyntaxError extends Error {
  override readonly name = "PathSyntaxError";
  constructor(
    readonly reason: string,
    readonly position: number,
  ) {
    super(`${reason} at position ${position}`);
  }
}

const MAX_STEPS = 255;
const NAME_CHAR = /[^.[\]'"\s*()?,:]/;

/** Parses a path into steps. Throws {@link PathSyntaxError}. */
export function parsePath(path: string): PathStep[] {
  if (typeof path !== "string") throw new PathSyntaxError("path must be a string", 0);
  if (path[0] !== "$") throw new PathSyntaxError("path must start with '$'", 0);
  const steps: PathStep[] = [];
  let pos = 1;
  while (pos < path.length) {
    const char = path[pos];
    let descendant = false;
    if (char === ".") {
      if (path[pos + 1] === ".") {
        descendant = true;
        pos += 2;
        if (path[pos] === "[") {
          const parsed = parseBracket(path, pos);
          steps.push({ selector: parsed.selector, descendant });
          pos = parsed.end;
          continue;
        }
      } else {
        pos += 1;
      }
      if (path[pos] === "*") {
        steps.push({ selector: { kind: "wildcard" }, descendant });
        pos += 1;
        continue;
      }
      const start = pos;
      while (pos < path.length && NAME_CHAR.test(path[pos]!)) pos += 1;
      if (pos === start) {
        const found = pos < path.length ? `'${path[pos]}'` : "end of path";
        throw new PathSyntaxError(
          `expected a member name, '*'${descendant ? " or '['" : ""} after '${descendant ? ".." : "."}' but found ${found}`,
          pos,
        );
      }
      steps.push({ selector: { kind: "name", name: path.slice(start, pos) }, descendant });
    } else if (char === "[") {
      const parsed = parseBracket(path, pos);
      steps.push({ selector: parsed.selector, descendant: false });
      pos = parsed.end;
    } else {
      throw new PathSyntaxError(`unexpected '${char}': expected '.', '..' or '['`, pos);
    }
    if (steps.length > MAX_STEPS) throw new PathSyntaxError(`path has more than ${MAX_STEPS} steps`, pos);
  }
  return steps;
}

function parseBracket(path: string, open: number): { selector: PathSelector; end: number } {
  let pos = skipSpaces(path, open + 1);
  const char = path[pos];
  let selector: PathSelector;
  if (char === "*") {
    selector = { kind: "wildcard" };
    pos += 1;
  } else if (char === "'" || char === '"') {
    const parsed = parseQuoted(path, pos, char);
    selector = { kind: "name", name: parsed.value };
    pos = parsed.end;
  } else if (char !== undefined && /[-0-9]/.test(char)) {
    const match = /^-?(?:0|[1-9][0-9]{0,8})/.exec(path.slice(pos, pos + 11));
    if (!match) throw new PathSyntaxError("expected an array index (an integer)", pos);
    selector = { kind: "index", index: Number(match[0]) };
    pos += match[0].length;
  } else if (char === "?") {
    throw new PathSyntaxError("filter expressions ([?...]) are not supported", pos);
  } else {
    const found = char === undefined ? "end of path" : `'${char}'`;
    throw new PathSyntaxError(`expected '*', a quoted name or an index after '[' but found ${found}`, pos);
  }
  pos = skipSpaces(path, pos);
  if (path[pos] === "," || path[pos] === ":") {
    throw new PathSyntaxError(`${path[pos] === "," ? "unions" : "slices"} are not supported`, pos);
  }
  if (path[pos] !== "]") throw new PathSyntaxError("expected ']'", pos);
  return { selector, end: pos + 1 };
}

function parseQuoted(path: string, open: number, quote: string): { value: string; end: number } {
  let value = "";
  let pos = open + 1;
  while (pos < path.length) {
    const char = path[pos]!;
    if (char === quote) return { value, end: pos + 1 };
    if (char === "\\") {
      const next = path[pos + 1];
      if (next !== "\\" && next !== "'" && next !== '"') {
        throw new PathSyntaxError("only \\\\, \\' and \\\" escapes are allowed in a quoted name", pos);
      }
      value += next;
      pos += 2;
      continue;
    }
    value += char;
    pos += 1;
  }
  throw new PathSyntaxError(`unterminated quoted name (missing ${quote})`, open);
}

function skipSpaces(path: string, pos: number): number {
  while (path[pos] === " ") pos += 1;
  return pos;
}

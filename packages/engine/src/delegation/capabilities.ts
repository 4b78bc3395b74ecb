/**
 * Delegation capabilities: action-type globs with the policy `action` syntax (`*` within one
 * dot-separated segment, `**` anything). A child's capabilities must be covered by its parent's:
 * every action type a child glob matches must be matched by some parent glob.
 */
import { matchesAction } from "@aa/policy";
import { invalid } from "../errors.js";

/** What a root agent (one that acts for nobody) may delegate: everything. */
export const ROOT_CAPABILITIES: readonly string[] = ["**"];

const MAX_CAPABILITIES = 64;
const MAX_GLOB_LENGTH = 256;

/** Checks and copies a capability list; throws INVALID_REQUEST naming the bad entry. */
export function validateCapabilities(value: unknown): string[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_CAPABILITIES) {
    throw invalid(
      `capabilities must be a non-empty array of at most ${MAX_CAPABILITIES} action globs, e.g. ["search.*", "pr.open"]`,
      { field: "capabilities" },
    );
  }
  const out: string[] = [];
  for (const [index, glob] of value.entries()) {
    const problem =
      typeof glob !== "string" || glob === ""
        ? "must be a non-empty string"
        : glob.length > MAX_GLOB_LENGTH
          ? `must be at most ${MAX_GLOB_LENGTH} characters`
          : /\s/.test(glob)
            ? "must not contain whitespace"
            : glob.includes("***")
              ? "`***` is not a wildcard: use `*` (within a segment) or `**` (anything)"
              : undefined;
    if (problem) {
      throw invalid(`capabilities[${index}] ${problem} (an action glob such as pr.open, pr.* or **)`, {
        field: "capabilities",
        index,
      });
    }
    if (!out.includes(glob as string)) out.push(glob as string);
  }
  return out;
}

/** True when `actionType` matches one of `capabilities`. */
export function allows(capabilities: readonly string[], actionType: string): boolean {
  for (const glob of capabilities) if (matchesAction(glob, actionType)) return true;
  return false;
}

/** The child globs not covered by any parent glob (empty when the child narrows or keeps the parent's). */
export function uncovered(child: readonly string[], parent: readonly string[]): string[] {
  return child.filter((glob) => !parent.some((outer) => globCovers(outer, glob)));
}

type GlobSymbol = { kind: "char"; char: string } | { kind: "segment" } | { kind: "any" };

function symbols(glob: string): GlobSymbol[] {
  const out: GlobSymbol[] = [];
  for (let i = 0; i < glob.length; i++) {
    if (glob[i] !== "*") out.push({ kind: "char", char: glob[i]! });
    else if (glob[i + 1] === "*") {
      out.push({ kind: "any" });
      i++;
    } else out.push({ kind: "segment" });
  }
  return out;
}

/**
 * Whether every action type `inner` matches is matched by `outer`. Decided by matching `outer`
 * against `inner` read as a string of symbols: an outer literal matches only the same literal; an
 * outer `*` absorbs inner literals other than `.` and inner `*`s (both stay within a segment); an
 * outer `**` absorbs anything. Sound (never says yes to a widening); a dynamic programme, linear in
 * the product of the lengths.
 */
export function globCovers(outer: string, inner: string): boolean {
  if (outer === "**" || outer === inner) return true;
  const pattern = symbols(outer);
  const text = symbols(inner);
  const n = text.length;
  let reachable = new Uint8Array(n + 1);
  reachable[0] = 1;
  for (const token of pattern) {
    const next = new Uint8Array(n + 1);
    if (token.kind === "char") {
      for (let j = 0; j < n; j++) {
        const symbol = text[j]!;
        if (reachable[j] === 1 && symbol.kind === "char" && symbol.char === token.char) next[j + 1] = 1;
      }
    } else {
      let carrying = false;
      for (let j = 0; j <= n; j++) {
        if (reachable[j] === 1) carrying = true;
        if (carrying) next[j] = 1;
        if (j < n && token.kind === "segment") {
          const symbol = text[j]!;
          // A segment wildcard cannot absorb a dot nor an inner `**` (which may produce dots).
          if (symbol.kind === "any" || (symbol.kind === "char" && symbol.char === ".")) carrying = false;
        }
      }
    }
    reachable = next;
  }
  return reachable[n] === 1;
}

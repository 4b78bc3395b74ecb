/**
 * Action-type globs: `*` matches any run of characters within one dot-separated segment,
 * `**` matches anything (dots included). Everything else is literal.
 * Matching is a dynamic programme over (token, position): linear in the product of the two
 * lengths whatever the pattern, so a hostile glob or action type cannot make it backtrack.
 */

type GlobToken = { kind: "literal"; text: string } | { kind: "segment" } | { kind: "any" };

/** A compiled action glob. */
export interface ActionGlob {
  readonly pattern: string;
  /** The literal text before the first wildcard (the whole pattern when it is exact). */
  readonly literalPrefix: string;
  readonly isExact: boolean;
  test(actionType: string): boolean;
}

/** Returns why `pattern` is not a valid action glob, or undefined when it is. */
export function describeInvalidGlob(pattern: string): string | undefined {
  if (pattern.length === 0) return "an action glob must not be empty";
  if (pattern.includes("***"))
    return "`***` is not a wildcard: use `*` (within a segment) or `**` (anything)";
  if (/\s/.test(pattern)) return "an action glob must not contain whitespace";
  return undefined;
}

function tokenize(pattern: string): GlobToken[] {
  const tokens: GlobToken[] = [];
  let literal = "";
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i] !== "*") {
      literal += pattern[i];
      continue;
    }
    if (literal !== "") tokens.push({ kind: "literal", text: literal });
    literal = "";
    if (pattern[i + 1] === "*") {
      tokens.push({ kind: "any" });
      i++;
    } else {
      tokens.push({ kind: "segment" });
    }
  }
  if (literal !== "") tokens.push({ kind: "literal", text: literal });
  return tokens;
}

function matchTokens(tokens: GlobToken[], text: string): boolean {
  const n = text.length;
  // reachable[j]: the tokens consumed so far can end exactly at position j.
  let reachable = new Uint8Array(n + 1);
  reachable[0] = 1;
  for (const token of tokens) {
    const next = new Uint8Array(n + 1);
    let any = false;
    if (token.kind === "literal") {
      const len = token.text.length;
      for (let j = 0; j + len <= n; j++) {
        if (reachable[j] === 1 && text.startsWith(token.text, j)) {
          next[j + len] = 1;
          any = true;
        }
      }
    } else {
      const crossesDots = token.kind === "any";
      let carrying = false;
      for (let j = 0; j <= n; j++) {
        if (reachable[j] === 1) carrying = true;
        if (carrying) {
          next[j] = 1;
          any = true;
        }
        if (!crossesDots && text.charCodeAt(j) === 46 /* . */) carrying = false;
      }
    }
    if (!any) return false;
    reachable = next;
  }
  return reachable[n] === 1;
}

/** Compiles an action glob (see the module comment for the syntax). */
export function compileActionGlob(pattern: string): ActionGlob {
  const firstStar = pattern.indexOf("*");
  if (firstStar === -1) {
    return { pattern, literalPrefix: pattern, isExact: true, test: (actionType) => actionType === pattern };
  }
  const literalPrefix = pattern.slice(0, firstStar);
  if (pattern === "**") return { pattern, literalPrefix, isExact: false, test: () => true };
  const tokens = tokenize(pattern);
  return {
    pattern,
    literalPrefix,
    isExact: false,
    test: (actionType) => actionType.startsWith(literalPrefix) && matchTokens(tokens, actionType),
  };
}

const globCache = new Map<string, ActionGlob>();
const GLOB_CACHE_LIMIT = 1024;

/**
 * Whether `actionType` matches the action glob `glob` (`*` within a dot-separated segment, `**` anything).
 * Never throws: a non-string argument or an invalid glob does not match.
 */
export function matchesAction(glob: string, actionType: string): boolean {
  if (typeof glob !== "string" || typeof actionType !== "string") return false;
  if (describeInvalidGlob(glob) !== undefined) return false;
  let compiled = globCache.get(glob);
  if (compiled === undefined) {
    compiled = compileActionGlob(glob);
    if (globCache.size >= GLOB_CACHE_LIMIT) globCache.clear();
    globCache.set(glob, compiled);
  }
  return compiled.test(actionType);
}

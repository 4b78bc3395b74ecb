import {
  type Document,
  isMap,
  isSeq,
  isScalar as isYamlScalar,
  LineCounter,
  type Node,
  parseDocument,
} from "yaml";
import type { z } from "zod";
import { PolicyValidationError } from "./errors.js";
import { deepFreeze } from "./freeze.js";
import { KNOWN_KEYS, policyDocumentSchema } from "./schema.js";
import type { ParsePolicyOptions, PolicyDocument, PolicyIssue, ValidatePolicyOptions } from "./types.js";

/** Largest policy text accepted (1 MiB): real policy files are a few kilobytes. */
export const MAX_POLICY_TEXT = 1 << 20;

type PathKey = string | number;
type Locate = (path: readonly PathKey[], atKey?: string) => { line: number; column: number } | undefined;

/** Formats a path as `policies[2].when[0].op`. */
export function formatIssuePath(path: readonly PathKey[]): string {
  let text = "";
  for (const key of path) {
    if (typeof key === "number") text += `[${key}]`;
    else text += text === "" ? key : `.${key}`;
  }
  return text;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j] as number;
      row[j] = Math.min(above + 1, (row[j - 1] as number) + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length] as number;
}

/** The closest candidate within two edits, for "did you mean" hints. */
export function closestName(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function knownKeysAt(path: readonly PathKey[]): readonly string[] {
  if (path.length === 0) return KNOWN_KEYS.document;
  if (path[0] === "redact") return KNOWN_KEYS.redact;
  if (path[0] === "rate_limits") return path.length === 1 ? KNOWN_KEYS.rateLimits : KNOWN_KEYS.budget;
  if (path[0] === "budgets") {
    if (path.length === 1 || (path[1] === "agents" && path.length === 3)) return KNOWN_KEYS.budgets;
    return KNOWN_KEYS.budget;
  }
  if (path.length === 2) return KNOWN_KEYS.policy;
  if (path[2] === "approval") return KNOWN_KEYS.approval;
  return KNOWN_KEYS.condition;
}

function convertZodIssues(
  issues: readonly z.core.$ZodIssue[],
  source: string,
  locate: Locate,
): PolicyIssue[] {
  const result: PolicyIssue[] = [];
  for (const issue of issues) {
    const path = issue.path.filter((key): key is PathKey => typeof key !== "symbol");
    if (issue.code === "unrecognized_keys") {
      const known = knownKeysAt(path);
      for (const key of issue.keys) {
        const suggestion = closestName(key, known);
        const keyPath = [...path, key];
        result.push({
          source,
          ...locate(path, key),
          path: formatIssuePath(keyPath),
          message: `unknown key ${JSON.stringify(key)}`,
          hint:
            suggestion !== undefined
              ? `did you mean "${suggestion}"?`
              : `allowed keys here: ${known.join(", ")}`,
        });
      }
      continue;
    }
    const missing = issue.code !== "custom" && "input" in issue && issue.input === undefined;
    const params = issue.code === "custom" ? (issue.params as { hint?: unknown } | undefined) : undefined;
    const hint = typeof params?.hint === "string" ? params.hint : undefined;
    result.push({
      source,
      ...locate(path),
      path: formatIssuePath(path),
      message: missing ? `is required: ${issue.message}` : issue.message,
      ...(hint === undefined ? {} : { hint }),
    });
  }
  return result;
}

function sortByLine(issues: PolicyIssue[]): PolicyIssue[] {
  return issues
    .map((issue, index) => ({ issue, index }))
    .sort((a, b) => (a.issue.line ?? 0) - (b.issue.line ?? 0) || a.index - b.index)
    .map(({ issue }) => issue);
}

function checkUniqueNames(document: PolicyDocument, source: string, locate: Locate): PolicyIssue[] {
  const issues: PolicyIssue[] = [];
  const firstIndex = new Map<string, number>();
  document.policies.forEach((policy, index) => {
    const earlier = firstIndex.get(policy.name);
    if (earlier === undefined) {
      firstIndex.set(policy.name, index);
      return;
    }
    const path = ["policies", index, "name"];
    issues.push({
      source,
      ...locate(path),
      path: formatIssuePath(path),
      message: `duplicate policy name ${JSON.stringify(policy.name)} (also policies[${earlier}])`,
      hint: "give every policy a unique name",
    });
  });
  return issues;
}

/** A plain, frozen copy so later changes to the caller's object cannot drift from the hash. */
function normalise(parsed: z.output<typeof policyDocumentSchema>): PolicyDocument {
  const copy = JSON.parse(JSON.stringify({ ...parsed, default: "deny", redact: parsed.redact ?? [] }));
  return deepFreeze(copy) as PolicyDocument;
}

function describeError(error: unknown): string {
  if (error instanceof RangeError && /call stack/i.test(error.message)) {
    return "the document is nested too deeply";
  }
  return error instanceof Error ? error.message : "unknown error";
}

function validateWithLocations(value: unknown, source: string, locate: Locate): PolicyDocument {
  const parsed = policyDocumentSchema.safeParse(value, { reportInput: true });
  if (!parsed.success)
    throw new PolicyValidationError(sortByLine(convertZodIssues(parsed.error.issues, source, locate)));
  const document = normalise(parsed.data);
  const duplicates = checkUniqueNames(document, source, locate);
  if (duplicates.length > 0) throw new PolicyValidationError(duplicates);
  return document;
}

/**
 * Validates an already-parsed policy object (an inline `policy:` option) and returns a frozen, normalised
 * copy (`default` and `redact` filled in).
 * @throws PolicyValidationError listing every problem with its path and a hint.
 */
export function validatePolicy(value: unknown, options: ValidatePolicyOptions = {}): PolicyDocument {
  const source = options.source ?? "inline";
  try {
    return validateWithLocations(value, source, () => undefined);
  } catch (error) {
    if (error instanceof PolicyValidationError) throw error;
    throw new PolicyValidationError([
      {
        source,
        path: "",
        message: `could not read the policy object: ${describeError(error)}`,
        hint: "pass plain JSON data",
      },
    ]);
  }
}

function makeLocator(document: Document.Parsed, lineCounter: LineCounter): Locate {
  return (path, atKey) => {
    let node: unknown = document.contents;
    let lastOffset: number | undefined;
    const offsetOf = (candidate: unknown) => (candidate as Node | null)?.range?.[0];
    lastOffset = offsetOf(node);
    const steps: PathKey[] = atKey === undefined ? [...path] : [...path, atKey];
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i] as PathKey;
      const isLast = i === steps.length - 1;
      if (isMap(node)) {
        const pair = node.items.find(
          (item) => isYamlScalar(item.key) && String(item.key.value) === String(step),
        );
        if (pair === undefined) break;
        if (isLast && atKey !== undefined) {
          lastOffset = offsetOf(pair.key) ?? lastOffset;
          break;
        }
        node = pair.value;
        lastOffset = offsetOf(pair.value) ?? offsetOf(pair.key) ?? lastOffset;
      } else if (isSeq(node) && typeof step === "number") {
        node = node.items[step];
        if (node === undefined) break;
        lastOffset = offsetOf(node) ?? lastOffset;
      } else {
        break;
      }
    }
    if (lastOffset === undefined) return undefined;
    const position = lineCounter.linePos(lastOffset);
    return { line: position.line, column: position.col };
  };
}

function jsonSyntaxIssue(text: string, source: string, error: unknown): PolicyIssue {
  const message = error instanceof Error ? error.message : String(error);
  let line: number | undefined;
  let column: number | undefined;
  const lineColumn = /line (\d+) column (\d+)/.exec(message);
  const position = /position (\d+)/.exec(message);
  if (lineColumn !== null) {
    line = Number(lineColumn[1]);
    column = Number(lineColumn[2]);
  } else if (position !== null) {
    const before = text.slice(0, Number(position[1]));
    line = before.split("\n").length;
    column = before.length - before.lastIndexOf("\n");
  }
  return {
    source,
    ...(line === undefined ? {} : { line }),
    ...(column === undefined ? {} : { column }),
    path: "",
    message: `invalid JSON: ${message.replace(/\s*\(line \d+ column \d+\)/, "")}`,
    hint: "check for a missing comma, quote or bracket near this line",
  };
}

/**
 * Parses and validates a policy file (YAML or JSON). Issues carry the source name, the 1-based line and
 * the field path, and say how to fix them.
 * @throws PolicyValidationError when the text is not a valid policy.
 */
export function parsePolicy(text: string, options: ParsePolicyOptions = {}): PolicyDocument {
  const source = options.source ?? "inline";
  const format = options.format ?? (source.toLowerCase().endsWith(".json") ? "json" : "yaml");
  if (typeof text !== "string") {
    throw new PolicyValidationError([{ source, path: "", message: "policy text must be a string" }]);
  }
  if (text.length > MAX_POLICY_TEXT) {
    throw new PolicyValidationError([
      {
        source,
        path: "",
        message: `policy text is ${text.length} characters; the limit is ${MAX_POLICY_TEXT}`,
        hint: "split it or remove generated content",
      },
    ]);
  }
  try {
    if (format === "json") {
      try {
        JSON.parse(text);
      } catch (error) {
        throw new PolicyValidationError([jsonSyntaxIssue(text, source, error)]);
      }
    }
    const lineCounter = new LineCounter();
    const document = parseDocument(text, {
      lineCounter,
      uniqueKeys: true,
      prettyErrors: false,
      strict: true,
    });
    if (document.errors.length > 0) {
      throw new PolicyValidationError(
        document.errors.map((error) => {
          const position = lineCounter.linePos(error.pos[0]);
          return {
            source,
            line: position.line,
            column: position.col,
            path: "",
            message: /call stack/i.test(error.message)
              ? "the document is nested too deeply"
              : `${format === "json" ? "JSON" : "YAML"} syntax error: ${error.message.split("\n")[0]}`,
            hint:
              error.code === "DUPLICATE_KEY"
                ? "remove or rename the repeated key"
                : "check indentation and quoting near this line",
          };
        }),
      );
    }
    const value = document.toJS({ maxAliasCount: 50 });
    return validateWithLocations(value, source, makeLocator(document, lineCounter));
  } catch (error) {
    if (error instanceof PolicyValidationError) throw error;
    throw new PolicyValidationError([
      { source, path: "", message: `could not parse the policy: ${describeError(error)}` },
    ]);
  }
}

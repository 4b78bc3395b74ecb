import { RE2JS } from "re2js";
import { MISSING } from "./fields.js";
import { hasPermission } from "./permissions.js";
import type { Condition, Operator } from "./types.js";
import { deepEqual, isScalar, type JsonType, jsonType } from "./values.js";

/** Outcome of one condition before the rule's effect is known. */
export const FAILS = 0;
export const HOLDS = 1;
/**
 * The condition cannot be decided: the field is present but of a type the operator cannot compare
 * with the expected value (`amount: "5000"` against `gt 1000`), a negated operator on a missing
 * value, or `matches` on an input longer than {@link MAX_MATCH_INPUT}. The rule resolves it toward
 * restriction: it fails in an allow rule and holds in a deny / require_approval rule, so neither
 * missing data nor a value of the wrong type can turn a deny into an allow.
 */
export const UNDECIDED = 2;
export type ConditionOutcome = typeof FAILS | typeof HOLDS | typeof UNDECIDED;
export type ConditionTest = (actual: unknown) => ConditionOutcome;

export const OPERATORS: readonly Operator[] = [
  "eq",
  "ne",
  "lt",
  "lte",
  "gt",
  "gte",
  "in",
  "not_in",
  "contains",
  "starts_with",
  "ends_with",
  "matches",
  "exists",
  "has_scope",
];

/** Longest string `matches` evaluates (1 MiB); longer inputs are UNDECIDED. */
export const MAX_MATCH_INPUT = 1 << 20;
/** Longest regular expression accepted in a policy. */
export const MAX_PATTERN_LENGTH = 1024;

const ISO_DATE =
  /^\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:[Zz]|[+-]\d{2}:?\d{2})?)?$/;

/** Milliseconds since the epoch for an ISO 8601 date / date-time string, or NaN. */
export function parseIsoTimestamp(text: string): number {
  return ISO_DATE.test(text) ? Date.parse(text) : Number.NaN;
}

/** Compiles a `matches` pattern with RE2 semantics (linear time; no backreferences or lookarounds). */
export function compileSafeRegex(pattern: string): RE2JS {
  if (pattern.length > MAX_PATTERN_LENGTH) {
    throw new SyntaxError(`pattern is longer than ${MAX_PATTERN_LENGTH} characters`);
  }
  return RE2JS.compile(pattern);
}

const bool = (value: boolean): ConditionOutcome => (value ? HOLDS : FAILS);

/** A positive operator met a value it cannot compare: absent → the condition fails; present → undecided. */
const incomparable = (actual: unknown): ConditionOutcome => (actual === MISSING ? FAILS : UNDECIDED);

function compileOrdering(op: "lt" | "lte" | "gt" | "gte", expected: number | string): ConditionTest {
  const compare =
    op === "lt"
      ? (a: number, b: number) => a < b
      : op === "lte"
        ? (a: number, b: number) => a <= b
        : op === "gt"
          ? (a: number, b: number) => a > b
          : (a: number, b: number) => a >= b;
  if (typeof expected === "number") {
    return (actual) => {
      if (typeof actual !== "number" || Number.isNaN(actual)) return incomparable(actual);
      return bool(compare(actual, expected));
    };
  }
  const expectedTime = parseIsoTimestamp(expected);
  return (actual) => {
    let actualTime: number;
    if (typeof actual === "string") actualTime = parseIsoTimestamp(actual);
    else if (actual instanceof Date) actualTime = actual.getTime();
    else return incomparable(actual);
    if (Number.isNaN(actualTime)) return UNDECIDED;
    return bool(compare(actualTime, expectedTime));
  };
}

/** Compiles one validated condition to a test over the looked-up value (or {@link MISSING}). */
export function compileConditionTest(condition: Condition): ConditionTest {
  const expected = condition.value;
  switch (condition.op) {
    case "eq": {
      const expectedType = jsonType(expected);
      const equal = isScalar(expected)
        ? (actual: unknown) => actual === expected
        : (actual: unknown) => deepEqual(actual, expected);
      return (actual) => {
        if (equal(actual)) return HOLDS;
        return actual !== MISSING && jsonType(actual) !== expectedType ? UNDECIDED : FAILS;
      };
    }
    case "ne": {
      const expectedType = jsonType(expected);
      return (actual) => {
        if (actual === MISSING || jsonType(actual) !== expectedType) return UNDECIDED;
        return bool(!deepEqual(actual, expected));
      };
    }
    case "lt":
    case "lte":
    case "gt":
    case "gte":
      return compileOrdering(condition.op, expected as number | string);
    case "in": {
      const members = new Set(expected as unknown[]);
      const memberTypes = new Set<JsonType>((expected as unknown[]).map(jsonType));
      return (actual) => {
        if (members.has(actual)) return HOLDS;
        if (actual === MISSING) return FAILS;
        return !isScalar(actual) || !memberTypes.has(jsonType(actual)) ? UNDECIDED : FAILS;
      };
    }
    case "not_in": {
      const members = new Set(expected as unknown[]);
      const memberTypes = new Set<JsonType>((expected as unknown[]).map(jsonType));
      return (actual) => {
        if (actual === MISSING || !isScalar(actual) || !memberTypes.has(jsonType(actual))) return UNDECIDED;
        return bool(!members.has(actual));
      };
    }
    case "contains":
      return (actual) => {
        if (typeof actual === "string")
          return bool(typeof expected === "string" && actual.includes(expected));
        if (Array.isArray(actual)) {
          if (isScalar(expected)) return bool(actual.includes(expected));
          for (const item of actual) if (deepEqual(item, expected)) return HOLDS;
          return FAILS;
        }
        return incomparable(actual);
      };
    case "starts_with": {
      const prefix = expected as string;
      return (actual) =>
        typeof actual === "string" ? bool(actual.startsWith(prefix)) : incomparable(actual);
    }
    case "ends_with": {
      const suffix = expected as string;
      return (actual) => (typeof actual === "string" ? bool(actual.endsWith(suffix)) : incomparable(actual));
    }
    case "matches": {
      const regex = compileSafeRegex(expected as string);
      return (actual) => {
        if (typeof actual !== "string") return incomparable(actual);
        if (actual.length > MAX_MATCH_INPUT) return UNDECIDED;
        return bool(regex.test(actual));
      };
    }
    case "exists": {
      const wanted = expected !== false;
      return (actual) => bool((actual !== MISSING) === wanted);
    }
    case "has_scope": {
      const needed = expected as string;
      return (actual) => {
        if (!Array.isArray(actual)) return incomparable(actual);
        return bool(hasPermission(actual as string[], needed));
      };
    }
  }
}

/** JSON-value helpers shared by validation, evaluation and decision messages. */

/** Deepest nesting accepted in policy values and compared in evaluated values. */
export const MAX_VALUE_DEPTH = 64;
/** Strings in a decision (`actual`, messages) are cut to this many characters. */
export const MAX_PREVIEW_STRING = 256;
const MAX_PREVIEW_ITEMS = 32;
const MAX_PREVIEW_DEPTH = 4;

export type JsonType = "null" | "boolean" | "number" | "string" | "array" | "object" | "other";

/** The JSON type of a value; NaN, functions, symbols, bigints and undefined are "other" (not comparable). */
export function jsonType(value: unknown): JsonType {
  switch (typeof value) {
    case "string":
      return "string";
    case "number":
      return Number.isNaN(value) ? "other" : "number";
    case "boolean":
      return "boolean";
    case "object":
      if (value === null) return "null";
      return Array.isArray(value) ? "array" : "object";
    default:
      return "other";
  }
}

export function isScalar(value: unknown): value is string | number | boolean | null {
  const type = jsonType(value);
  return type === "string" || type === "number" || type === "boolean" || type === "null";
}

/** Returns why `value` is not a plain JSON value usable in a policy, or undefined when it is. */
export function describeInvalidJsonValue(value: unknown, depth = 0): string | undefined {
  if (depth > MAX_VALUE_DEPTH) return `is nested deeper than ${MAX_VALUE_DEPTH} levels`;
  switch (typeof value) {
    case "string":
    case "boolean":
      return undefined;
    case "number":
      return Number.isFinite(value) ? undefined : `must be a finite number, not ${String(value)}`;
    case "object": {
      if (value === null) return undefined;
      if (Array.isArray(value)) {
        for (const item of value) {
          const problem = describeInvalidJsonValue(item, depth + 1);
          if (problem !== undefined) return problem;
        }
        return undefined;
      }
      const prototype = Object.getPrototypeOf(value);
      if (prototype !== Object.prototype && prototype !== null) return "must be a plain JSON object";
      for (const key of Object.keys(value)) {
        const problem = describeInvalidJsonValue((value as Record<string, unknown>)[key], depth + 1);
        if (problem !== undefined) return problem;
      }
      return undefined;
    }
    default:
      return `must be a JSON value, not ${typeof value}`;
  }
}

/**
 * Structural equality over JSON values (own enumerable keys, arrays by position; `-0` equals `0`, NaN equals
 * nothing). Throws RangeError past {@link MAX_VALUE_DEPTH} so a cyclic or hostile value fails the evaluation.
 */
export function deepEqual(a: unknown, b: unknown, depth = 0): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (depth > MAX_VALUE_DEPTH) throw new RangeError(`value nested deeper than ${MAX_VALUE_DEPTH} levels`);
  const aIsArray = Array.isArray(a);
  if (aIsArray !== Array.isArray(b)) return false;
  if (aIsArray) {
    const bArray = b as unknown[];
    if (a.length !== bArray.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], bArray[i], depth + 1)) return false;
    return true;
  }
  const aKeys = Object.keys(a);
  if (aKeys.length !== Object.keys(b).length) return false;
  for (const key of aKeys) {
    if (!Object.hasOwn(b, key)) return false;
    if (!deepEqual((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key], depth + 1))
      return false;
  }
  return true;
}

function truncate(text: string): string {
  return text.length <= MAX_PREVIEW_STRING
    ? text
    : `${text.slice(0, MAX_PREVIEW_STRING)}…(${text.length - MAX_PREVIEW_STRING} more chars)`;
}

/**
 * A small, JSON-safe copy of a value for a decision record: strings cut to 256 characters, at most 32
 * items per level and 4 levels, cycles cut, non-finite numbers and bigints as strings, -0 as 0.
 * Never throws (a throwing getter becomes "[unreadable]").
 */
export function safelyPreviewValue(value: unknown, depth = 0, seen: object[] = []): unknown {
  try {
    switch (typeof value) {
      case "string":
        return truncate(value);
      case "number":
        if (Object.is(value, -0)) return 0;
        return Number.isFinite(value) ? value : String(value);
      case "boolean":
      case "undefined":
        return value;
      case "bigint":
        return `${value}n`;
      case "object": {
        if (value === null) return null;
        if (seen.includes(value)) return "[Circular]";
        if (depth >= MAX_PREVIEW_DEPTH) return Array.isArray(value) ? "[Array]" : "[Object]";
        seen.push(value);
        try {
          if (Array.isArray(value)) {
            const items = value
              .slice(0, MAX_PREVIEW_ITEMS)
              .map((item) => safelyPreviewValue(item, depth + 1, seen));
            if (value.length > MAX_PREVIEW_ITEMS)
              items.push(`…(${value.length - MAX_PREVIEW_ITEMS} more items)`);
            return items;
          }
          const copy: Record<string, unknown> = {};
          const keys = Object.keys(value);
          for (const key of keys.slice(0, MAX_PREVIEW_ITEMS)) {
            Object.defineProperty(copy, truncate(key), {
              value: safelyPreviewValue((value as Record<string, unknown>)[key], depth + 1, seen),
              enumerable: true,
              writable: true,
              configurable: true,
            });
          }
          if (keys.length > MAX_PREVIEW_ITEMS) copy["…"] = `${keys.length - MAX_PREVIEW_ITEMS} more keys`;
          return copy;
        } finally {
          seen.pop();
        }
      }
      default:
        return `[${typeof value}]`;
    }
  } catch {
    return "[unreadable]";
  }
}

/** Renders a value for a one-line message: JSON for JSON values, bounded in length. Never throws. */
export function safelyFormatValue(value: unknown): string {
  try {
    if (typeof value === "string") return JSON.stringify(truncate(value));
    const text = JSON.stringify(safelyPreviewValue(value));
    return text === undefined ? String(value) : truncate(text);
  } catch {
    return "[unreadable]";
  }
}

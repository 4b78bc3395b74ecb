/**
 * Wildcard permissions (scopes) such as `flights:*` or `tools.read`: what a user holds and what a
 * policy rule, a route or a delegation needs. Pure functions, no state.
 *
 * A permission is a non-empty string without whitespace, made of segments separated by `:` or `.`.
 * In a *granted* permission, a segment that is exactly `*` is a wildcard:
 * - `*` alone covers every permission;
 * - a trailing `*` covers one or more further segments (`flights:*` covers `flights:book` and
 *   `flights:book:intl`, not `flights`);
 * - a `*` elsewhere covers exactly one segment (`repo:*:read` covers `repo:web:read`).
 * Separators must agree position by position (`flights:*` does not cover `flights.book`).
 * A *needed* permission is read literally: `flights:*` is needed as a whole, so only `flights:*`
 * or a wider grant (`*`) covers it, never `flights:book`. Matching is case-sensitive.
 */

/** Longest permission accepted (a scope is a short name, not a document). */
export const MAX_PERMISSION_LENGTH = 256;

const SEPARATOR = /([:.])/;
const WHITESPACE = /\s/;

/** Why `value` is not a well-formed permission, or undefined when it is. */
export function describeInvalidPermission(value: unknown): string | undefined {
  if (typeof value !== "string") return "a permission must be a string such as flights:book";
  if (value === "") return "a permission must not be empty";
  if (value.length > MAX_PERMISSION_LENGTH)
    return `a permission is at most ${MAX_PERMISSION_LENGTH} characters`;
  if (WHITESPACE.test(value)) return `permission ${JSON.stringify(value)} contains whitespace`;
  // Splitting keeps the separators: segments sit at even indexes, separators at odd ones.
  const parts = value.split(SEPARATOR);
  for (let i = 0; i < parts.length; i += 2) {
    if (parts[i] === "") return `permission ${JSON.stringify(value)} has an empty segment`;
  }
  return undefined;
}

/**
 * Does the granted permission `granted` (which may contain `*` segments) cover `needed`?
 * Malformed input on either side never matches (fail closed).
 *
 * @example permissionMatches("flights:*", "flights:book") // true
 * @example permissionMatches("flights:book", "flights:*") // false: the need is read literally
 */
export function permissionMatches(granted: string, needed: string): boolean {
  if (describeInvalidPermission(granted) !== undefined || describeInvalidPermission(needed) !== undefined)
    return false;
  if (granted === "*" || granted === needed) return true;
  if (!granted.includes("*")) return false;
  const grant = granted.split(SEPARATOR);
  const need = needed.split(SEPARATOR);
  for (let i = 0; i < grant.length; i += 2) {
    const segment = grant[i] as string;
    if (segment === "*" && i === grant.length - 1) {
      // A trailing wildcard covers one or more further segments, after the same separator.
      return i < need.length && (i === 0 || grant[i - 1] === need[i - 1]);
    }
    if (i >= need.length) return false;
    if (i > 0 && grant[i - 1] !== need[i - 1]) return false;
    if (segment !== "*" && segment !== need[i]) return false;
  }
  return grant.length === need.length;
}

/**
 * Does any of `scopes` cover `needed`? Non-array or malformed scopes grant nothing.
 *
 * @example hasPermission(["flights:*", "hotels:read"], "flights:book") // true
 */
export function hasPermission(scopes: readonly string[] | undefined | null, needed: string): boolean {
  if (!Array.isArray(scopes)) return false;
  for (const granted of scopes) if (permissionMatches(granted, needed)) return true;
  return false;
}

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

import type { Principal } from "./types.js";

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

/**
 * The permissions held under both `a` and `b`: every permission of one side that the other side
 * covers. Never wider than either side (`hasPermission(intersectScopes(a, b), p)` implies both
 * `hasPermission(a, p)` and `hasPermission(b, p)`); it can be narrower than the exact intersection
 * only when two different wildcards overlap partially (`a:*:x` with `a:b:*`).
 *
 * @example intersectScopes(["flights:*"], ["flights:book", "hotels:read"]) // ["flights:book"]
 */
export function intersectScopes(a: readonly string[], b: readonly string[]): string[] {
  const out = new Set<string>();
  for (const scope of a) if (hasPermission(b, scope)) out.add(scope);
  for (const scope of b) if (hasPermission(a, scope)) out.add(scope);
  return [...out];
}

/** Longest user id, email or tenant accepted in a principal. */
export const MAX_PRINCIPAL_FIELD = 256;
/** Most scopes one principal may carry. */
export const MAX_PRINCIPAL_SCOPES = 1000;

const isShortString = (value: unknown): value is string =>
  typeof value === "string" && value !== "" && value.length <= MAX_PRINCIPAL_FIELD;

/**
 * Why `value` is not a well-formed {@link Principal} (`{ userId, email?, tenant?, scopes? }`), or
 * undefined when it is. `name` prefixes the field names in the message (e.g. `request.principal`).
 */
export function describeInvalidPrincipal(value: unknown, name = "principal"): string | undefined {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return `${name} must be an object { userId, email?, tenant?, scopes? }`;
  }
  const p = value as Record<string, unknown>;
  if (!isShortString(p.userId)) {
    return `${name}.userId must be a non-empty string of at most ${MAX_PRINCIPAL_FIELD} characters (the end user's id)`;
  }
  for (const field of ["email", "tenant"] as const) {
    if (p[field] !== undefined && !isShortString(p[field])) {
      return `${name}.${field} must be a non-empty string of at most ${MAX_PRINCIPAL_FIELD} characters when set`;
    }
  }
  if (p.scopes !== undefined) {
    if (
      !Array.isArray(p.scopes) ||
      p.scopes.length > MAX_PRINCIPAL_SCOPES ||
      !p.scopes.every((scope) => describeInvalidPermission(scope) === undefined)
    ) {
      return `${name}.scopes must be a list of at most ${MAX_PRINCIPAL_SCOPES} permissions (non-empty, no whitespace, e.g. flights:book or flights:*)`;
    }
  }
  const known = new Set(["userId", "email", "tenant", "scopes"]);
  const unknown = Object.keys(p).find((key) => !known.has(key));
  if (unknown !== undefined)
    return `${name} has an unknown field ${JSON.stringify(unknown)} (allowed: userId, email, tenant, scopes)`;
  return undefined;
}

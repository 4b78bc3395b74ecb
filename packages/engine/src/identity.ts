/**
 * The principal (end user) a call is made for: validation, and the shapes policies and audit
 * records see. Kept apart from the decision path's other checks so it costs nothing for calls
 * made for no one.
 */
import { describeInvalidPrincipal, type EvaluationUser } from "@aa/policy";
import type { Principal } from "./types.js";

/** The user as an audit record stores it (scopes are not stored: the conditions show the ones a rule needed). */
export interface RecordUser {
  id: string;
  email: string | null;
  tenant: string | null;
}

/** What is wrong with `request.principal`, or undefined when it is absent or well formed. */
export function describePrincipalProblem(principal: unknown): string | undefined {
  return principal === undefined ? undefined : describeInvalidPrincipal(principal, "request.principal");
}

/** The user as policies read it (`user.id`, `user.email`, `user.tenant`, `user.scopes`). */
export function evaluationUser(principal: Principal): EvaluationUser {
  const user: EvaluationUser = { id: principal.userId, scopes: principal.scopes ?? [] };
  if (principal.email !== undefined) user.email = principal.email;
  if (principal.tenant !== undefined) user.tenant = principal.tenant;
  return user;
}

/** The user as the audit record keeps it; `null` for a call made for no one. */
export function recordUser(principal: Principal | undefined): RecordUser | null {
  if (principal === undefined) return null;
  return { id: principal.userId, email: principal.email ?? null, tenant: principal.tenant ?? null };
}

/** Canonical JSON of a record's user (keys in RFC 8785 order; strings escaped as JSON does). */
export function recordUserJson(user: RecordUser | null | undefined): string {
  if (user === null || user === undefined) return "null";
  return (
    '{"email":' +
    (user.email === null ? "null" : JSON.stringify(user.email)) +
    ',"id":' +
    JSON.stringify(user.id) +
    ',"tenant":' +
    (user.tenant === null ? "null" : JSON.stringify(user.tenant)) +
    "}"
  );
}

/**
 * The end user calls are made for, carried ambiently (`runAs(principal, fn)`) or per call
 * (`onBehalfOf`). One AsyncLocalStorage, created on the first `runAs` (a process that never acts
 * for anyone pays nothing) and entered once per request, never per tool call: the interceptor only
 * reads it. Shared through `Symbol.for` so the ESM and CommonJS copies of core see the same user.
 *
 * Narrowing, never widening: inside a `runAs`, a nested `runAs` or an `onBehalfOf` must name the
 * same user (and tenant), and its scopes are intersected with the ones in force. So no code running
 * for a user (a sub-agent, a tool) can act for someone else or with more than the user holds.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { describeInvalidPrincipal, intersectScopes, type Principal } from "@aa/policy";
import { AssemblyError } from "./errors.js";

export type { Principal };

const STORE = Symbol.for("agent-assembly.principal-store");
type Holder = { [STORE]?: AsyncLocalStorage<Principal> };
// An own property, even undefined: the per-call read of a property the global object lacks costs
// ~25 ns on Node 22, an own one ~2 ns (see trace.ts).
if (!(STORE in globalThis)) (globalThis as Holder)[STORE] = undefined;

function storage(create: true): AsyncLocalStorage<Principal>;
function storage(create: false): AsyncLocalStorage<Principal> | undefined;
function storage(create: boolean): AsyncLocalStorage<Principal> | undefined {
  const holder = globalThis as Holder;
  if (holder[STORE] === undefined && create) holder[STORE] = new AsyncLocalStorage<Principal>();
  return holder[STORE];
}

/** A frozen, validated copy: later changes to the caller's object cannot change who a call is for. */
function checkedCopy(principal: unknown, name: string): Principal {
  const problem = describeInvalidPrincipal(principal, name);
  if (problem !== undefined) {
    throw new AssemblyError("INVALID_PRINCIPAL", problem, { option: name });
  }
  const p = principal as Principal;
  const copy: Principal = { userId: p.userId };
  if (p.email !== undefined) copy.email = p.email;
  if (p.tenant !== undefined) copy.tenant = p.tenant;
  if (p.scopes !== undefined) copy.scopes = Object.freeze([...p.scopes]) as string[];
  return Object.freeze(copy);
}

/**
 * `inner` as it may act inside `outer`: the same user and tenant, scopes intersected (an inner
 * principal without `scopes` keeps the outer ones). Throws `PRINCIPAL_MISMATCH` for another user.
 */
export function narrowPrincipal(outer: Principal | undefined, inner: Principal): Principal {
  if (outer === undefined) return inner;
  if (inner.userId !== outer.userId || (inner.tenant !== undefined && inner.tenant !== outer.tenant)) {
    throw new AssemblyError(
      "PRINCIPAL_MISMATCH",
      `This code runs on behalf of user ${outer.userId}${outer.tenant ? ` (tenant ${outer.tenant})` : ""}; it cannot act for user ${inner.userId}${inner.tenant ? ` (tenant ${inner.tenant})` : ""}. Start work for another user outside this runAs`,
      { userId: outer.userId, requestedUserId: inner.userId },
    );
  }
  const narrowed: Principal = { userId: outer.userId };
  const email = inner.email ?? outer.email;
  if (email !== undefined) narrowed.email = email;
  if (outer.tenant !== undefined) narrowed.tenant = outer.tenant;
  const scopes =
    inner.scopes === undefined
      ? outer.scopes
      : outer.scopes === undefined
        ? []
        : intersectScopes(outer.scopes, inner.scopes);
  if (scopes !== undefined) narrowed.scopes = Object.freeze([...scopes]) as string[];
  return Object.freeze(narrowed);
}

/**
 * Runs `fn` on behalf of `principal`: every governed call made inside it (tool calls of every
 * adapter, `execute`/`gate`/`canI`, sub-agents) carries that user, until `fn` and everything it
 * started has finished. Nested inside another `runAs`, the principal must be the same user and its
 * scopes are intersected with the outer ones (never widened).
 *
 * @throws AssemblyError `INVALID_PRINCIPAL` for a malformed principal, `PRINCIPAL_MISMATCH` for
 * another user than the one in force.
 * @example await runAs({ userId: "u_42", email: "ada@example.com", scopes: ["flights:*"] }, () => agent.invoke(input));
 */
export function runAs<T>(principal: Principal, fn: () => T): T {
  if (typeof fn !== "function") {
    throw new AssemblyError("INVALID_REQUEST", "runAs(principal, fn) needs a function to run", {
      option: "fn",
    });
  }
  const als = storage(true);
  return als.run(narrowPrincipal(als.getStore(), checkedCopy(principal, "principal")), fn);
}

/** The principal in force here (set by `runAs`), or undefined. */
export function currentPrincipal(): Principal | undefined {
  return storage(false)?.getStore();
}

/** The principal a call with `onBehalfOf` (or none) is made for: the per-call one narrowed by the ambient one. */
export function effectivePrincipal(onBehalfOf: Principal | undefined): Principal | undefined {
  const ambient = currentPrincipal();
  if (onBehalfOf === undefined) return ambient;
  return narrowPrincipal(ambient, checkedCopy(onBehalfOf, "onBehalfOf"));
}

/**
 * Hono middleware: `app.use(setPrincipal((c) => ...))` after your authentication, then
 * `app.post("/refunds", requireAgentPermission("payments:refund"), handler)`.
 */
import { runAs } from "@aa/core";
import type { Context, MiddlewareHandler } from "hono";
import {
  checkAgentPermission,
  checkedPermission,
  checkedResolver,
  type PrincipalFromRequest,
  type RequirePermissionOptions,
  resolvePrincipal,
} from "./index.js";

/** Runs the rest of the request (`await next()`) on behalf of the user `fromContext` returns; anonymous requests go on without one. */
export function setPrincipal(fromContext: PrincipalFromRequest<Context>): MiddlewareHandler {
  const resolve = checkedResolver(fromContext);
  return async (c, next) => {
    const principal = await resolvePrincipal(resolve, c);
    if (principal === undefined) return next();
    return runAs(principal, () => next());
  };
}

/** Answers 401 / 403 JSON when the user (or, with `action`, the agent) lacks `permission`; otherwise goes on. */
export function requireAgentPermission(
  permission: string,
  options: RequirePermissionOptions = {},
): MiddlewareHandler {
  const needed = checkedPermission(permission);
  return async (c, next) => {
    const verdict = await checkAgentPermission(needed, options);
    if (!verdict.ok) return c.json(verdict.body, verdict.status);
    await next();
  };
}

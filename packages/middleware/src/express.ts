/**
 * Express middleware: `app.use(setPrincipal((req) => ...))` after your authentication, then
 * `app.post("/refunds", requireAgentPermission("payments:refund"), handler)`.
 */
import { runAs } from "@aa/core";
import type { NextFunction, Request, RequestHandler, Response } from "express";
import {
  checkAgentPermission,
  checkedPermission,
  checkedResolver,
  type PrincipalFromRequest,
  type RequirePermissionOptions,
  resolvePrincipal,
} from "./index.js";

/**
 * Runs the rest of the request (later middleware, the route, every agent and tool call they make)
 * on behalf of the user `fromRequest` returns. An anonymous request (undefined) goes on without
 * one; a resolver error or a malformed principal goes to Express's error handling.
 */
export function setPrincipal(fromRequest: PrincipalFromRequest<Request>): RequestHandler {
  const resolve = checkedResolver(fromRequest);
  return (req: Request, _res: Response, next: NextFunction) => {
    resolvePrincipal(resolve, req).then(
      (principal) => {
        if (principal === undefined) return next();
        try {
          runAs(principal, () => next());
        } catch (error) {
          next(error);
        }
      },
      (error: unknown) => next(error),
    );
  };
}

/** Answers 401 (no user) or 403 (the user, or with `action` the agent, lacks it) as JSON; otherwise goes on. */
export function requireAgentPermission(
  permission: string,
  options: RequirePermissionOptions = {},
): RequestHandler {
  const needed = checkedPermission(permission);
  return (_req: Request, res: Response, next: NextFunction) => {
    checkAgentPermission(needed, options).then((verdict) => {
      if (verdict.ok) next();
      else res.status(verdict.status).json(verdict.body);
    }, next);
  };
}

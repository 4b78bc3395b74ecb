/**
 * Fastify hooks: `app.addHook("preHandler", setPrincipal((request) => ...))` after your
 * authentication, and `{ preHandler: requireAgentPermission("payments:refund") }` on a route.
 */
import { runAs } from "@aa/core";
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from "fastify";
import {
  checkAgentPermission,
  checkedPermission,
  checkedResolver,
  type PrincipalFromRequest,
  type RequirePermissionOptions,
  resolvePrincipal,
} from "./index.js";

type Hook = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void;

/**
 * A hook (onRequest, preValidation or preHandler) that runs the rest of the request on behalf of
 * the user `fromRequest` returns: `done()` is called inside `runAs`, so later hooks and the handler
 * inherit it. An anonymous request goes on without one; errors go to Fastify's error handling.
 */
export function setPrincipal(fromRequest: PrincipalFromRequest<FastifyRequest>): Hook {
  const resolve = checkedResolver(fromRequest);
  return (request, _reply, done) => {
    resolvePrincipal(resolve, request).then(
      (principal) => {
        if (principal === undefined) return done();
        let entered = false;
        try {
          runAs(principal, () => {
            entered = true;
            done();
          });
        } catch (error) {
          if (!entered) done(error as Error);
          else throw error;
        }
      },
      (error: unknown) => done(error as Error),
    );
  };
}

/** A preHandler hook answering 401 / 403 JSON when the user (or, with `action`, the agent) lacks `permission`. */
export function requireAgentPermission(permission: string, options: RequirePermissionOptions = {}): Hook {
  const needed = checkedPermission(permission);
  return (_request, reply, done) => {
    checkAgentPermission(needed, options).then(
      (verdict) => {
        if (verdict.ok) done();
        else reply.code(verdict.status).send(verdict.body);
      },
      (error: unknown) => done(error as Error),
    );
  };
}

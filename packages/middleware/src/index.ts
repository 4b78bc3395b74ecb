/**
 * @aa/middleware: the framework-neutral part of the HTTP middleware. `setPrincipal` (per
 * framework, from `@aa/middleware/express`, `/fastify`, `/hono`) runs the rest of a request on
 * behalf of the user the app authenticated; `requireAgentPermission` answers 401/403 JSON when
 * that user (or, with `action`, the agent acting for them) lacks a permission.
 */
import {
  AssemblyError,
  type ConditionResult,
  currentPrincipal,
  describeInvalidPermission,
  getAssembly,
  hasPermission,
  type Principal,
} from "@aa/core";

export type { Principal };

/** Reads the user a request is made by (e.g. from `req.user` set by the app's authentication); undefined for an anonymous request. */
export type PrincipalFromRequest<Request> = (
  request: Request,
) => Principal | undefined | null | Promise<Principal | undefined | null>;

/** Options of `requireAgentPermission`. */
export interface RequirePermissionOptions {
  /**
   * Also ask the gate whether the agent may perform this action for the user (a dry run, `canI`:
   * policies, `required_scopes`, delegation, controls; nothing is recorded). Needs an initialised
   * assembly in the process; without one the route answers 503 (fail closed).
   */
  action?: string;
}

/** The JSON body of a refusal, shaped like the gateway's errors. */
export interface PermissionErrorBody {
  error: {
    code: "UNAUTHENTICATED" | "PERMISSION_DENIED" | "GATE_UNAVAILABLE";
    message: string;
    details?: {
      permission: string;
      userId?: string;
      action?: string;
      denialReason?: string;
      conditions?: ConditionResult[];
    };
  };
}

/** The outcome of a permission check: go on, or answer `status` with `body`. */
export type PermissionVerdict =
  | { ok: true }
  | { ok: false; status: 401 | 403 | 503; body: PermissionErrorBody };

/** Throws at setup time (not per request) when `permission` is not a well-formed permission. */
export function checkedPermission(permission: string): string {
  const problem = describeInvalidPermission(permission);
  if (problem !== undefined) {
    throw new AssemblyError("INVALID_PERMISSION", `requireAgentPermission: ${problem}`, { permission });
  }
  return permission;
}

/**
 * Does the user the current request is made for (set by `setPrincipal`) hold `permission`
 * (wildcards in their scopes count: `payments:*` covers `payments:refund`)? With
 * `options.action`, is the agent also allowed to perform that action for them?
 */
export async function checkAgentPermission(
  permission: string,
  options: RequirePermissionOptions = {},
): Promise<PermissionVerdict> {
  const principal = currentPrincipal();
  if (principal === undefined) {
    return {
      ok: false,
      status: 401,
      body: {
        error: {
          code: "UNAUTHENTICATED",
          message: `This route needs the permission ${permission}, and the request names no user: authenticate the request and put setPrincipal(...) before this route`,
          details: { permission },
        },
      },
    };
  }
  if (!hasPermission(principal.scopes, permission)) {
    return {
      ok: false,
      status: 403,
      body: {
        error: {
          code: "PERMISSION_DENIED",
          message: `User ${principal.userId} does not hold the permission ${permission}`,
          details: { permission, userId: principal.userId },
        },
      },
    };
  }
  if (options.action === undefined) return { ok: true };
  let allowed: Awaited<ReturnType<Awaited<ReturnType<typeof getAssembly>>["canI"]>>;
  try {
    allowed = await (await getAssembly()).canI(options.action);
  } catch (error) {
    return {
      ok: false,
      status: 503,
      body: {
        error: {
          code: "GATE_UNAVAILABLE",
          message: `Could not ask the gate whether the agent may ${options.action}: ${error instanceof Error ? error.message : String(error)}`,
          details: { permission, userId: principal.userId, action: options.action },
        },
      },
    };
  }
  if (allowed.allowed) return { ok: true };
  return {
    ok: false,
    status: 403,
    body: {
      error: {
        code: "PERMISSION_DENIED",
        message: `The agent may not ${options.action} for user ${principal.userId} (${allowed.denialReason ?? allowed.status})`,
        details: {
          permission,
          userId: principal.userId,
          action: options.action,
          ...(allowed.denialReason === undefined ? {} : { denialReason: allowed.denialReason }),
          conditions: allowed.conditionsEvaluated,
        },
      },
    },
  };
}

/** Resolves the principal of a request; a missing one (undefined or null) leaves the request anonymous. */
export async function resolvePrincipal<Request>(
  fromRequest: PrincipalFromRequest<Request>,
  request: Request,
): Promise<Principal | undefined> {
  const principal = await fromRequest(request);
  return principal ?? undefined;
}

/** Throws at setup time when `fromRequest` is not a function. */
export function checkedResolver<Request>(
  fromRequest: PrincipalFromRequest<Request>,
): PrincipalFromRequest<Request> {
  if (typeof fromRequest !== "function") {
    throw new AssemblyError(
      "INVALID_REQUEST",
      "setPrincipal(fromRequest) needs a function that returns the request's user { userId, email?, tenant?, scopes? } (or undefined)",
      { option: "fromRequest" },
    );
  }
  return fromRequest;
}

/**
 * The gateway: the wire contract v1 (packages/wire-contract/openapi.yaml) over one engine per org.
 * Fastify validates bodies against the JSON schemas in ./schemas.ts (the same ones the OpenAPI
 * file names), so malformed JSON, a wrong type or an unknown field never reaches the engine.
 */
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerOptions,
  type ServerResponse,
} from "node:http";
import { PassThrough } from "node:stream";
import type { ActionResult, Approval, DecisionEngine, DecisionRequest, EngineEventType } from "@aa/engine";
import { ENGINE_EVENT_TYPES, EngineError } from "@aa/engine";
import { type CompiledPolicy, type PolicyDocument, PolicyValidationError, validatePolicy } from "@aa/policy";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { type ConsoleOptions, loadConsoleAssets, registerConsole } from "./console.js";
import { EnginePool, type SharedEngineOptions } from "./engines.js";
import { GatewayError, toWireError } from "./errors.js";
import { fastActions } from "./fast-actions.js";
import {
  type DatabaseLocation,
  engineStoreFor,
  type GatewayStore,
  openGatewayStore,
  parseDatabase,
} from "./gateway-store.js";
import { createKey, KeyVerifier, keyInfo, type Principal } from "./keys.js";
import * as schemas from "./schemas.js";
import { type EventStreams, serveEvents } from "./sse.js";

/** Options of {@link createGateway}. */
export interface GatewayOptions {
  /** The policy every org enforces until an admin replaces it (`PUT /v1/policies`). */
  policy: CompiledPolicy | PolicyDocument;
  /** `sqlite:<file>` (or a file path), a `postgres://` URL, or `:memory:`. Default `sqlite:.aa/assembly.db`. */
  database?: string;
  /** Largest accepted request body in bytes (413 above). Default 1 MiB. */
  bodyLimit?: number;
  /** How long a verified key is trusted without re-reading the store, in ms. Default 1000. */
  keyCacheMs?: number;
  /** Settings for every org's engine (checkpoint interval, circuit breaker, budgets, ...). */
  engine?: SharedEngineOptions;
  /**
   * Enforcement modes an agent may ask for in `POST /v1/actions` besides `enforce`. Default none:
   * `observe` lets every call run and `disabled` skips evaluation, so an agent choosing them would
   * widen its own authority; the gateway's operator opts in (e.g. `["observe"]` for a shadow rollout).
   */
  agentEnforcementModes?: ("observe" | "disabled")[];
  /**
   * Fastify's logger (off by default). Keys are never logged: the request serializer omits headers.
   * With the logger on, decisions go through Fastify's pipeline too (so each is logged), at a cost
   * in throughput (see `Gateway.app`).
   */
  logger?: boolean;
  /**
   * Serve the operator console at `/console/` (and redirect `/` there) from this asset folder,
   * normally `consoleAssetsDir` of @aa/console (`aa gateway start` passes it). Off by default.
   */
  console?: ConsoleOptions;
}

/** A running (or ready to listen) gateway. */
export interface Gateway {
  /**
   * The Fastify instance (for `inject` in tests). Ordinary `POST /v1/actions` requests arriving
   * over HTTP are answered before Fastify's pipeline (same parser, validator, handler and errors;
   * see fast-actions.ts), so hooks added here do not see them unless `logger` is on; `inject` and
   * every other route go through Fastify.
   */
  readonly app: FastifyInstance;
  /** Keys and policies beside the audit store (used by `aa keys`). */
  readonly store: GatewayStore;
  readonly database: DatabaseLocation;
  /** Starts listening; resolves to the base URL (`http://host:port`). */
  listen(options?: { port?: number; host?: string }): Promise<string>;
  /** Stops accepting requests, ends event streams, waits for in-flight requests, closes every engine. */
  close(): Promise<void>;
}

const DEFAULT_BODY_LIMIT = 1024 * 1024;
const DEFAULT_WAIT_MS = 25_000;
const MAX_WAIT_MS = 30_000;

type Role = "agent" | "operator" | "admin";

declare module "fastify" {
  interface FastifyRequest {
    principal?: Principal;
  }
}

/** Builds a gateway over `options.database`; call `listen()` to serve it. */
export async function createGateway(options: GatewayOptions): Promise<Gateway> {
  if (options === null || typeof options !== "object" || options.policy === undefined) {
    throw new GatewayError("INVALID_OPTIONS", 400, "createGateway(options) needs a `policy`", {
      option: "policy",
    });
  }
  // Read before opening the database: a wrong folder fails fast and leaves nothing open.
  const consoleAssets = options.console === undefined ? undefined : loadConsoleAssets(options.console);
  const database = parseDatabase(options.database ?? "sqlite:.aa/assembly.db");
  const store = await openGatewayStore(database);
  const pool = new EnginePool(engineStoreFor(database), store, options.policy, options.engine ?? {});
  const keys = new KeyVerifier(store, options.keyCacheMs ?? 1000);
  const streams: EventStreams = new Set();
  /** Aborted when the gateway starts closing: long polls answer, event streams end. */
  const closing = new AbortController();
  const allowedModes = new Set<string>(options.agentEnforcementModes ?? []);
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
  /** Fastify's Ajv instance (the one that compiles the routes' body schemas). */
  let ajv:
    | { compile(schema: object): ((data: unknown) => boolean) & { errors?: unknown[] | null } }
    | undefined;
  /** Answers POST /v1/actions without Fastify's pipeline (see fast-actions.ts); set once `app` exists. */
  let fast: ((req: IncomingMessage, res: ServerResponse) => boolean) | undefined;

  const app = Fastify({
    logger: options.logger
      ? { serializers: { req: (req) => ({ method: req.method, url: req.url }) } }
      : false,
    bodyLimit,
    // Strict bodies: an unknown field or a wrong type is an error, never silently dropped or coerced.
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false },
      onCreate: (instance) => {
        ajv = instance;
      },
    },
    return503OnClosing: true,
    // The same node:http server Fastify would create, with the decision route answered first by
    // the fast path (off with the logger on: Fastify's request log would miss decisions).
    serverFactory: (handler, serverOptions) => {
      const http = (serverOptions as { http?: ServerOptions }).http ?? {};
      const server = createServer(http, (req, res) => {
        if (fast === undefined || !fast(req, res)) handler(req, res);
      });
      const o = serverOptions as {
        keepAliveTimeout: number;
        requestTimeout: number;
        connectionTimeout: number;
        maxRequestsPerSocket: number;
      };
      server.keepAliveTimeout = o.keepAliveTimeout;
      server.requestTimeout = o.requestTimeout;
      server.setTimeout(o.connectionTimeout);
      if (o.maxRequestsPerSocket > 0) server.maxRequestsPerSocket = o.maxRequestsPerSocket;
      return server;
    },
  });

  app.setErrorHandler((error, _request, reply) => {
    const wire = toWireError(error);
    if (wire.status === 503) void reply.header("retry-after", "1");
    if (wire.status >= 500 && wire.body.error.code === "INTERNAL") app.log.error(error);
    return reply.code(wire.status).send(wire.body);
  });
  app.setNotFoundHandler((request, reply) => {
    return reply.code(404).send({
      error: {
        code: "NOT_FOUND",
        message: `No route ${request.method} ${request.url.split("?")[0]}; see the gateway's OpenAPI file for the routes under /v1`,
      },
    });
  });

  // ------------------------------------------------------------------ helpers

  async function authenticate(request: FastifyRequest, ...roles: Role[]): Promise<Principal> {
    const principal = await keys.verify(request.headers.authorization);
    request.principal = principal;
    authorize(principal, roles);
    return principal;
  }

  function authorize(principal: Principal, roles: Role[]): void {
    if (!roles.includes(principal.kind)) {
      throw new GatewayError(
        "FORBIDDEN",
        403,
        `${principal.kind === "agent" ? "An agent" : principal.kind === "admin" ? "An admin" : "An operator"} key may not do this; it needs a key of kind ${roles.join(" or ")}`,
        { role: principal.kind, allowed: roles },
      );
    }
  }

  /** `POST /v1/actions` after its body was parsed and validated (Fastify's route and the fast path). */
  async function decideAction(headers: IncomingHttpHeaders, body: Omit<DecisionRequest, "agent">) {
    const principal = await keys.verify(headers.authorization);
    authorize(principal, ["agent"]);
    const delegationToken = delegationHeader(headers);
    const engine = await pool.get(principal.orgId);
    if (
      body.enforcementMode !== undefined &&
      body.enforcementMode !== "enforce" &&
      !allowedModes.has(body.enforcementMode) &&
      // A fail-open record reports a call that already ran while the gateway was unreachable:
      // refusing it would lose that evidence; it is recorded with the fail-open marker.
      !(body.enforcementMode === "disabled" && body.failOpen === true)
    ) {
      throw new GatewayError(
        "ENFORCEMENT_MODE_FORBIDDEN",
        403,
        `This gateway does not let agents choose enforcementMode "${body.enforcementMode}" (it would let calls run that the policy denies); drop the field, or ask the gateway's operator to allow it`,
        { enforcementMode: body.enforcementMode },
      );
    }
    // With a token, the engine attributes the call to the token's child agent, which must
    // descend from the key's agent (the holder presenting it).
    return engine.decide({
      ...body,
      agent: { id: principal.agentId! },
      ...(delegationToken !== undefined ? { delegationToken } : {}),
    });
  }

  const operatorRoles: Role[] = ["operator", "admin"];
  const anyRole: Role[] = ["agent", "operator", "admin"];

  /** Agents see only their own approvals; another agent's is 403 (it exists, but is not theirs). */
  function assertOwnApproval(principal: Principal, approval: Approval): void {
    if (principal.kind === "agent" && !actsFor(principal, approval.agentId)) {
      throw new GatewayError(
        "FORBIDDEN",
        403,
        `Approval ${approval.id} belongs to another agent; only it or an operator may see it`,
        { approvalId: approval.id },
      );
    }
  }

  async function findApproval(engine: DecisionEngine, id: string): Promise<Approval> {
    const approval = await engine.getApproval(id);
    if (!approval) {
      throw new GatewayError("APPROVAL_NOT_FOUND", 404, `No approval with id ${id} in this organisation`, {
        approvalId: id,
      });
    }
    return approval;
  }

  // ------------------------------------------------------------------ routes

  await app.register(
    async (v1) => {
      v1.get("/health", async () => ({ status: "ok" }));

      v1.get("/ready", async (_request, reply) => {
        try {
          await store.ping();
        } catch (cause) {
          throw new GatewayError(
            "GATE_UNAVAILABLE",
            503,
            "The gateway's database does not answer; the gateway cannot decide until it does",
            { store: database.kind },
            { cause },
          );
        }
        // Still ready with a tampered org: its calls are denied either way, and every replica reads
        // the same database, so taking this one out of rotation would fix nothing (docs/gateway.md).
        return reply.send({
          status: "ready",
          store: database.kind,
          policyTampered: (await pool.tamperedOrgs()).length,
        });
      });

      v1.get("/jwks.json", async () => {
        const orgs = new Set((await store.listKeys()).map((k) => k.orgId));
        const engines = await Promise.all([...orgs].sort().map((org) => pool.get(org)));
        return { keys: engines.flatMap((engine) => engine.jwks().keys) };
      });

      v1.get("/whoami", async (request) => {
        const principal = await authenticate(request, ...anyRole);
        const engine = await pool.get(principal.orgId);
        const out: Record<string, unknown> = {
          orgId: principal.orgId,
          role: principal.kind,
          keyId: principal.keyId,
          policyHash: engine.policyHash,
        };
        if (principal.agentId !== undefined) {
          const state = engine.agentState(principal.agentId);
          out.agentId = principal.agentId;
          out.cbState = state.cbState;
          out.contained = state.contained;
        }
        return out;
      });

      // -------------------------------------------------------------- actions

      // Ordinary decision requests never get here: the fast path answers them (fast-actions.ts).
      v1.post("/actions", { schema: { body: schemas.ActionRequest } }, async (request) =>
        decideAction(request.headers, request.body as Omit<DecisionRequest, "agent">),
      );

      // -------------------------------------------------------------- approvals

      v1.get("/approvals", async (request) => {
        const principal = await authenticate(request, ...anyRole);
        const { state } = request.query as { state?: string };
        if (state !== undefined && !["pending", "approved", "denied", "expired"].includes(state)) {
          throw new GatewayError(
            "INVALID_QUERY",
            400,
            "state must be one of pending, approved, denied, expired",
            { field: "state" },
          );
        }
        const engine = await pool.get(principal.orgId);
        const all = await engine.listApprovals(
          state === undefined ? {} : { state: state as Approval["state"] },
        );
        const approvals = principal.kind === "agent" ? all.filter((a) => actsFor(principal, a.agentId)) : all;
        return { approvals };
      });

      v1.get("/approvals/:approvalId", async (request) => {
        const principal = await authenticate(request, ...anyRole);
        const engine = await pool.get(principal.orgId);
        const approval = await findApproval(engine, (request.params as { approvalId: string }).approvalId);
        assertOwnApproval(principal, approval);
        return approval;
      });

      v1.get("/approvals/:approvalId/wait", async (request) => {
        const principal = await authenticate(request, ...anyRole);
        const timeoutMs = intQuery(request, "timeoutMs", 0, MAX_WAIT_MS) ?? DEFAULT_WAIT_MS;
        const engine = await pool.get(principal.orgId);
        const id = (request.params as { approvalId: string }).approvalId;
        const approval = await findApproval(engine, id);
        assertOwnApproval(principal, approval);
        if (approval.state !== "pending") return approval;
        // Stop waiting when the client goes away, or answer at once (still pending) when the
        // gateway shuts down: a long poll must not hold a graceful shutdown for 30 s.
        const gone = new AbortController();
        const onClose = () => gone.abort();
        request.raw.once("close", onClose);
        const signal = AbortSignal.any([gone.signal, closing.signal]);
        try {
          return await engine.awaitApproval(id, { timeoutMs, signal });
        } catch (error) {
          if (
            error instanceof EngineError &&
            (error.code === "APPROVAL_WAIT_TIMEOUT" ||
              (error.code === "APPROVAL_WAIT_ABORTED" && closing.signal.aborted))
          ) {
            return findApproval(engine, id);
          }
          throw error;
        } finally {
          request.raw.off("close", onClose);
        }
      });

      v1.post(
        "/approvals/:approvalId/approve",
        { schema: { body: schemas.ApproveRequest }, preValidation: optionalBody },
        async (request) => {
          const principal = await authenticate(request, ...operatorRoles);
          const engine = await pool.get(principal.orgId);
          const { reason } = (request.body ?? {}) as { reason?: string };
          const id = (request.params as { approvalId: string }).approvalId;
          return asFirstAnswered(engine, id, principal.reviewer, "approved", () =>
            engine.approve(id, principal.reviewer, reason),
          );
        },
      );

      v1.post("/approvals/:approvalId/deny", { schema: { body: schemas.DenyRequest } }, async (request) => {
        const principal = await authenticate(request, ...operatorRoles);
        const engine = await pool.get(principal.orgId);
        const { reason } = request.body as { reason: string };
        const id = (request.params as { approvalId: string }).approvalId;
        return asFirstAnswered(engine, id, principal.reviewer, "denied", () =>
          engine.deny(id, principal.reviewer, reason),
        );
      });

      v1.post(
        "/approvals/:approvalId/release",
        { schema: { body: schemas.EmptyRequest }, preValidation: optionalBody },
        async (request): Promise<ActionResult> => {
          const principal = await authenticate(request, "agent");
          const engine = await pool.get(principal.orgId);
          const id = (request.params as { approvalId: string }).approvalId;
          const idempotencyKey = idempotencyKeyHeader(request.headers);
          if (idempotencyKey === undefined) return releaseFor(principal, engine, request, id);
          // A retry whose first answer was lost gets that answer again (decision 70).
          const first = async () => {
            const stored = await store.getRelease(principal.orgId, idempotencyKey);
            if (stored === undefined) return undefined;
            if (stored.approvalId !== id || stored.keyId !== principal.keyId) {
              throw new GatewayError(
                "IDEMPOTENCY_KEY_REUSED",
                409,
                "This Idempotency-Key was used for another release; send a new key for each release",
                { approvalId: id },
              );
            }
            return stored.result;
          };
          const earlier = await first();
          if (earlier !== undefined) return earlier;
          let result: ActionResult;
          try {
            result = await releaseFor(principal, engine, request, id);
          } catch (error) {
            // A concurrent request with the same key released it first.
            if ((error as { code?: unknown })?.code === "APPROVAL_ALREADY_USED") {
              const again = await first();
              if (again !== undefined) return again;
            }
            throw error;
          }
          // The release is committed: failing to remember its answer only costs a retry its 200.
          await store
            .putRelease({
              orgId: principal.orgId,
              idempotencyKey,
              approvalId: id,
              keyId: principal.keyId,
              result,
            })
            .catch(() => undefined);
          return result;
        },
      );

      /** Releases approval `id` for the key's agent, or for a delegated child on its token. */
      async function releaseFor(
        principal: Principal,
        engine: DecisionEngine,
        request: FastifyRequest,
        id: string,
      ): Promise<ActionResult> {
        const approval = await findApproval(engine, id);
        assertOwnApproval(principal, approval);
        if (approval.agentId === principal.agentId) return engine.releaseApproval(id, principal.agentId);
        // A delegated child's call is released for the child, on its (still valid) token.
        const token = delegationHeader(request.headers);
        const held = token === undefined ? undefined : await engine.verifyDelegation(token);
        if (held?.agentId !== approval.agentId || !held.chain.includes(principal.agentId!)) {
          throw new GatewayError(
            "FORBIDDEN",
            403,
            `Approval ${id} is ${approval.agentId}'s; release it with that delegated agent's token in AA-Delegation`,
            { approvalId: id, agentId: approval.agentId },
          );
        }
        return engine.releaseApproval(id, approval.agentId);
      }

      // -------------------------------------------------------------- audit

      v1.get("/audit", async (request) => {
        const principal = await authenticate(request, ...anyRole);
        const query = request.query as {
          cursor?: string;
          actionType?: string;
          traceId?: string;
          order?: string;
        };
        const limit = intQuery(request, "limit", 1, 1000);
        if (query.order !== undefined && query.order !== "asc" && query.order !== "desc") {
          throw new GatewayError(
            "INVALID_QUERY",
            400,
            "order must be asc (oldest first) or desc (newest first)",
            {
              field: "order",
            },
          );
        }
        const engine = await pool.get(principal.orgId);
        const page = await engine.audit({
          ...(query.order !== undefined ? { order: query.order } : {}),
          ...(query.cursor !== undefined ? { cursor: query.cursor } : {}),
          ...(query.actionType !== undefined ? { actionType: query.actionType } : {}),
          ...(query.traceId !== undefined ? { traceId: query.traceId } : {}),
          ...(limit !== undefined ? { limit } : {}),
        });
        if (principal.kind !== "agent") return page;
        // An agent's pages hold only its own records (a page may be shorter than `limit`).
        return { ...page, items: page.items.filter((item) => actsFor(principal, item.agent)) };
      });

      v1.get("/audit/verify", async (request) => {
        const principal = await authenticate(request, ...operatorRoles);
        return (await pool.get(principal.orgId)).verify();
      });

      v1.get("/audit/export", async (request, reply) => {
        const principal = await authenticate(request, ...operatorRoles);
        const engine = await pool.get(principal.orgId);
        const body = new PassThrough();
        void reply.header("content-type", "application/x-ndjson").send(body);
        engine.exportAudit(body).then(
          () => body.end(),
          (error: unknown) => body.destroy(error as Error),
        );
        return reply;
      });

      v1.post(
        "/audit/:auditEventId/outcome",
        { schema: { body: schemas.OutcomeRequest } },
        async (request, reply) => {
          const principal = await authenticate(request, ...anyRole);
          if (principal.kind !== "agent") {
            throw new GatewayError(
              "FORBIDDEN",
              403,
              "Only the agent that made the call may report its outcome; use that agent's key",
            );
          }
          const engine = await pool.get(principal.orgId);
          const auditEventId = (request.params as { auditEventId: string }).auditEventId;
          await engine.report(
            auditEventId,
            request.body as { status: "success" | "failure" | "partial" },
            principal.agentId!,
          );
          return reply.code(201).send({ auditEventId });
        },
      );

      v1.get("/receipts/:auditEventId", async (request) => {
        const principal = await authenticate(request, ...anyRole);
        const engine = await pool.get(principal.orgId);
        const auditEventId = (request.params as { auditEventId: string }).auditEventId;
        const receipt = await engine.receipt(auditEventId);
        if (principal.kind === "agent" && !actsFor(principal, receiptAgent(receipt))) {
          throw new GatewayError(
            "FORBIDDEN",
            403,
            "This receipt is another agent's; only that agent or an operator may read it",
            { auditEventId },
          );
        }
        return { receipt };
      });

      // -------------------------------------------------------------- policies, posture, agents

      v1.get("/policies", async (request) => {
        const principal = await authenticate(request, ...anyRole);
        const engine = await pool.get(principal.orgId);
        const stored = await store.getPolicy(principal.orgId);
        // A stored row is shown as found, even when it is not JSON (its text then): falling back to
        // the start-up policy would show a policy that is not the one in the database.
        const policy =
          stored === undefined
            ? ((options.policy as CompiledPolicy).document ?? (options.policy as PolicyDocument))
            : stored.policy === null && stored.text !== "null"
              ? stored.text
              : stored.policy;
        return { policyHash: engine.policyHash, policy, policyIntegrity: engine.policyIntegrity };
      });

      v1.put("/policies", { schema: { body: schemas.PolicyRequest } }, async (request) => {
        const principal = await authenticate(request, "admin");
        let document: PolicyDocument;
        try {
          document = validatePolicy((request.body as { policy: unknown }).policy, {
            source: "PUT /v1/policies",
          });
        } catch (error) {
          if (error instanceof PolicyValidationError) {
            throw new GatewayError("INVALID_POLICY", 400, error.message, { issues: error.issues });
          }
          throw error;
        }
        return { policyHash: await pool.replacePolicy(principal.orgId, document, principal.reviewer) };
      });

      v1.get("/posture", async (request) => {
        const principal = await authenticate(request, ...operatorRoles);
        return (await pool.get(principal.orgId)).posture();
      });

      v1.get("/agents", async (request) => {
        const principal = await authenticate(request, ...operatorRoles);
        return { agents: await (await pool.get(principal.orgId)).listAgentControls() };
      });

      v1.post("/agents/:agentId/contain", { schema: { body: schemas.ReasonRequest } }, async (request) => {
        const principal = await authenticate(request, ...operatorRoles);
        const { reason } = request.body as { reason: string };
        return (await pool.get(principal.orgId)).contain(
          (request.params as { agentId: string }).agentId,
          principal.reviewer,
          reason,
        );
      });

      v1.post("/agents/:agentId/release", { schema: { body: schemas.ReasonRequest } }, async (request) => {
        const principal = await authenticate(request, ...operatorRoles);
        const { reason } = request.body as { reason: string };
        return (await pool.get(principal.orgId)).release(
          (request.params as { agentId: string }).agentId,
          principal.reviewer,
          reason,
        );
      });

      // -------------------------------------------------------------- delegations

      v1.post("/delegations", { schema: { body: schemas.DelegateRequest } }, async (request, reply) => {
        const principal = await authenticate(request, "agent");
        const delegationToken = delegationHeader(request.headers);
        const { name, capabilities, ttlSeconds } = request.body as {
          name: string;
          capabilities: string[];
          ttlSeconds?: number;
        };
        const engine = await pool.get(principal.orgId);
        // With a token the parent is the token's child agent (delegating further, narrower only);
        // the key's agent must be on that child's chain, as for a decision.
        let parent: { agentId: string; delegationToken?: string } = { agentId: principal.agentId! };
        if (delegationToken !== undefined) {
          const held = await engine.verifyDelegation(delegationToken);
          if (!held.chain.includes(principal.agentId!)) {
            throw new GatewayError(
              "FORBIDDEN",
              403,
              `${principal.agentId} presented a delegation token of ${held.agentId}, whose chain it is not part of; use the key of ${held.chain[0]}`,
              { delegationId: held.id },
            );
          }
          parent = { agentId: held.agentId, delegationToken };
        }
        const grant = await engine.delegate(parent, name, {
          capabilities,
          ...(ttlSeconds !== undefined ? { ttlSeconds } : {}),
        });
        return reply.code(201).send(grant);
      });

      v1.get("/delegations", async (request) => {
        const principal = await authenticate(request, ...anyRole);
        const query = request.query as { role?: string; activeOnly?: string; agent?: string };
        if (query.role !== undefined && !["parent", "child", "ancestor"].includes(query.role)) {
          throw new GatewayError("INVALID_QUERY", 400, "role must be one of parent, child, ancestor", {
            field: "role",
          });
        }
        if (query.activeOnly !== undefined && !["true", "false"].includes(query.activeOnly)) {
          throw new GatewayError("INVALID_QUERY", 400, "activeOnly must be true or false", {
            field: "activeOnly",
          });
        }
        if (principal.kind === "agent" && query.agent !== undefined && query.agent !== principal.agentId) {
          throw new GatewayError(
            "FORBIDDEN",
            403,
            "An agent key lists only its own delegations; drop the agent parameter or use an operator key",
          );
        }
        // An agent key sees the delegations below it (default role `ancestor`), or with a child's
        // token in AA-Delegation, the child's; an operator the whole org's, or one agent's with
        // `agent` (and `role`, default `ancestor`).
        const engine = await pool.get(principal.orgId);
        const child = await delegatedAgent(request, principal, engine);
        if (child !== undefined && query.agent !== undefined && query.agent !== child) {
          throw new GatewayError(
            "FORBIDDEN",
            403,
            `A request with AA-Delegation lists only ${child}'s delegations; drop the agent parameter`,
          );
        }
        const agentId = child ?? (principal.kind === "agent" ? principal.agentId : query.agent);
        const role = (query.role ?? "ancestor") as "parent" | "child" | "ancestor";
        const delegations = await engine.listDelegations({
          ...(agentId !== undefined ? { agentId, role } : {}),
          ...(query.activeOnly === "true" ? { activeOnly: true } : {}),
        });
        return { delegations };
      });

      v1.delete("/delegations/:delegationId", async (request) => {
        const principal = await authenticate(request, ...anyRole);
        const id = (request.params as { delegationId: string }).delegationId;
        const engine = await pool.get(principal.orgId);
        let child: string | undefined;
        try {
          child = await delegatedAgent(request, principal, engine);
        } catch (error) {
          // A retried revocation of the token's own delegation (the first answer was lost) finds
          // the token revoked: answer as the first did, since nothing changes (decision 69).
          if ((error as { code?: unknown })?.code !== "DELEGATION_REVOKED") throw error;
          const [target] = (await engine.listDelegations({})).filter((d) => d.id === id);
          if (target?.state === "revoked" && target.chain.includes(principal.agentId!)) return target;
          throw error;
        }
        // An agent may revoke only a delegation it holds or that descends from it (the engine
        // checks); with a child's token, the child is that agent and is recorded as revokedBy.
        const actor = child ?? (principal.kind === "agent" ? principal.agentId! : undefined);
        return actor !== undefined
          ? engine.revokeDelegation(id, actor, { agentId: actor })
          : engine.revokeDelegation(id, principal.reviewer);
      });

      // -------------------------------------------------------------- events

      v1.get("/events", async (request, reply) => {
        const principal = await authenticate(request, ...anyRole);
        const query = request.query as { events?: string; agent?: string };
        const events = listQuery(query.events);
        for (const type of events ?? []) {
          if (!(ENGINE_EVENT_TYPES as readonly string[]).includes(type)) {
            throw new GatewayError(
              "INVALID_QUERY",
              400,
              `Unknown event type "${type}"; known types: ${ENGINE_EVENT_TYPES.join(", ")}`,
              { field: "events" },
            );
          }
        }
        const agents = listQuery(query.agent);
        const after = resumePoint(request);
        const engine = await pool.get(principal.orgId);
        if (principal.kind !== "agent") {
          await serveEvents(engine, request, reply, streams, {
            ...(events ? { events: events as EngineEventType[] } : {}),
            ...(agents ? { agentFilter: agents } : {}),
            ...(after !== undefined ? { after } : {}),
          });
          return;
        }
        if (agents?.some((a) => !actsFor(principal, a))) {
          throw new GatewayError(
            "FORBIDDEN",
            403,
            "An agent key sees only its own agent's events (and its delegated agents'); drop the agent filter or use an operator key",
          );
        }
        // An agent sees its own and its delegated agents' events, and the resolution of its
        // approvals (whose event names the reviewer): filtered here, in seq order, from every event.
        const wanted = new Set<string>(events ?? ENGINE_EVENT_TYPES);
        const own = new Set(
          (await engine.listApprovals()).filter((a) => actsFor(principal, a.agentId)).map((a) => a.id),
        );
        const mine = (agentId: string) => (agents ? agents.includes(agentId) : actsFor(principal, agentId));
        await serveEvents(engine, request, reply, streams, after !== undefined ? { after } : {}, (event) => {
          const approvalId = event.data.approvalId;
          if (event.type === "approval.requested" && typeof approvalId === "string" && mine(event.agentId)) {
            own.add(approvalId);
          }
          if (!wanted.has(event.type)) return false;
          if (mine(event.agentId)) return true;
          return event.type === "approval.resolved" && typeof approvalId === "string" && own.has(approvalId);
        });
      });

      // -------------------------------------------------------------- keys

      v1.get("/keys", async (request) => {
        const principal = await authenticate(request, "admin");
        return { keys: (await store.listKeys(principal.orgId)).map(keyInfo) };
      });

      v1.post("/keys", { schema: { body: schemas.CreateKeyRequest } }, async (request, reply) => {
        const principal = await authenticate(request, "admin");
        const body = request.body as { kind: Role; agentId?: string; name?: string };
        const created = await createKey(store, { ...body, orgId: principal.orgId });
        return reply.code(201).send(created);
      });

      v1.delete("/keys/:keyId", async (request) => {
        const principal = await authenticate(request, "admin");
        const id = (request.params as { keyId: string }).keyId;
        const existing = await store.getKey(id);
        if (!existing || existing.orgId !== principal.orgId) {
          throw new GatewayError("KEY_NOT_FOUND", 404, `No API key ${id} in this organisation`, {
            keyId: id,
          });
        }
        const revoked = await store.revokeKey(id, new Date().toISOString());
        keys.forget(id);
        return keyInfo(revoked!);
      });
    },
    { prefix: "/v1" },
  );

  if (consoleAssets !== undefined) registerConsole(app, consoleAssets);

  if (!options.logger) {
    const parseJson = app.getDefaultJsonParser("error", "error");
    let validate: ReturnType<NonNullable<typeof ajv>["compile"]> | undefined;
    fast = fastActions({
      bodyLimit,
      closing: closing.signal,
      parseJson: (req, body, done) => parseJson(req as never, body, done),
      validator: () => {
        // Fastify's Ajv caches compiled schemas by object: this is the route's own validator.
        if (ajv === undefined) throw new Error("Fastify's validator compiler is not ready");
        validate ??= ajv.compile(schemas.ActionRequest);
        return validate;
      },
      handle: (headers, body) => decideAction(headers, body as Omit<DecisionRequest, "agent">),
      logError: (error) => app.log.error(error),
    });
  }

  app.addHook("preClose", async () => {
    closing.abort();
    for (const end of streams) end();
  });

  let closed = false;
  return {
    app,
    store,
    database,
    async listen(listenOptions = {}) {
      return app.listen({ port: listenOptions.port ?? 7391, host: listenOptions.host ?? "127.0.0.1" });
    },
    async close() {
      if (closed) return;
      closed = true;
      const problems: unknown[] = [];
      await app.close().catch((error: unknown) => problems.push(error));
      await pool.close().catch((error: unknown) => problems.push(error));
      await store.close().catch((error: unknown) => problems.push(error));
      if (problems.length > 0) throw new AggregateError(problems, "the gateway did not close cleanly");
    },
  };
}

/**
 * Whether an agent key speaks for `agentId`: its own agent, or a child it delegated to (directly
 * or further down: child ids are `<parent>/<name>`), whose calls it makes with the child's token.
 */
function actsFor(principal: Principal, agentId: string | undefined): boolean {
  if (agentId === undefined || principal.agentId === undefined) return false;
  return agentId === principal.agentId || agentId.startsWith(`${principal.agentId}/`);
}

/**
 * Approve or deny, answering a retry as the first request was answered: when the approval is no
 * longer pending because this reviewer already made this decision (the first answer was lost),
 * the current approval is the answer; another reviewer or the other decision still gets 409.
 */
async function asFirstAnswered(
  engine: DecisionEngine,
  id: string,
  reviewer: string,
  to: "approved" | "denied",
  decide: () => Promise<Approval>,
): Promise<Approval> {
  try {
    return await decide();
  } catch (error) {
    if ((error as { code?: unknown })?.code !== "APPROVAL_NOT_PENDING") throw error;
    const current = await engine.getApproval(id);
    if (current?.state === to && current.decidedBy === reviewer) return current;
    throw error;
  }
}

/** The `Idempotency-Key` of a request, if any (one printable token of at most 200 characters). */
function idempotencyKeyHeader(headers: IncomingHttpHeaders): string | undefined {
  const header = headers["idempotency-key"];
  if (header === undefined) return undefined;
  if (typeof header !== "string" || header === "" || header.length > 200 || !/^[\x21-\x7e]+$/.test(header)) {
    throw new GatewayError(
      "INVALID_REQUEST",
      400,
      "Idempotency-Key must be one header of 1 to 200 printable ASCII characters, e.g. a UUID",
      { field: "Idempotency-Key" },
    );
  }
  return header;
}

/**
 * The delegated child a request speaks for: the agent of the valid token in `AA-Delegation`, whose
 * chain must include the key's agent (as for a decision). Undefined without the header.
 */
async function delegatedAgent(
  request: FastifyRequest,
  principal: Principal,
  engine: Pick<DecisionEngine, "verifyDelegation">,
): Promise<string | undefined> {
  const token = delegationHeader(request.headers);
  if (token === undefined) return undefined;
  if (principal.kind !== "agent") {
    throw new GatewayError(
      "FORBIDDEN",
      403,
      "AA-Delegation is presented with the key of the agent that delegated (an agent key); drop the header with an operator key",
    );
  }
  const held = await engine.verifyDelegation(token);
  if (!held.chain.includes(principal.agentId!)) {
    throw new GatewayError(
      "FORBIDDEN",
      403,
      `${principal.agentId} presented a delegation token of ${held.agentId}, whose chain it is not part of; use the key of ${held.chain[0]}`,
      { delegationId: held.id },
    );
  }
  return held.agentId;
}

/** The delegation token a request presents in `AA-Delegation`, if any. */
function delegationHeader(headers: IncomingHttpHeaders): string | undefined {
  const header = headers["aa-delegation"];
  if (header === undefined) return undefined;
  if (typeof header !== "string" || header.trim() === "") {
    throw new GatewayError(
      "INVALID_DELEGATION_HEADER",
      400,
      "AA-Delegation must be one delegation token (the `token` returned when the delegation was created)",
    );
  }
  return header.trim();
}

/** Routes whose body is optional: no body at all is validated as `{}`. */
async function optionalBody(request: FastifyRequest): Promise<void> {
  if (request.body === undefined || request.body === null) request.body = {};
}

function intQuery(request: FastifyRequest, name: string, min: number, max: number): number | undefined {
  const raw = (request.query as Record<string, unknown>)[name];
  if (raw === undefined) return undefined;
  const value = typeof raw === "string" && /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new GatewayError("INVALID_QUERY", 400, `${name} must be an integer from ${min} to ${max}`, {
      field: name,
    });
  }
  return value;
}

function listQuery(raw: string | undefined): string[] | undefined {
  if (raw === undefined) return undefined;
  const items = raw
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  return items.length > 0 ? items : undefined;
}

/** `Last-Event-ID` (sent by EventSource on reconnect) wins over `?after=`. */
function resumePoint(request: FastifyRequest): number | undefined {
  const header = request.headers["last-event-id"];
  if (typeof header === "string" && header !== "") {
    if (!/^\d+$/.test(header)) {
      throw new GatewayError("INVALID_QUERY", 400, "Last-Event-ID must be the seq of an event (an integer)", {
        field: "Last-Event-ID",
      });
    }
    return Number(header);
  }
  return intQuery(request, "after", 0, Number.MAX_SAFE_INTEGER);
}

/** The agent a receipt was issued to (its payload is ours: signed by this engine). */
function receiptAgent(receipt: string): string | undefined {
  const payload = receipt.split(".")[1];
  if (payload === undefined) return undefined;
  try {
    return (JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as { agentId?: string }).agentId;
  } catch {
    return undefined;
  }
}

export type { FastifyReply };

/**
 * The remote gate: decisions, approvals and audit served by a shared gateway over HTTP (wire
 * contract v1). Used when `initAssembly({ gatewayUrl, apiKey })` or `AA_GATEWAY_URL` / `AA_API_KEY`
 * are set; no store code is loaded in this process.
 *
 * - Identity comes from the API key (`GET /v1/whoami` when the gate opens), never from the body.
 * - Every decision carries an idempotency key (`eventId`; generated when the caller gave none), so
 *   the client's retries (network errors, timeouts, 5xx) can never record a decision twice.
 * - Fail-open records (`failureMode: "open"`, the gateway could not decide and the call ran anyway)
 *   are queued in memory and sent with `failOpen: true` as soon as the gateway answers again (each
 *   with its own idempotency key, so a re-send is harmless), and on `close()`. The queue is bounded:
 *   past `FAIL_OPEN_QUEUE_LIMIT` the oldest record is dropped with a warning naming it.
 * - Delegation: `POST/GET/DELETE /v1/delegations`. A child's token goes in `AA-Delegation` on its
 *   decisions, its releases, its own `delegate()`, its list and its revocations, so the gateway
 *   acts as the child (and records it as `revokedBy`, decision 69).
 * - Not offered over the wire: `agentState` (use `whoami()`, which asks the gateway) and token
 *   reservations (`reserve()` rejects `NOT_SUPPORTED`; budgets are enforced by the gateway).
 */
import { randomUUID } from "node:crypto";
import type { ActionResult, Approval, DecisionRequest, Delegation, DelegationFilter } from "@aa/engine";
import { AssemblyError, AssemblyTimeoutError } from "../errors.js";
import {
  type ActionRequestBody,
  GatewayClient,
  type GatewayClientOptions,
  type GatewayIdentity,
  MAX_APPROVAL_WAIT_MS,
} from "../gateway-client.js";
import type { Gate } from "../internal-types.js";

/** At most this many fail-open records wait for the gateway to come back. */
export const FAIL_OPEN_QUEUE_LIMIT = 1000;

/** How often queued fail-open records are re-sent while the gateway is unreachable. */
const FAIL_OPEN_RETRY_MS = 5000;

export interface RemoteGate extends Gate {
  readonly kind: "remote";
  /** Who the API key is, as the gateway said when the gate opened. */
  readonly identity: GatewayIdentity;
  readonly client: GatewayClient;
  /** Ask the gateway again who the key is (circuit state, containment, policy hash now). */
  whoami(): Promise<GatewayIdentity>;
  /** The policy the gateway enforces. */
  policies(): Promise<{ policyHash: string; policy: Record<string, unknown> }>;
  /** Fail-open records not yet accepted by the gateway. */
  readonly pendingFailOpen: number;
}

/** Open a remote gate: checks the key with `GET /v1/whoami` (retried like any request). */
export async function openRemoteGate(options: GatewayClientOptions): Promise<RemoteGate> {
  const client = new GatewayClient(options);
  const identity = await client.whoami();
  let policyHash = identity.policyHash;
  /** A queued record keeps the child's token, so it is recorded as the child's once sent. */
  const failOpenQueue: { body: ActionRequestBody; delegationToken?: string }[] = [];
  let flushing: Promise<void> | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  let closed = false;
  /** Open event streams: ended by close(), so a shut-down process does not keep reconnecting. */
  const subscriptions = new Set<{ unsubscribe(): void }>();

  const remember = (result: ActionResult): ActionResult => {
    if (typeof result.policyHash === "string") policyHash = result.policyHash;
    return result;
  };

  /** Send queued fail-open records oldest first; stop at the first failure and try again later. */
  const flushFailOpen = (): Promise<void> => {
    flushing ??= (async () => {
      try {
        while (failOpenQueue.length > 0) {
          const { body, delegationToken } = failOpenQueue[0]!;
          await client.decide(body, delegationToken === undefined ? {} : { delegationToken });
          failOpenQueue.shift();
        }
      } catch (error) {
        if (!closed && retryTimer === undefined) {
          retryTimer = setTimeout(() => {
            retryTimer = undefined;
            void flushFailOpen();
          }, FAIL_OPEN_RETRY_MS);
          retryTimer.unref();
        }
        if ((error as AssemblyError)?.code !== "GATE_UNAVAILABLE") {
          // The gateway refused the record itself (e.g. 400): keeping it would block the queue.
          const dropped = failOpenQueue.shift()?.body;
          process.emitWarning(
            `Agent Assembly: the gateway refused a fail-open record for "${dropped?.actionType}" (eventId ${dropped?.eventId}): ${(error as Error).message}`,
            { code: "AA_FAIL_OPEN_DROPPED" },
          );
        }
      } finally {
        flushing = undefined;
      }
    })();
    return flushing;
  };

  const queueFailOpen = (body: ActionRequestBody, delegationToken: string | undefined): void => {
    if (failOpenQueue.length >= FAIL_OPEN_QUEUE_LIMIT) {
      const dropped = failOpenQueue.shift()?.body;
      process.emitWarning(
        `Agent Assembly: ${FAIL_OPEN_QUEUE_LIMIT} fail-open records are waiting for the gateway; dropped the oldest ("${dropped?.actionType}", eventId ${dropped?.eventId}), which stays only in this warning`,
        { code: "AA_FAIL_OPEN_DROPPED" },
      );
    }
    failOpenQueue.push(delegationToken === undefined ? { body } : { body, delegationToken });
    // In the background: the call already runs, and the gateway is known to be failing.
    void flushFailOpen();
  };

  const gate: RemoteGate = {
    kind: "remote",
    identity,
    client,
    orgId: identity.orgId,
    get policyHash() {
      return policyHash;
    },
    get pendingFailOpen() {
      return failOpenQueue.length;
    },

    async decide(request: DecisionRequest): Promise<ActionResult> {
      const body = toWireBody(request);
      const { delegationToken } = request;
      if (request.failOpen === true) {
        queueFailOpen(body, delegationToken);
        return {
          status: "executed",
          auditEventId: "",
          message: "fail-open record queued for the gateway",
          conditionsEvaluated: [],
        };
      }
      const result = remember(
        await client.decide(body, delegationToken === undefined ? {} : { delegationToken }),
      );
      // The gateway answers again: send what ran while it could not.
      if (failOpenQueue.length > 0) void flushFailOpen();
      return result;
    },

    async awaitApproval(approvalId, { timeoutMs, signal }): Promise<Approval> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const remaining = deadline - Date.now();
        const approval = await client.waitApproval(
          approvalId,
          Math.max(0, Math.min(remaining, MAX_APPROVAL_WAIT_MS)),
          signal,
        );
        if (approval.state !== "pending") return approval;
        if (Date.now() >= deadline) throw new AssemblyTimeoutError(approvalId);
      }
    },

    releaseApproval: async (approvalId, _agentId, delegationToken) =>
      remember(
        await client.releaseApproval(approvalId, delegationToken === undefined ? {} : { delegationToken }),
      ),

    // The parent is the key's agent, or (with its token) a child of it delegating further.
    delegate: (parent, name, options) =>
      client.delegate(
        {
          name,
          capabilities: options.capabilities,
          ...(options.ttlSeconds === undefined ? {} : { ttlSeconds: options.ttlSeconds }),
        },
        parent.delegationToken === undefined ? {} : { delegationToken: parent.delegationToken },
      ),

    async listDelegations(filter: DelegationFilter = {}, options = {}) {
      const role = filter.role ?? "ancestor";
      const activeOnly = filter.activeOnly === undefined ? {} : { activeOnly: filter.activeOnly };
      if (options.delegationToken !== undefined) {
        return client.listDelegations({ role, ...activeOnly }, { delegationToken: options.delegationToken });
      }
      if (filter.agentId === undefined || filter.agentId === identity.agentId) {
        return client.listDelegations({ role, ...activeOnly });
      }
      // A child of the key's agent: everything related to it is below the key's agent.
      const below = await client.listDelegations({ role: "ancestor", ...activeOnly });
      return below.filter((d) => relatedAs(d, filter.agentId!, role));
    },

    async revokeDelegation(delegationId, _revokedBy, options = {}) {
      if (options.delegationToken !== undefined) {
        return client.revokeDelegation(delegationId, { delegationToken: options.delegationToken });
      }
      const actor = options.agentId;
      if (actor !== undefined && actor !== identity.agentId) {
        // The gateway revokes as the key's agent, an ancestor of everything here: hold the child
        // to its own rule (its delegation and those below it only), as the embedded engine does.
        const target = (await client.listDelegations({ role: "ancestor" })).find(
          (d) => d.id === delegationId,
        );
        if (target !== undefined && !target.chain.includes(actor)) {
          throw new AssemblyError(
            "FORBIDDEN",
            `${actor} may not revoke delegation ${delegationId}: only its agent (${target.agentId}), its ancestors or an operator may`,
            { delegationId, agentId: actor },
          );
        }
      }
      return client.revokeDelegation(delegationId);
    },

    async getApproval(approvalId) {
      try {
        return await client.getApproval(approvalId);
      } catch (error) {
        if ((error as AssemblyError).code === "APPROVAL_NOT_FOUND") return undefined;
        throw error;
      }
    },
    listApprovals: (filter) => client.listApprovals(filter ?? {}),
    // The reviewer is the key's principal: the gateway records it, whatever name is passed here.
    approve: (approvalId, _reviewer, reason) => client.approve(approvalId, reason),
    deny: (approvalId, _reviewer, reason) => client.deny(approvalId, reason),
    report: async (auditEventId, outcome) => {
      await client.reportOutcome(auditEventId, outcome);
    },
    audit: (query) => client.audit(query),
    verify: () => client.verify(),
    posture: () => client.posture(),
    async subscribe(callback, options) {
      const subscription = await client.subscribe(callback, options ?? {});
      subscriptions.add(subscription);
      return {
        get lastSeq() {
          return subscription.lastSeq;
        },
        unsubscribe() {
          subscriptions.delete(subscription);
          subscription.unsubscribe();
        },
      };
    },
    async whoami() {
      const now = await client.whoami();
      policyHash = now.policyHash;
      return now;
    },
    policies: () => client.policies(),

    async close() {
      for (const subscription of subscriptions) subscription.unsubscribe();
      subscriptions.clear();
      if (retryTimer) clearTimeout(retryTimer);
      retryTimer = undefined;
      if (failOpenQueue.length > 0) await flushFailOpen();
      closed = true;
      // Idle keep-alive connections would otherwise stay open until the gateway times them out.
      await client.close();
      if (failOpenQueue.length > 0) {
        process.emitWarning(
          `Agent Assembly: ${failOpenQueue.length} fail-open record(s) could not be sent to the gateway before shutdown (eventIds ${failOpenQueue
            .slice(0, 10)
            .map((queued) => queued.body.eventId)
            .join(", ")}${failOpenQueue.length > 10 ? ", ..." : ""})`,
          { code: "AA_FAIL_OPEN_LOST" },
        );
      }
    },
  };
  return gate;
}

/** Whether `d` is `agentId`'s delegation in `role` (as the engine's `listDelegations` means it). */
function relatedAs(d: Delegation, agentId: string, role: NonNullable<DelegationFilter["role"]>): boolean {
  if (role === "parent") return d.parentAgentId === agentId;
  if (role === "child") return d.agentId === agentId;
  return d.agentId !== agentId && d.chain.includes(agentId);
}

/** The wire body of a decision: the agent is the key's, so it is not sent. */
export function toWireBody(request: DecisionRequest): ActionRequestBody {
  const body: ActionRequestBody = { actionType: request.actionType };
  if (request.toolName !== undefined) body.toolName = request.toolName;
  if (request.framework !== undefined) body.framework = request.framework;
  if (request.args !== undefined) body.args = request.args;
  if (request.metadata !== undefined) body.metadata = request.metadata;
  if (request.dataAccessed !== undefined) body.dataAccessed = request.dataAccessed;
  if (request.toolCallId !== undefined) body.toolCallId = request.toolCallId;
  if (request.mcpServer !== undefined) body.mcpServer = request.mcpServer;
  if (request.traceId !== undefined) body.traceId = request.traceId;
  if (request.enforcementMode !== undefined) body.enforcementMode = request.enforcementMode;
  if (request.dryRun === true) body.dryRun = true;
  else body.eventId = request.eventId ?? randomUUID();
  if (request.failOpen === true) body.failOpen = true;
  if (request.principal !== undefined) body.principal = request.principal;
  return body;
}

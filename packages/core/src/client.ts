/**
 * The governance client: what an agent calls directly (as opposed to tool calls, which adapters
 * route through the interceptor). The same surface works embedded and, later, against a gateway.
 */
import type {
  ActionResult,
  Approval,
  AuditEvent,
  AuditPage,
  AuditQuery,
  BudgetKind,
  BudgetUsage,
  CircuitState,
  DecisionRequest,
  DelegationGrant,
  EngineEvent,
  Outcome,
  Posture,
  SubscribeOptions,
  Subscription,
  VerifyResult,
} from "@aa/engine";
import { hasPermission, type PolicyRule } from "@aa/policy";
import { type DelegationMethods, delegationMethods } from "./delegation.js";
import { EGRESS_ACTION_TYPE, egressArgsOfFetch } from "./egress.js";
import { toAssemblyError } from "./gate/errors.js";
import type { Gate } from "./internal-types.js";
import type { EnforcementMode } from "./options.js";
import { currentPrincipal, effectivePrincipal, type Principal, runAs } from "./principal.js";
import { currentTraceScope, runTrace, type Trace, type TraceOptions } from "./trace.js";
import { awaitRelease, DEFAULT_APPROVAL_WAIT_MS, deniedError } from "./verdicts.js";

/** Options of `execute`, `gate` and `canI`. */
export interface ActionOptions {
  /** Arguments of the action, reachable by policies as `args.*` (redacted before storage). */
  args?: unknown;
  /** Reachable by policies as `metadata.*`. */
  metadata?: Record<string, unknown>;
  /** What data the action touches, reachable as `data_accessed`. */
  dataAccessed?: unknown;
  /** Idempotency key: a retry with the same key returns the first decision. */
  eventId?: string;
  /**
   * The end user this call is made for (policies: `user.*`, `required_scopes`). Inside a `runAs`
   * it must be the same user, and its scopes are intersected with the ones in force.
   */
  onBehalfOf?: Principal;
}

export interface GateOptions extends ActionOptions {
  /** How long `gate()` waits for a held action to be decided. Default 8 h. */
  gatePollTimeoutMs?: number;
  /**
   * How often (ms) `gate()` re-reads the store while it waits, to see a decision made by another
   * process (the `aa` CLI, a reviewer's gateway). Default 250; at least 10.
   */
  gatePollIntervalMs?: number;
}

export interface CanIResult {
  allowed: boolean;
  status: ActionResult["status"];
  denialReason?: ActionResult["denialReason"];
  policyName?: string;
  conditionsEvaluated: ActionResult["conditionsEvaluated"];
}

export interface WhoAmI {
  agentId: string;
  name?: string;
  gate: "embedded" | "remote";
  enforcementMode: EnforcementMode;
  policyHash: string;
  /**
   * This agent's circuit breaker: `closed` (calls evaluated), `open` (every call denied with
   * `CIRCUIT_OPEN`; also while an operator has contained the agent), `half-open` (one probe call
   * is evaluated next).
   */
  cbState: CircuitState;
  /** True while an operator has contained this agent (`aa agents contain`). */
  contained: boolean;
  /** This agent's use of each configured budget (policy file `budgets:`) in its current window. */
  budgets: Partial<Record<BudgetKind, BudgetUsage>>;
  /** For a delegated (child) client: the delegation it acts under. */
  delegation?: {
    id: string;
    parentAgentId: string;
    /** Agent ids from the root agent down to this one. */
    chain: string[];
    capabilities: string[];
    expiresAt: string;
  };
}

/** Tokens and cost held for one LLM call (`reserve`); reconcile it with what the call used. */
export interface BudgetReservation {
  id: string;
  tokens: number;
  cost: number;
  /** When the reservation is released if not reconciled. */
  expiresAt: string;
  /**
   * Replaces the reservation by what the call really used (counted even when more than reserved).
   * @throws AssemblyError `RESERVATION_NOT_FOUND` when already reconciled or expired.
   */
  reconcile(actual: { tokens?: number; cost?: number }): Promise<void>;
}

export interface PolicySummary {
  name: string;
  action: string | string[];
  effect: PolicyRule["effect"];
  conditions: number;
}

/** The governance methods on an AssemblyContext (and on every delegated child client). */
export interface GovernanceClient extends DelegationMethods {
  /**
   * Runs `fn` on behalf of an end user: every governed call inside it (every adapter's tool calls,
   * `execute`/`gate`/`canI`, sub-agents) carries the principal. Set it once per request (the HTTP
   * middleware in `@aa/middleware` does); nested, it may only narrow. See docs/identity.md.
   * @throws AssemblyError `INVALID_PRINCIPAL`, `PRINCIPAL_MISMATCH`.
   */
  runAs<T>(principal: Principal, fn: () => T): T;
  /**
   * Does the user the current code acts for (`runAs` / the middleware's `setPrincipal`) hold
   * `permission`? Wildcards in their scopes count (`flights:*` covers `flights:book`); false when no
   * user is set. A local check of the user's scopes; `canI` asks the gate.
   */
  hasPermission(permission: string): boolean;
  /**
   * Runs `fn(trace)` as a decision trace: every decision made inside it (every adapter's tool
   * calls, `execute`/`gate`, calls inside `child.run()`, across awaits) records the trace's W3C
   * trace id (`trace_id`) and its step (`metadata.aa_trace`). `trace.step(name, fn)` names steps,
   * `trace.llm({ model, estimate }, fn)` runs an LLM call against the agent's token/cost budget and
   * the trace's own `options.budget`, `trace.summary()` tells what happened. Inside another trace it
   * is a child span of it (same trace id). Resolves with what `fn` returns. See docs/traces.md.
   * @throws AssemblyError `INVALID_REQUEST` for a bad name, `traceId`, `traceparent` or budget.
   */
  trace<T>(name: string, fn: (trace: Trace) => T | Promise<T>, options?: TraceOptions): Promise<T>;
  /** Ask the gate whether to perform an action; recorded in the audit trail. Never throws for a denial. */
  execute(actionType: string, options?: ActionOptions): Promise<ActionResult>;
  /** Like `execute`, but waits for approval when held and throws when denied (`AssemblyDeniedError`) or not decided in time (`AssemblyTimeoutError`). */
  gate(actionType: string, options?: GateOptions): Promise<ActionResult>;
  /**
   * A governed `fetch` for egress: the request is put to the gate as action `http.request` with
   * `args` `{ method, scheme, host, port, url, path }` (the same shape `aa proxy` decides on, so
   * one policy covers both) and sent with the global `fetch` only once allowed. Held for approval,
   * it waits like `gate()` (`options.gatePollTimeoutMs`, default 8 h).
   * @throws AssemblyDeniedError when denied (nothing left the process), AssemblyTimeoutError when
   * not approved in time, AssemblyError `INVALID_EGRESS_URL` for a URL that is not http(s).
   * @example
   * const res = await assembly.fetch("https://api.github.com/repos/acme/app");
   */
  fetch(
    input: string | URL | Request,
    init?: RequestInit,
    options?: Omit<GateOptions, "args">,
  ): Promise<Response>;
  /** Dry run: would this action be allowed? Nothing is recorded. */
  canI(actionType: string, options?: Omit<ActionOptions, "eventId">): Promise<CanIResult>;
  whoami(): Promise<WhoAmI>;
  /**
   * Reserves tokens and/or cost against this agent's budgets before an LLM call; reconcile the
   * returned reservation after it.
   * @throws AssemblyError `BUDGET_EXCEEDED` when the reservation does not fit the budget (details
   * name the kind, limit, used, reserved and `resetsAt`).
   */
  reserve(estimate: { tokens?: number; cost?: number }): Promise<BudgetReservation>;
  /** The policies in force. */
  policies(options?: { scope?: string }): Promise<PolicySummary[]>;
  audit(query?: AuditQuery): Promise<AuditPage<AuditEvent>>;
  verify(): Promise<VerifyResult>;
  /**
   * The organisation's governance posture, 0-100: policy coverage, approval hygiene and anomaly
   * rate over the last 10 000 audit records, and chain integrity, 25 each, with a detail per part.
   */
  posture(): Promise<Posture>;
  /**
   * Realtime events projected from the audit chain (docs/events.md): `action.executed`,
   * `action.denied`, `approval.requested`, `approval.resolved`, `policy.changed`,
   * `enforcement.triggered`, in seq order, at least once. Resume after a disconnect with
   * `{ after: subscription.lastSeq }`; stop with `subscription.unsubscribe()`. A callback that
   * throws is reported with `process.emitWarning` and does not stop delivery.
   * @throws AssemblyError `INVALID_REQUEST` for unknown event types or a bad `agentFilter`/`after`.
   */
  subscribe(callback: (event: EngineEvent) => unknown, options?: SubscribeOptions): Promise<Subscription>;
  /**
   * The same, naming the org as the spec's `subscribe(orgId, cb, options)` does. The embedded gate
   * writes exactly one org's chain, so `orgId` must be that org.
   * @throws AssemblyError `ORG_MISMATCH` when `orgId` is another org.
   */
  subscribe(
    orgId: string,
    callback: (event: EngineEvent) => unknown,
    options?: SubscribeOptions,
  ): Promise<Subscription>;
  /** Report what really happened after an executed action. */
  report(auditEventId: string, outcome: Outcome): Promise<void>;
  listApprovals(filter?: { state?: Approval["state"] }): Promise<Approval[]>;
  getApproval(approvalId: string): Promise<Approval | undefined>;
  /** Decide a held action as an operator (never as the requesting agent). */
  approve(approvalId: string, reviewer: string, reason?: string): Promise<Approval>;
  deny(approvalId: string, reviewer: string, reason?: string): Promise<Approval>;
}

export function createGovernanceClient(settings: {
  gate: Gate;
  agent: { id: string; name?: string };
  enforcementMode: EnforcementMode;
  policyRules: () => PolicyRule[] | Promise<PolicyRule[]>;
  /** Set for a child client: the delegation it acts under (its token goes with every request). */
  delegation?: DelegationGrant;
}): GovernanceClient {
  const { gate, agent, enforcementMode } = settings;
  const token = settings.delegation?.token;
  const request = (actionType: string, options: ActionOptions = {}, dryRun = false): DecisionRequest => {
    if (typeof actionType !== "string" || actionType === "") {
      throw toAssemblyError({
        code: "INVALID_ACTION_TYPE",
        message: 'actionType must be a non-empty string, e.g. "pr.open"',
      });
    }
    const traced = currentTraceScope();
    return {
      agent,
      actionType,
      args: options.args,
      metadata: traced === undefined ? options.metadata : traced.trace.metadataFor(traced, options.metadata),
      dataAccessed: options.dataAccessed,
      eventId: options.eventId,
      enforcementMode,
      dryRun,
      ...(token === undefined ? {} : { delegationToken: token }),
      ...(traced === undefined ? {} : { traceId: traced.trace.id }),
      principal: effectivePrincipal(options.onBehalfOf),
    };
  };
  const delegation = settings.delegation?.delegation;
  const delegationInfo: WhoAmI["delegation"] = delegation && {
    id: delegation.id,
    parentAgentId: delegation.parentAgentId,
    chain: [...delegation.chain],
    capabilities: [...delegation.capabilities],
    expiresAt: delegation.expiresAt,
  };
  const decide = async (req: DecisionRequest): Promise<ActionResult> => {
    // Dry runs (canI) are not decisions: nothing recorded, nothing noted in the trace.
    const traced = req.dryRun === true ? undefined : currentTraceScope();
    let result: ActionResult;
    try {
      result = await gate.decide(req);
    } catch (error) {
      traced?.trace.noteDecision(traced, req, undefined);
      throw toAssemblyError(error);
    }
    traced?.trace.noteDecision(traced, req, result);
    return result;
  };

  const gateAction = async (actionType: string, options: GateOptions = {}): Promise<ActionResult> => {
    const result = await decide(request(actionType, options));
    if (result.status === "executed") return result;
    if (result.status === "denied") throw deniedError(result, { toolName: actionType });
    const approvalId = result.approvalId;
    if (!approvalId)
      throw deniedError({ ...result, denialReason: "GATE_UNAVAILABLE" }, { toolName: actionType });
    return awaitRelease(
      gate,
      { ...result, approvalId },
      token === undefined ? { agentId: agent.id } : { agentId: agent.id, delegationToken: token },
      actionType,
      options.gatePollTimeoutMs ?? DEFAULT_APPROVAL_WAIT_MS,
      options.gatePollIntervalMs,
    );
  };

  const client: GovernanceClient = {
    runAs,
    trace: (name, fn, options) => runTrace(client, name, fn, options),
    hasPermission: (permission) => hasPermission(currentPrincipal()?.scopes, permission),
    execute: async (actionType, options) => decide(request(actionType, options)),

    gate: gateAction,

    async fetch(input, init, options = {}) {
      const args = egressArgsOfFetch(input, init);
      await gateAction(EGRESS_ACTION_TYPE, { ...options, args });
      return globalThis.fetch(input, init);
    },

    async canI(actionType, options) {
      const result = await decide(request(actionType, options, true));
      return {
        allowed: result.status === "executed",
        status: result.status,
        denialReason: result.denialReason,
        policyName: result.policyName,
        conditionsEvaluated: result.conditionsEvaluated,
      };
    },

    async whoami() {
      if (gate.agentState === undefined && gate.whoami !== undefined) {
        // A gateway: its circuit breaker and kill switch are the ones that apply; budgets live
        // there too and are not reported over the wire (docs/gateway.md).
        let remote: Awaited<ReturnType<NonNullable<Gate["whoami"]>>>;
        try {
          remote = await gate.whoami();
        } catch (error) {
          throw toAssemblyError(error);
        }
        return {
          agentId: agent.id,
          ...(agent.name === undefined ? {} : { name: agent.name }),
          gate: gate.kind,
          enforcementMode,
          policyHash: remote.policyHash,
          cbState: remote.contained ? "open" : (remote.cbState ?? "closed"),
          contained: remote.contained ?? false,
          budgets: {},
          ...(delegationInfo ? { delegation: delegationInfo } : {}),
        };
      }
      const state = gate.agentState?.(agent.id);
      return {
        agentId: agent.id,
        ...(agent.name === undefined ? {} : { name: agent.name }),
        gate: gate.kind,
        enforcementMode,
        policyHash: gate.policyHash,
        cbState: state?.contained ? "open" : (state?.cbState ?? "closed"),
        contained: state?.contained ?? false,
        budgets: state?.budgets ?? {},
        ...(delegationInfo ? { delegation: delegationInfo } : {}),
      };
    },

    async reserve(estimate) {
      const { reserveTokens, reconcileTokens } = gate;
      if (reserveTokens === undefined || reconcileTokens === undefined) {
        throw toAssemblyError({
          code: "NOT_SUPPORTED",
          message:
            "token reservations are made in the embedded gate only; with a gateway, budgets are enforced by the gateway on each decision",
        });
      }
      let held: ReturnType<typeof reserveTokens>;
      try {
        held = reserveTokens.call(gate, agent.id, estimate);
      } catch (error) {
        throw toAssemblyError(error);
      }
      return {
        id: held.id,
        tokens: held.tokens,
        cost: held.cost,
        expiresAt: held.expiresAt,
        async reconcile(actual) {
          try {
            reconcileTokens.call(gate, held.id, actual);
          } catch (error) {
            throw toAssemblyError(error);
          }
        },
      };
    },

    async policies() {
      return (await settings.policyRules()).map((rule) => ({
        name: rule.name,
        action: rule.action,
        effect: rule.effect,
        conditions: rule.when?.length ?? 0,
      }));
    },

    audit: (query) => gate.audit(query),
    verify: () => gate.verify(),
    async posture() {
      if (gate.posture === undefined) {
        throw toAssemblyError({ code: "NOT_SUPPORTED", message: "this gate does not offer posture()" });
      }
      return gate.posture();
    },
    subscribe: (...args: SubscribeArguments) => subscribeThrough(gate, args),
    report: (auditEventId, outcome) => gate.report(auditEventId, outcome, agent.id),
    listApprovals: (filter) => gate.listApprovals(filter),
    getApproval: (id) => gate.getApproval(id),
    approve: (id, reviewer, reason) => gate.approve(id, reviewer, reason),
    deny: (id, reviewer, reason) => gate.deny(id, reviewer, reason),
    ...delegationMethods({
      gate,
      agentId: agent.id,
      token,
      clientFor: (grant) =>
        createGovernanceClient({
          ...settings,
          agent: { id: grant.delegation.agentId },
          delegation: grant,
        }),
    }),
  };
  return client;
}

type SubscribeArguments =
  | [callback: (event: EngineEvent) => unknown, options?: SubscribeOptions]
  | [orgId: string, callback: (event: EngineEvent) => unknown, options?: SubscribeOptions];

async function subscribeThrough(gate: Gate, args: SubscribeArguments): Promise<Subscription> {
  if (gate.subscribe === undefined) {
    throw toAssemblyError({ code: "NOT_SUPPORTED", message: "this gate does not offer subscribe()" });
  }
  if (typeof args[0] === "string") {
    const [orgId, callback, options] = args as [string, (event: EngineEvent) => unknown, SubscribeOptions?];
    if (orgId !== gate.orgId) {
      throw toAssemblyError({
        code: "ORG_MISMATCH",
        message: `this gate writes org ${JSON.stringify(gate.orgId)}, not ${JSON.stringify(orgId)}; pass that org or omit orgId`,
        details: { orgId, gateOrgId: gate.orgId },
      });
    }
    return gate.subscribe(callback, options);
  }
  const [callback, options] = args as [(event: EngineEvent) => unknown, SubscribeOptions?];
  return gate.subscribe(callback, options);
}

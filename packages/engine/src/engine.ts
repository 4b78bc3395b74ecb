/**
 * The decision service: evaluate a call against the compiled policy, redact it, hold it for
 * approval when the policy says so, and append it to the org's hash chain before answering.
 */
import { createHmac, randomBytes } from "node:crypto";
import type { CompiledPolicy, ConditionResult, PolicyDecision, PolicyDocument } from "@aa/policy";
import { compilePolicy } from "@aa/policy";
import { canonicalJson, quoteJson } from "./chain/canonical-json.js";
import { encodeRecord, type RecordFields, type RecordKind, sha256Hex } from "./chain/record.js";
import { ArgsHasher, SnapshotCanonicalizer } from "./chain/snapshot-json.js";
import { ChainWriter } from "./chain/writer.js";
import { checkpointPayload } from "./checkpoint.js";
import { Budgets, budgetsFromPolicy } from "./controls/budgets.js";
import { type CircuitAdmission, CircuitBreaker } from "./controls/circuit-breaker.js";
import { ContainmentView } from "./controls/containment.js";
import { computePosture, POSTURE_WINDOW, type PostureRecord } from "./controls/posture.js";
import { RateLimits, rateLimitsFromPolicy } from "./controls/rate-limits.js";
import { type SharedCount, SharedCounters, type SharedVerdict } from "./controls/shared-counters.js";
import { Keyring } from "./crypto/keyring.js";
import { HmacKeySet } from "./crypto/secret.js";
import { describeRequestProblem } from "./decision-request.js";
import {
  decisionStatus,
  describeDecision,
  redactConditions,
  result,
  snapshotConditions,
} from "./decision-results.js";
import {
  checkCapabilities,
  type DelegationDenial,
  invalidToken,
  type Resolution,
} from "./delegation/registry.js";
import { DelegationService, denialError } from "./delegation/service.js";
import { approvalNotFound, closedError, EngineError, invalid, reusedKey, storeFailure } from "./errors.js";
import { DEFAULT_EVENTS_POLL_MS, EventHub } from "./events.js";
import { exportAuditTo } from "./export.js";
import { evaluationUser, type RecordUser, recordUser } from "./identity.js";
import { nowWithIso, uuidv7 } from "./ids.js";
import { hashOutcomeMessage, signReceipt } from "./receipts/receipt.js";
import { type CallRedactor, type RedactedCall, redactText } from "./redact.js";
import { buildRedactor } from "./redactor.js";
import { openStore } from "./store/open.js";
import type {
  AgentControlRow,
  ApprovalRow,
  AuditStore,
  Checkpoint,
  OutcomeRow,
  StoreChange,
  StoredEvent,
  StoredKeys,
  StoreEffect,
} from "./store/types.js";
import type {
  ActionResult,
  ActionStatus,
  AgentControl,
  AgentState,
  Approval,
  ApprovalState,
  AuditEvent,
  AuditPage,
  AuditQuery,
  ChainPassOptions,
  DecisionRequest,
  DelegateOptions,
  Delegation,
  DelegationFilter,
  DelegationGrant,
  DelegationParent,
  DenialReasonCode,
  EnforcementMode,
  Engine,
  EngineEvent,
  EngineOptions,
  ExportTarget,
  Outcome,
  PolicyIntegrity,
  PolicyTamperFinding,
  Posture,
  RecordedPolicies,
  SubscribeOptions,
  Subscription,
  TokenReservation,
  VerifyResult,
} from "./types.js";
import { verifyStoreChain } from "./verify-store.js";
import { decodeCursor, encodeCursor, toApproval, toAuditEvent } from "./views.js";

const DEFAULT_APPROVAL_TIMEOUT_MS = 8 * 60 * 60 * 1000;
const DEFAULT_CHECKPOINT_INTERVAL = 1000;
const APPROVAL_POLL_MS = 250;
const DEFAULT_CONTROLS_REFRESH_MS = 500;
/** How often at most an engine on PostgreSQL deletes shared counters whose window has ended. */
const DEFAULT_COUNTER_SWEEP_MS = 60_000;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const OUTCOME_STATUSES = new Set(["success", "failure", "partial"]);
const EMPTY: never[] = [];

interface ApprovalSnapshot {
  tool: string | null;
  framework: string | null;
  args: unknown;
  argsHash: string;
  metadata: Record<string, unknown> | null;
  dataAccessed: unknown;
  delegation: string[];
  policyName: string | null;
  policyHash: string;
  conditions: unknown[];
  traceId: string | null;
  toolCallId: string | null;
  redactionRules: string[];
  /** The end user the held call was made for (absent in snapshots written before principals). */
  user?: RecordUser | null;
  /** The delegation the call was made under (its state is checked again on release). */
  delegationId?: string;
}

/** What the delegation check decided for one call (absent for calls without a delegation token). */
/** The shared counters' verdict on a call, with the policy and decision it was predicted with. */
interface SharedStep {
  verdict: SharedVerdict;
  policy: CompiledPolicy;
  predicted: PolicyDecision | undefined;
}

/** A denial decided before the policy is evaluated (a tampered policy, or the delegation check). */
interface GateDenial {
  reason: DenialReasonCode;
  message: string;
  conditions: ConditionResult[];
}

interface DelegationVerdict {
  denial: DelegationDenial | undefined;
  delegationId: string | undefined;
}

function isCompiled(policy: CompiledPolicy | PolicyDocument): policy is CompiledPolicy {
  return typeof (policy as CompiledPolicy).evaluate === "function";
}

/** Opens an engine over a store; creates the store (and its keys) on first use. */
export async function openEngine(options: EngineOptions): Promise<DecisionEngine> {
  if (options === null || typeof options !== "object") {
    throw new EngineError(
      "INVALID_OPTIONS",
      400,
      "openEngine(options) needs an options object with a `policy`",
    );
  }
  const policy = compileOption(options.policy);
  const orgId = options.orgId ?? "default";
  if (typeof orgId !== "string" || orgId === "" || orgId.length > 200) {
    throw new EngineError(
      "INVALID_OPTIONS",
      400,
      "`orgId` must be a non-empty string of at most 200 characters",
      {
        option: "orgId",
      },
    );
  }
  const interval = options.checkpointInterval ?? DEFAULT_CHECKPOINT_INTERVAL;
  if (!Number.isSafeInteger(interval) || interval < 1) {
    throw new EngineError("INVALID_OPTIONS", 400, "`checkpointInterval` must be a positive integer", {
      option: "checkpointInterval",
    });
  }
  if (options.appendWorker !== undefined && typeof options.appendWorker !== "boolean") {
    throw new EngineError("INVALID_OPTIONS", 400, "`appendWorker` must be a boolean", {
      option: "appendWorker",
    });
  }
  if (options.groupCommit !== undefined && options.groupCommit !== "tick" && options.groupCommit !== "io") {
    throw new EngineError("INVALID_OPTIONS", 400, '`groupCommit` must be "tick" or "io"', {
      option: "groupCommit",
    });
  }
  const store = await openStore(options.store ?? ".aa/assembly.db", {
    appendWorker: options.appendWorker === true,
  });
  try {
    const keys = await store.loadOrCreateKeys(orgId, () => ({
      keyring: Keyring.generate().toJSON(),
      hmac: HmacKeySet.generate().toJSON(),
    }));
    const keyring = Keyring.fromJSON(keys.keyring);
    const hmac = HmacKeySet.fromJSON(keys.hmac);
    const refreshMs = options.controlsRefreshMs ?? DEFAULT_CONTROLS_REFRESH_MS;
    if (!Number.isSafeInteger(refreshMs) || refreshMs < 10) {
      throw new EngineError("INVALID_OPTIONS", 400, "`controlsRefreshMs` must be an integer of at least 10", {
        option: "controlsRefreshMs",
      });
    }
    const eventsPollMs = options.eventsPollMs ?? DEFAULT_EVENTS_POLL_MS;
    if (!Number.isSafeInteger(eventsPollMs) || eventsPollMs < 10) {
      throw new EngineError("INVALID_OPTIONS", 400, "`eventsPollMs` must be an integer of at least 10", {
        option: "eventsPollMs",
      });
    }
    const sweepMs = options.counterSweepMs ?? DEFAULT_COUNTER_SWEEP_MS;
    if (!Number.isSafeInteger(sweepMs) || sweepMs < 10) {
      throw new EngineError("INVALID_OPTIONS", 400, "`counterSweepMs` must be an integer of at least 10", {
        option: "counterSweepMs",
      });
    }
    const policyChangeAtOpen = options.policyChangeAtOpen ?? "record";
    if (policyChangeAtOpen !== "record" && policyChangeAtOpen !== "none") {
      throw new EngineError("INVALID_OPTIONS", 400, '`policyChangeAtOpen` must be "record" or "none"', {
        option: "policyChangeAtOpen",
      });
    }
    const engine = new DecisionEngine(store, orgId, policy, keyring, hmac, interval, options);
    await engine.init(refreshMs);
    if (policyChangeAtOpen === "record") await engine.recordPolicyAtOpen();
    return engine;
  } catch (error) {
    await safelyClose(store);
    throw error;
  }
}

function containedMessage(agentId: string, row: AgentControlRow): string {
  const who =
    row.agentId === agentId ? `Agent ${agentId}` : `Agent ${agentId} acts for ${row.agentId}, which`;
  return `${who} is contained by operator ${row.changedBy}${row.reason ? ` (${row.reason})` : ""} since ${row.changedAt}: every tool call is denied until an operator runs \`aa agents release ${row.agentId}\``;
}

async function safelyClose(store: AuditStore): Promise<void> {
  try {
    await store.close();
  } catch {
    // The open already failed; its error is the one worth reporting.
  }
}

function compileOption(policy: EngineOptions["policy"]): CompiledPolicy {
  if (policy === null || typeof policy !== "object") {
    throw new EngineError(
      "INVALID_OPTIONS",
      400,
      "`policy` must be a compiled policy (compilePolicy) or a validated policy document (parsePolicy / validatePolicy)",
      { option: "policy" },
    );
  }
  // A compiled policy from compilePolicy is frozen over a frozen copy of its document, so nobody
  // holding a reference can change what this engine enforces; any other object is compiled again.
  if (isCompiled(policy) && Object.isFrozen(policy)) return policy;
  try {
    const compiled = compilePolicy(isCompiled(policy) ? policy.document : policy);
    if (isCompiled(policy) && compiled.hash !== policy.hash) {
      throw new Error(`its hash ${policy.hash} is not its document's (${compiled.hash})`);
    }
    return compiled;
  } catch (cause) {
    throw new EngineError(
      "INVALID_OPTIONS",
      400,
      `\`policy\` could not be compiled: ${(cause as Error).message}`,
      {
        option: "policy",
      },
      { cause },
    );
  }
}

export class DecisionEngine implements Engine {
  readonly #store: AuditStore;
  readonly #org: string;
  #policy: CompiledPolicy;
  #redactor: CallRedactor;
  /** Deferred records' canonical args / metadata / data access, remembered from the last record. */
  readonly #argsCanonical = new SnapshotCanonicalizer();
  readonly #metadataCanonical = new SnapshotCanonicalizer();
  readonly #dataAccessedCanonical = new SnapshotCanonicalizer();
  readonly #argsHasher = new ArgsHasher();
  #keyring: Keyring;
  readonly #hmac: HmacKeySet;
  readonly #writer: ChainWriter;
  readonly #interval: number;
  readonly #defaultMode: EnforcementMode;
  #checkpointedSize = 0;
  readonly #pendingCheckpoints = new Set<Promise<void>>();
  #closed = false;
  readonly #inflight = new Map<string, { fingerprint: string; result: Promise<ActionResult> }>();
  readonly #approvalWaiters = new Map<string, Set<() => void>>();
  /**
   * Bumped by every approval change this engine hears of (its own or another replica's), so a
   * waiter that read a pending row just before a change arrived re-reads instead of sleeping.
   */
  #approvalChanges = 0;
  /** How far `recordedPolicies` has read the chain's policy changes, and what it found. */
  readonly #policyScan: {
    seq: number;
    newest: { hash: string; seq: number; openedWith: boolean } | undefined;
    hashes: Set<string>;
  } = { seq: 0, newest: undefined, hashes: new Set() };
  /**
   * Set while the policy cannot be trusted (POLICY_TAMPERED): every decision is denied. Undefined
   * otherwise, so the decision path pays one property read for it.
   */
  #tampered: { integrity: Extract<PolicyIntegrity, { state: "tampered" }>; denial: GateDenial } | undefined;
  /** Stops the store's push notifications (PostgreSQL LISTEN), when it has them. */
  #unwatch: (() => void) | undefined;
  readonly #breaker: CircuitBreaker;
  readonly #containment: ContainmentView;
  readonly #delegations: DelegationService;
  readonly #events: EventHub;
  readonly #budgets: Budgets;
  /** Budgets come from the policy file's `budgets:` section unless `openEngine({ budgets })` sets them. */
  readonly #budgetsFromPolicy: boolean;
  readonly #rateLimits: RateLimits;
  /** Rate limits come from the policy file's `rate_limits:` section unless `openEngine({ rateLimits })` sets them. */
  readonly #rateLimitsFromPolicy: boolean;
  /** Rate limits and the calls budget in the store, shared by replicas (PostgreSQL); else undefined. */
  readonly #shared: SharedCounters | undefined;

  constructor(
    store: AuditStore,
    org: string,
    policy: CompiledPolicy,
    keyring: Keyring,
    hmac: HmacKeySet,
    interval: number,
    options: EngineOptions,
  ) {
    this.#store = store;
    this.#org = org;
    this.#policy = policy;
    this.#keyring = keyring;
    this.#hmac = hmac;
    this.#interval = interval;
    this.#defaultMode = options.enforcementMode ?? "enforce";
    this.#redactor = buildRedactor(policy.document, hmac);
    this.#writer = new ChainWriter(
      store,
      org,
      (seq, hash) => {
        this.#maybeCheckpoint(seq, hash);
        if (this.#events.listening) this.#events.wake();
      },
      options.groupCommit ?? "tick",
    );
    this.#events = new EventHub(store, org, options.eventsPollMs ?? DEFAULT_EVENTS_POLL_MS);
    this.#breaker = new CircuitBreaker(options.circuitBreaker);
    this.#budgetsFromPolicy = options.budgets === undefined;
    this.#budgets = new Budgets(options.budgets ?? budgetsFromPolicy(policy.document.budgets));
    this.#containment = new ContainmentView(store, org);
    this.#delegations = new DelegationService({
      store,
      org,
      keyring: () => this.#keyring,
      append: (item) => this.#writer.append(item),
      systemFields: (kind, agent, actionType, extra) => this.#systemFields(kind, agent, actionType, extra),
    });
    this.#rateLimitsFromPolicy = options.rateLimits === undefined;
    this.#rateLimits = new RateLimits(
      options.rateLimits ?? rateLimitsFromPolicy(policy.document.rate_limits),
      org,
    );
    this.#shared = SharedCounters.for(store, org, options.counterSweepMs ?? DEFAULT_COUNTER_SWEEP_MS);
  }

  /** @internal */
  async init(controlsRefreshMs = DEFAULT_CONTROLS_REFRESH_MS): Promise<void> {
    // Replicas on one PostgreSQL database push each other hints after every commit; polling
    // (approvals, events, controls) stays as the fallback for hints that never arrive.
    const watch = this.#store.watch?.((change) => this.#onStoreChange(change));
    this.#unwatch = watch?.stop;
    // Listening before the first read: nothing another replica commits from here on goes unheard.
    await watch?.ready;
    await this.#containment.start(controlsRefreshMs);
    await this.#delegations.start(controlsRefreshMs);
    const checkpoints = await this.#store.listCheckpoints(this.#org);
    this.#checkpointedSize = checkpoints.at(-1)?.size ?? 0;
  }

  get policyHash(): string {
    return this.#policy.hash;
  }

  /** See {@link Engine.policyIntegrity}. */
  get policyIntegrity(): PolicyIntegrity {
    return this.#tampered
      ? { ...this.#tampered.integrity }
      : { state: "intact", policyHash: this.#policy.hash };
  }

  get orgId(): string {
    return this.#org;
  }

  /** Where records are kept: `memory`, `sqlite` or `postgres`. */
  get storeKind(): AuditStore["kind"] {
    return this.#store.kind;
  }

  // ---------------------------------------------------------------- decisions

  decide(request: DecisionRequest): Promise<ActionResult> {
    if (this.#closed) return Promise.reject(closedError());
    const problem = describeRequestProblem(request);
    if (problem) return Promise.reject(invalid(problem));
    if (request.delegationToken !== undefined) return this.#decideDelegated(request);
    if (request.eventId !== undefined && !request.dryRun) return this.#decideIdempotent(request, undefined);
    return this.#decideNow(request, undefined, undefined);
  }

  /** A call under a delegation token: resolved from memory once the token was seen (no I/O). */
  #decideDelegated(request: DecisionRequest): Promise<ActionResult> {
    const token = request.delegationToken!;
    const now = Date.now();
    const registry = this.#delegations.registry;
    const cached = registry.resolveCached(token, now);
    if (cached) return this.#decideResolved(request, cached);
    return registry.resolve(token, now).then((resolution) => this.#decideResolved(request, resolution));
  }

  /**
   * Attributes the call to the delegation's child agent with the registry's chain, and denies it
   * when the token or the delegation is not valid, or the action is outside the capabilities.
   */
  #decideResolved(request: DecisionRequest, resolution: Resolution): Promise<ActionResult> {
    const presenter = request.agent.id;
    let denial: DelegationDenial | undefined;
    let agentId = presenter;
    let chain = [presenter];
    let delegationId: string | undefined;
    if (resolution.ok) {
      const context = resolution.context;
      agentId = context.agentId;
      chain = context.chain;
      delegationId = context.delegationId;
      denial = checkCapabilities(context, request.actionType);
    } else {
      denial = resolution.denial;
      if (denial.agentId !== undefined) agentId = denial.agentId;
      if (denial.chain !== undefined) chain = denial.chain;
    }
    if (!chain.includes(presenter)) {
      // A token presented by an agent outside its chain: attributed to the presenter.
      denial = invalidToken(`${presenter} presented a token of ${agentId}, whose chain it is not part of`);
      agentId = presenter;
      chain = [presenter];
      delegationId = undefined;
    }
    const effective: DecisionRequest = {
      ...request,
      agent: agentId === presenter ? request.agent : { id: agentId },
      delegationChain: chain,
      delegationToken: undefined,
    };
    const verdict: DelegationVerdict = { denial, delegationId };
    if (effective.eventId !== undefined && !effective.dryRun)
      return this.#decideIdempotent(effective, verdict);
    return this.#decideNow(effective, undefined, verdict);
  }

  async #decideIdempotent(
    request: DecisionRequest,
    delegated: DelegationVerdict | undefined,
  ): Promise<ActionResult> {
    const key = request.eventId!;
    const fingerprint = this.#fingerprint(request);
    const inflight = this.#inflight.get(key);
    if (inflight) {
      if (inflight.fingerprint !== fingerprint) throw reusedKey(key);
      return inflight.result;
    }
    const existing = await this.#lookupIdempotent(key, fingerprint);
    if (existing) return existing;
    const result = this.#decideNow(request, { key, fingerprint }, delegated).catch(async (error: unknown) => {
      // Another process may have committed the same key first (the store refused ours).
      if (error instanceof EngineError && error.code === "IDEMPOTENCY_KEY_REUSED") {
        const stored = await this.#lookupIdempotent(key, fingerprint);
        if (stored) return stored;
      }
      throw error;
    });
    this.#inflight.set(key, { fingerprint, result });
    try {
      return await result;
    } finally {
      this.#inflight.delete(key);
    }
  }

  async #lookupIdempotent(key: string, fingerprint: string): Promise<ActionResult | undefined> {
    const row = await this.#store.getIdempotency(this.#org, key);
    if (!row) return undefined;
    if (row.fingerprint !== fingerprint) throw reusedKey(key);
    return JSON.parse(row.result) as ActionResult;
  }

  /** Keyed so that the stored fingerprint reveals nothing about (possibly secret) raw arguments. */
  #fingerprint(request: DecisionRequest): string {
    const canonical = canonicalJson({
      agent: request.agent.id,
      actionType: request.actionType,
      toolName: request.toolName ?? null,
      framework: request.framework ?? null,
      args: request.args ?? null,
      metadata: request.metadata ?? null,
      dataAccessed: request.dataAccessed ?? null,
      toolCallId: request.toolCallId ?? null,
      delegationChain: request.delegationChain ?? null,
      enforcementMode: request.enforcementMode ?? null,
      // Only when present, so keys stored before principals existed keep their fingerprint.
      ...(request.principal === undefined ? {} : { principal: request.principal }),
    });
    const key = this.#hmac.activeKey();
    return `v${key.version}:${createHmac("sha256", key.secret).update(canonical).digest("hex")}`;
  }

  /** The policy's verdict on a call (pure: no state changes). */
  #evaluate(policy: CompiledPolicy, request: DecisionRequest): PolicyDecision {
    return policy.evaluate({
      actionType: request.actionType,
      args: request.args,
      metadata: request.metadata,
      agent: {
        id: request.agent.id,
        depth: request.delegationChain ? request.delegationChain.length - 1 : 0,
        parent:
          request.delegationChain && request.delegationChain.length > 1
            ? request.delegationChain.at(-2)!
            : null,
      },
      tool:
        request.mcpServer === undefined
          ? { name: request.toolName, framework: request.framework }
          : { name: request.toolName, framework: request.framework, mcpServer: request.mcpServer },
      dataAccessed: request.dataAccessed,
      user: request.principal === undefined ? undefined : evaluationUser(request.principal),
    });
  }

  /**
   * Replicas on PostgreSQL share the calls budget and rate limits: before the decision, one atomic
   * store step checks the call's counters and counts it where it will count (the policy, which is
   * pure, is evaluated first to know). Undefined when the counters are this process's own.
   */
  #countShared(
    request: DecisionRequest,
    delegated: DelegationVerdict | undefined,
  ): Promise<SharedStep> | undefined {
    const mode = request.enforcementMode ?? this.#defaultMode;
    if (this.#shared === undefined || mode !== "enforce") return undefined;
    if (this.#budgets.inactive && this.#rateLimits.inactive) return undefined;
    const agentId = request.agent.id;
    if (
      this.#tampered !== undefined ||
      delegated?.denial !== undefined ||
      this.#containment.blocking(agentId, request.delegationChain)
    ) {
      return undefined;
    }
    const policy = this.#policy;
    const breakerDenies = this.#breaker.admit(agentId, Date.now(), false) === "deny";
    const predicted = breakerDenies ? undefined : this.#evaluate(policy, request);
    const will = breakerDenies ? "denied" : decisionStatus(predicted).status;
    const counts = request.dryRun !== true;
    return this.#shared
      .check(
        agentId,
        request.principal,
        this.#budgets,
        this.#rateLimits,
        counts && will === "executed",
        counts && will !== "denied",
      )
      .then((verdict) => ({ verdict, policy, predicted }));
  }

  /**
   * Not `async`: the committed path hands back the writer's promise, which resolves with the
   * answer itself (one promise and one hop fewer per call than awaiting the outcome here).
   */
  #decideNow(
    request: DecisionRequest,
    idempotency: { key: string; fingerprint: string } | undefined,
    delegated: DelegationVerdict | undefined,
  ): Promise<ActionResult> {
    try {
      const pending = this.#countShared(request, delegated);
      if (pending !== undefined) {
        return pending.then((step) => this.#decideOrCommit(request, idempotency, delegated, step));
      }
      return this.#decideOrCommit(request, idempotency, delegated, undefined);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #decideOrCommit(
    request: DecisionRequest,
    idempotency: { key: string; fingerprint: string } | undefined,
    delegated: DelegationVerdict | undefined,
    step: SharedStep | undefined,
  ): Promise<ActionResult> {
    const mode = request.enforcementMode ?? this.#defaultMode;
    const policy = step?.policy ?? this.#policy;
    const agentId = request.agent.id;
    // A tampered policy, the delegation check, operator containment, the calls budget and the
    // circuit breaker come before the policy: in-memory checks only.
    const delegationDenial: GateDenial | undefined =
      mode === "disabled" ? undefined : (this.#tampered?.denial ?? delegated?.denial);
    const contained =
      mode === "disabled" || delegationDenial !== undefined
        ? undefined
        : this.#containment.blocking(agentId, request.delegationChain);
    const budgeted = mode === "enforce" && !this.#budgets.inactive;
    const rateLimited = mode === "enforce" && !this.#rateLimits.inactive;
    const shared = step?.verdict;
    const budgetClock = budgeted && shared === undefined ? Date.now() : 0;
    const overBudget =
      shared !== undefined
        ? shared.overBudget
        : budgeted && contained === undefined && delegationDenial === undefined
          ? this.#budgets.callsExceeded(agentId, budgetClock)
          : undefined;
    const rateClock = rateLimited && shared === undefined ? (budgeted ? budgetClock : Date.now()) : 0;
    const overRate =
      shared !== undefined
        ? shared.overRate
        : rateLimited && contained === undefined && overBudget === undefined && delegationDenial === undefined
          ? this.#rateLimits.exceeded(agentId, request.principal, rateClock)
          : undefined;
    const admission: CircuitAdmission =
      mode === "enforce" &&
      contained === undefined &&
      overBudget === undefined &&
      overRate === undefined &&
      delegationDenial === undefined
        ? this.#breaker.admit(agentId, Date.now(), request.dryRun !== true)
        : "evaluate";
    const blockedMessage = delegationDenial
      ? delegationDenial.message
      : contained
        ? containedMessage(agentId, contained)
        : overBudget !== undefined
          ? overBudget
          : overRate !== undefined
            ? overRate
            : admission === "deny"
              ? `The circuit breaker for agent ${agentId} is open after repeated denials or failures; calls are denied until it half-opens (${this.#breaker.state(agentId, Date.now()).openUntil ?? "shortly"})`
              : undefined;
    const decision: PolicyDecision | undefined =
      mode === "disabled" || blockedMessage !== undefined
        ? undefined
        : (step?.predicted ?? this.#evaluate(policy, request));
    const redacted = this.#redactor({
      args: request.args,
      metadata: request.metadata,
      dataAccessed: request.dataAccessed,
    });
    const conditions = delegationDenial
      ? delegationDenial.conditions.map((condition) => ({ ...condition }))
      : decision
        ? redacted.fired.length > 0
          ? redactConditions(decision.conditionsEvaluated, redacted)
          : decision.conditionsEvaluated
        : (EMPTY as ConditionResult[]);
    const enforced: { status: ActionStatus; denialReason?: DenialReasonCode } =
      blockedMessage === undefined
        ? decisionStatus(decision)
        : {
            status: "denied",
            denialReason: delegationDenial
              ? delegationDenial.reason
              : overBudget !== undefined
                ? "BUDGET_EXCEEDED"
                : overRate !== undefined
                  ? "RATE_LIMITED"
                  : "CIRCUIT_OPEN",
          };
    const status: ActionStatus = mode === "enforce" || blockedMessage ? enforced.status : "executed";
    if (shared !== undefined) {
      // Counted in the store already, as predicted; give back what the outcome does not count.
      const back: SharedCount[] = status === "denied" ? [...shared.rate] : [];
      if (shared.calls !== undefined && status !== "executed") back.push(shared.calls);
      this.#shared!.give(back);
    } else {
      if (budgeted && status === "executed" && !request.dryRun) this.#budgets.countCall(agentId, budgetClock);
      // A rate limit counts every admitted call (executed now or held for approval), in the same tick as its check.
      if (rateLimited && status !== "denied" && !request.dryRun)
        this.#rateLimits.count(agentId, request.principal, rateClock);
    }
    if (admission !== "evaluate" || status === "denied") {
      if (blockedMessage === undefined && !request.dryRun) {
        this.#breaker.record(agentId, admission, status === "denied", Date.now());
      }
    }
    const message =
      blockedMessage !== undefined
        ? blockedMessage
        : decision === undefined
          ? "Enforcement is disabled: the call was not evaluated"
          : redacted.fired.length > 0
            ? describeDecision(decision, conditions, request.actionType)
            : decision.message;
    const policyName = decision?.policyName;
    const shadow =
      mode === "observe" && blockedMessage === undefined
        ? {
            status: enforced.status,
            ...(enforced.denialReason ? { denialReason: enforced.denialReason } : {}),
            ...(policyName ? { policyName } : {}),
          }
        : undefined;

    if (request.dryRun) {
      return Promise.resolve(
        result(
          status,
          "",
          message,
          mode === "enforce" || blockedMessage ? enforced.denialReason : undefined,
          mode,
          policyName,
          policy.hash,
          conditions,
          shadow,
        ),
      );
    }

    const { ms: now, iso: time } = nowWithIso();
    if (status !== "requested" && idempotency === undefined && this.#writer.defers) {
      return Promise.resolve(
        this.#decideDeferred(request, redacted, conditions, {
          status,
          message,
          denialReason: mode === "enforce" || blockedMessage ? enforced.denialReason : undefined,
          mode,
          policyName,
          policyHash: policy.hash,
          shadow,
          time,
        }),
      );
    }
    const argsJson = canonicalJson(redacted.args ?? null);
    const argsHash = "sha256:" + sha256Hex(argsJson);
    const id = uuidv7();
    const delegation = request.delegationChain ?? [request.agent.id];
    let approvalId: string | null = null;
    let timeoutAt: string | undefined;
    const effects: StoreEffect[] = [];
    if (status === "requested") {
      // 128 random bits behind a fixed prefix: base64url can start with "-", which a command line
      // (aa approvals approve <id>) would read as an option.
      approvalId = `apr_${randomBytes(16).toString("base64url")}`;
      const timeoutMs = decision?.approvalTimeoutMs ?? DEFAULT_APPROVAL_TIMEOUT_MS;
      timeoutAt = new Date(now + timeoutMs).toISOString();
      const snapshot: ApprovalSnapshot = {
        tool: request.toolName ?? null,
        framework: request.framework ?? null,
        args: redacted.args ?? null,
        argsHash,
        metadata: redacted.metadata ?? null,
        dataAccessed: redacted.dataAccessed ?? null,
        delegation,
        policyName: policyName ?? null,
        policyHash: policy.hash,
        conditions,
        traceId: request.traceId ?? null,
        toolCallId: request.toolCallId ?? null,
        redactionRules: redacted.fired,
        ...(delegated?.delegationId === undefined ? {} : { delegationId: delegated.delegationId }),
        user: recordUser(request.principal),
      };
      effects.push({
        type: "approval.insert",
        approval: {
          id: approvalId,
          org: this.#org,
          agentId: request.agent.id,
          actionType: request.actionType,
          state: "pending",
          createdAt: time,
          expiresAt: timeoutAt,
          auditEventId: id,
          policyName: policyName ?? null,
          bindingHash: sha256Hex(
            canonicalJson([request.agent.id, request.actionType, argsHash, policy.hash]),
          ),
          decidedBy: null,
          reason: null,
          decidedAt: null,
          consumedAt: null,
          request: JSON.stringify(snapshot),
        },
      });
    }
    const denialReason = mode === "enforce" || blockedMessage ? enforced.denialReason : undefined;
    const fields: RecordFields = {
      id,
      kind: "action",
      time,
      org: this.#org,
      agent: request.agent.id,
      delegation,
      actionType: request.actionType,
      tool: request.toolName ?? null,
      framework: request.framework ?? null,
      args: redacted.args ?? null,
      argsJson,
      argsHash,
      metadata: redacted.metadata ?? null,
      dataAccessed: redacted.dataAccessed ?? null,
      status,
      denialReason: denialReason ?? null,
      policyName: policyName ?? null,
      policyHash: policy.hash,
      conditions,
      approvalId,
      traceId: request.traceId ?? null,
      toolCallId: request.toolCallId ?? null,
      mode,
      shadow: shadow ?? null,
      failOpen: request.failOpen === true,
      reason: null,
      redactionRules: redacted.fired,
      user: recordUser(request.principal),
    };
    const answer = result(
      status,
      id,
      message,
      denialReason,
      mode,
      policyName,
      policy.hash,
      conditions,
      shadow,
    );
    if (approvalId) {
      answer.approvalId = approvalId;
      answer.timeoutAt = timeoutAt;
    }
    if (idempotency) {
      effects.push({
        type: "idempotency.insert",
        key: idempotency.key,
        fingerprint: idempotency.fingerprint,
        result: JSON.stringify(answer),
      });
    }
    return this.#writer.commit(
      { fields, encoded: encodeRecord(fields), effects: effects.length > 0 ? effects : undefined },
      answer,
    );
  }

  /**
   * The memory store's path for a plain record (no approval, no idempotency key): answer now and
   * let the store encode, hash and link the record in a batch. Everything the deferred encoding
   * reads is a snapshot: values redaction copied are ours; values it passed through unchanged
   * (`shared`), the delegation chain and object-valued condition operands are copied here.
   */
  #decideDeferred(
    request: DecisionRequest,
    redacted: RedactedCall,
    conditions: ConditionResult[],
    d: {
      status: ActionStatus;
      message: string;
      denialReason: DenialReasonCode | undefined;
      mode: EnforcementMode;
      policyName: string | undefined;
      policyHash: string;
      shadow: ActionResult["shadow"];
      time: string;
    },
  ): ActionResult {
    const id = uuidv7();
    const org = this.#org;
    const agent = request.agent.id;
    const delegation = request.delegationChain ? request.delegationChain.slice() : [agent];
    const frozenConditions = snapshotConditions(conditions);
    const actionType = request.actionType;
    const tool = request.toolName ?? null;
    const framework = request.framework ?? null;
    const traceId = request.traceId ?? null;
    const toolCallId = request.toolCallId ?? null;
    const failOpen = request.failOpen === true;
    const user = recordUser(request.principal);
    // Values redaction did not copy are the caller's: snapshot them now with the native encoder
    // (they are plain JSON data, so parse(stringify(x)) has the same canonical form as x) and
    // leave the canonical encoding to the deferred part.
    const shared = redacted.shared;
    const argsSnapshot = shared ? JSON.stringify(redacted.args ?? null) : undefined;
    const metadataSnapshot = shared ? JSON.stringify(redacted.metadata ?? null) : undefined;
    const dataSnapshot = shared ? JSON.stringify(redacted.dataAccessed ?? null) : undefined;
    this.#writer.appendDeferred(() => {
      const argsJson =
        argsSnapshot === undefined
          ? canonicalJson(redacted.args ?? null)
          : this.#argsCanonical.canonical(argsSnapshot);
      const metadataJson =
        metadataSnapshot === undefined ? undefined : this.#metadataCanonical.canonical(metadataSnapshot);
      const dataAccessedJson =
        dataSnapshot === undefined ? undefined : this.#dataAccessedCanonical.canonical(dataSnapshot);
      const fields: RecordFields = {
        id,
        kind: "action",
        time: d.time,
        org,
        agent,
        delegation,
        actionType,
        tool,
        framework,
        args: redacted.args ?? null,
        argsJson,
        argsHash: this.#argsHasher.hash(argsJson),
        metadata: redacted.metadata ?? null,
        metadataJson,
        dataAccessed: redacted.dataAccessed ?? null,
        dataAccessedJson,
        status: d.status,
        denialReason: d.denialReason ?? null,
        policyName: d.policyName ?? null,
        policyHash: d.policyHash,
        conditions: frozenConditions,
        approvalId: null,
        traceId,
        toolCallId,
        mode: d.mode,
        shadow: d.shadow ?? null,
        failOpen,
        reason: null,
        redactionRules: redacted.fired,
        user,
      };
      return { fields, encoded: encodeRecord(fields) };
    });
    return result(
      d.status,
      id,
      d.message,
      d.denialReason,
      d.mode,
      d.policyName,
      d.policyHash,
      conditions,
      d.shadow,
    );
  }

  /**
   * Replaces the enforced policy and records a `policy.changed` event naming both hashes. A
   * recorded change also ends a tampered state: the policy in force is again the recorded one.
   */
  async setPolicy(policy: CompiledPolicy | PolicyDocument, changedBy = "engine"): Promise<void> {
    this.#assertOpen();
    const next = compileOption(policy);
    await this.#recordPolicyChange(next, changedBy, `policy ${this.#policy.hash} replaced by ${next.hash}`);
    this.#usePolicy(next);
    this.#tampered = undefined;
  }

  async #recordPolicyChange(next: CompiledPolicy, changedBy: string, reason: string): Promise<void> {
    const fields = this.#systemFields("policy.changed", changedBy, "policy.change", {
      reason,
      policyHash: next.hash,
    });
    const outcome = await this.#writer.append({ fields, encoded: encodeRecord(fields) });
    if (!outcome.ok) throw outcome.error;
  }

  /**
   * @internal Called by `openEngine` (`policyChangeAtOpen: "record"`): a policy other than the one
   * the chain's newest record was made under (a restart with an edited file) is recorded as a
   * change before the first decision. One read, whatever the chain's length: every record carries
   * the policy hash in force when it was written (an approval record carries its request's, so a
   * change made while a call waited is, at worst, recorded once more). An empty chain records
   * nothing: its first record carries the hash.
   */
  async recordPolicyAtOpen(): Promise<void> {
    const head = await this.#store.head(this.#org);
    if (head.seq === 0) return;
    const [row] = await this.#store.readEvents(this.#org, head.seq - 1, 1);
    const last = row ? (JSON.parse(row.text) as { policy_hash?: string }).policy_hash : undefined;
    if (last === undefined || last === this.#policy.hash) return;
    await this.#recordPolicyChange(
      this.#policy,
      "engine.open",
      `policy ${last} replaced by ${this.#policy.hash} when the engine opened (it was given another policy than the chain last recorded)`,
    );
  }

  /** See {@link Engine.recordedPolicies}. */
  async recordedPolicies(): Promise<RecordedPolicies> {
    this.#assertOpen();
    const scan = this.#policyScan;
    // Every record up to the head read here is visible: after the scan, none of them is re-read.
    const head = (await this.#store.head(this.#org)).seq;
    for (;;) {
      const rows = await this.#store.readEvents(this.#org, scan.seq, 1000, "policy.change");
      for (const row of rows) {
        const record = JSON.parse(row.text) as { kind?: string; policy_hash?: string; agent?: string };
        if (record.kind === "policy.changed" && typeof record.policy_hash === "string") {
          scan.newest = {
            hash: record.policy_hash,
            seq: row.seq,
            openedWith: record.agent === "engine.open",
          };
          scan.hashes.add(record.policy_hash);
        }
        scan.seq = row.seq;
      }
      if (rows.length < 1000) break;
    }
    scan.seq = Math.max(scan.seq, head);
    return { newest: scan.newest && { ...scan.newest }, hashes: scan.hashes };
  }

  /**
   * Adopts a policy that another process sharing this store (a gateway replica) already recorded
   * with `setPolicy`, when the newest `policy.changed` record of this org's chain is that policy's.
   * Nothing is appended: a change made on one replica is audited once and enforced by all.
   * Resolves `false`, changing nothing, when the chain's newest policy change is another policy
   * (so no process can switch this engine to a policy the audit does not show). Adopting the
   * newest recorded policy ends a tampered state: the policy in force is again the recorded one.
   * With `{ newest: false }` any policy a `policy.changed` record carries is adopted (a gateway
   * opening while another replica's change is between its record and its stored row).
   */
  async adoptRecordedPolicy(
    policy: CompiledPolicy | PolicyDocument,
    options: { newest?: boolean } = {},
  ): Promise<boolean> {
    this.#assertOpen();
    const next = compileOption(policy);
    const recorded = await this.recordedPolicies();
    const isNewest = recorded.newest?.hash === next.hash;
    if (!isNewest && (options.newest !== false || !recorded.hashes.has(next.hash))) return false;
    if (this.#policy.hash !== next.hash) this.#usePolicy(next);
    if (isNewest) this.#tampered = undefined;
    return true;
  }

  /** See {@link Engine.markPolicyTampered}. */
  async markPolicyTampered(finding: PolicyTamperFinding): Promise<void> {
    this.#assertOpen();
    if (
      finding === null ||
      typeof finding !== "object" ||
      typeof finding.storedHash !== "string" ||
      (finding.recordedHash !== null && typeof finding.recordedHash !== "string") ||
      typeof finding.message !== "string" ||
      finding.message === ""
    ) {
      throw invalid(
        "markPolicyTampered(finding) needs { storedHash: string, recordedHash: string | null, message: string }",
      );
    }
    const current = this.#tampered?.integrity;
    if (
      current !== undefined &&
      current.storedHash === finding.storedHash &&
      current.recordedHash === finding.recordedHash &&
      current.message === finding.message
    ) {
      return;
    }
    const detectedAt = new Date().toISOString();
    // Denying starts now, before the record is written: failing closed must not wait on the store.
    this.#tampered = {
      integrity: {
        state: "tampered",
        policyHash: this.#policy.hash,
        storedHash: finding.storedHash,
        recordedHash: finding.recordedHash,
        detectedAt,
        message: finding.message,
      },
      denial: { reason: "POLICY_TAMPERED", message: finding.message, conditions: EMPTY },
    };
    const fields = this.#systemFields("policy.tampered", finding.detectedBy ?? "engine", "policy.tamper", {
      time: detectedAt,
      reason: finding.message,
      metadata: { storedHash: finding.storedHash, recordedHash: finding.recordedHash },
    });
    const outcome = await this.#writer.append({ fields, encoded: encodeRecord(fields) });
    if (!outcome.ok) throw outcome.error;
  }

  #usePolicy(next: CompiledPolicy): void {
    this.#policy = next;
    this.#redactor = buildRedactor(next.document, this.#hmac);
    if (this.#budgetsFromPolicy) this.#budgets.setLimits(budgetsFromPolicy(next.document.budgets));
    if (this.#rateLimitsFromPolicy)
      this.#rateLimits.setLimits(rateLimitsFromPolicy(next.document.rate_limits));
  }

  #systemFields(
    kind: RecordKind,
    agent: string,
    actionType: string,
    extra: Partial<RecordFields>,
  ): RecordFields {
    return {
      id: uuidv7(),
      kind,
      time: new Date().toISOString(),
      org: this.#org,
      agent,
      delegation: [agent],
      actionType,
      tool: null,
      framework: null,
      args: null,
      argsHash: "sha256:" + sha256Hex("null"),
      metadata: null,
      dataAccessed: null,
      status: null,
      denialReason: null,
      policyName: null,
      policyHash: this.#policy.hash,
      conditions: EMPTY,
      approvalId: null,
      traceId: null,
      toolCallId: null,
      mode: this.#defaultMode,
      shadow: null,
      failOpen: false,
      reason: null,
      redactionRules: EMPTY,
      ...extra,
    };
  }

  // ---------------------------------------------------------------- operator controls

  /**
   * Operator kill switch: from now on every call of `agentId` (and every call delegated through
   * it) is denied with `CIRCUIT_OPEN`, in every enforcement mode but `disabled`, until released.
   * Written with an `agent.contained` audit record in one transaction; other processes sharing
   * the store enforce it within `controlsRefreshMs`.
   */
  contain(agentId: string, operator: string, reason: string): Promise<AgentControl> {
    return this.#setContainment(agentId, operator, reason, true);
  }

  /** Lifts a containment (`agent.released` audit record). An agent may never release itself. */
  release(agentId: string, operator: string, reason: string): Promise<AgentControl> {
    return this.#setContainment(agentId, operator, reason, false);
  }

  async #setContainment(
    agentId: string,
    operator: string,
    reason: string,
    contained: boolean,
  ): Promise<AgentControl> {
    this.#assertOpen();
    const verb = contained ? "contain" : "release";
    for (const [field, value] of [
      ["agentId", agentId],
      ["operator", operator],
      ["reason", reason],
    ] as const) {
      if (typeof value !== "string" || value.trim() === "") {
        throw invalid(`${verb}(agentId, operator, reason): \`${field}\` must be a non-empty string`, {
          field,
        });
      }
    }
    if (!contained && operator === agentId) {
      throw new EngineError(
        "SELF_RELEASE_FORBIDDEN",
        403,
        `Agent ${agentId} may not release its own containment; another operator must`,
        { agentId, operator },
      );
    }
    if (!contained) {
      const current = (await this.#store.listAgentControls(this.#org)).find((row) => row.agentId === agentId);
      if (!current?.contained) {
        throw new EngineError(
          "AGENT_NOT_CONTAINED",
          409,
          `Agent ${agentId} is not contained; nothing to release`,
          {
            agentId,
          },
        );
      }
    }
    const safeReason = redactText(this.#redactor, reason);
    const fields = this.#systemFields(
      contained ? "agent.contained" : "agent.released",
      agentId,
      contained ? "agent.contain" : "agent.release",
      { reason: safeReason, metadata: { operator } },
    );
    const control: AgentControlRow = {
      agentId,
      contained,
      changedBy: operator,
      reason: safeReason,
      changedAt: fields.time,
    };
    const outcome = await this.#writer.append({
      fields,
      encoded: encodeRecord(fields),
      effects: [{ type: "agent.control", control }],
    });
    if (!outcome.ok) throw outcome.error;
    this.#containment.apply(control);
    return { ...control };
  }

  /** The agent's containment and circuit-breaker state as this engine enforces it (no store read). */
  agentState(agentId: string): AgentState {
    if (typeof agentId !== "string" || agentId === "") {
      throw invalid("agentId must be a non-empty string", { field: "agentId" });
    }
    const row = this.#containment.get(agentId);
    const circuit = this.#breaker.state(agentId, Date.now());
    return {
      agentId,
      contained: row !== undefined,
      ...(row ? { containedBy: row.changedBy, containedReason: row.reason, containedAt: row.changedAt } : {}),
      cbState: circuit.state,
      cbFailures: circuit.failures,
      ...(circuit.openUntil ? { cbOpenUntil: circuit.openUntil } : {}),
      budgets: this.#budgets.usage(agentId, Date.now()),
    };
  }

  /**
   * Reserves tokens and/or cost for one LLM call of `agentId` before it is made (in memory, no
   * store read). Throws `BUDGET_EXCEEDED` (429) when what is used and reserved in the current
   * window plus `estimate` would pass the agent's budget. Reconcile it with the real figures.
   */
  reserveTokens(agentId: string, estimate: { tokens?: number; cost?: number }): TokenReservation {
    this.#assertOpen();
    return this.#budgets.reserve(agentId, estimate, Date.now());
  }

  /**
   * Replaces a reservation by what the call really used (counted even when more than reserved,
   * so the next reservation feels it). `RESERVATION_NOT_FOUND` (404) once reconciled or expired.
   */
  reconcileTokens(reservationId: string, actual: { tokens?: number; cost?: number }): void {
    this.#assertOpen();
    this.#budgets.reconcile(reservationId, actual, Date.now());
  }

  /**
   * The governance posture, 0-100: policy coverage, approval hygiene and anomaly rate over the last
   * 10 000 audit records, and chain integrity from a full `verify()` (25 each; docs/controls.md).
   */
  async posture(): Promise<Posture> {
    this.#assertOpen();
    const chain = await this.verify();
    const head = await this.#store.head(this.#org);
    const records: PostureRecord[] = [];
    let after = Math.max(0, head.seq - POSTURE_WINDOW);
    while (after < head.seq) {
      const rows = await this.#store.readEvents(this.#org, after, Math.min(1000, head.seq - after));
      if (rows.length === 0) break;
      for (const row of rows) records.push(JSON.parse(row.text) as PostureRecord);
      after = rows.at(-1)!.seq;
    }
    const approvals = await this.#store.listApprovals(this.#org);
    return computePosture(records, approvals, chain, Date.now(), this.policyIntegrity);
  }

  /** Every agent an operator has contained or released, with its latest transition (reads the store). */
  async listAgentControls(): Promise<AgentControl[]> {
    this.#assertOpen();
    const rows = await this.#store.listAgentControls(this.#org);
    return rows.map((row) => ({ ...row }));
  }

  /**
   * Re-reads operator containment and the delegation registry from the store now (both are also
   * re-read every `controlsRefreshMs`).
   */
  async refreshControls(): Promise<void> {
    this.#assertOpen();
    await Promise.all([this.#containment.refresh(), this.#delegations.registry.refresh()]);
  }

  // ---------------------------------------------------------------- delegation

  /** See {@link Engine.delegate}. */
  delegate(parent: DelegationParent, name: string, options: DelegateOptions): Promise<DelegationGrant> {
    this.#assertOpen();
    return this.#delegations.delegate(parent, name, options);
  }

  /** See {@link Engine.verifyDelegation}. */
  verifyDelegation(token: string): Promise<Delegation> {
    this.#assertOpen();
    return this.#delegations.verify(token);
  }

  /** See {@link Engine.revokeDelegation}. */
  revokeDelegation(
    delegationId: string,
    revokedBy: string,
    options?: { agentId?: string },
  ): Promise<Delegation> {
    this.#assertOpen();
    return this.#delegations.revoke(delegationId, revokedBy, options);
  }

  /** See {@link Engine.listDelegations}. */
  listDelegations(filter?: DelegationFilter): Promise<Delegation[]> {
    this.#assertOpen();
    return this.#delegations.list(filter);
  }

  /** Audits the expiry of delegations whose time is up now (also done on every registry refresh). */
  async expireDelegations(): Promise<void> {
    this.#assertOpen();
    await this.#delegations.expireDue();
  }

  // ---------------------------------------------------------------- approvals

  async getApproval(approvalId: string): Promise<Approval | undefined> {
    this.#assertOpen();
    const row = await this.#currentApproval(approvalId);
    return row ? toApproval(row) : undefined;
  }

  async listApprovals(filter: { state?: ApprovalState } = {}): Promise<Approval[]> {
    this.#assertOpen();
    const rows = await this.#store.listApprovals(
      this.#org,
      filter.state === "expired" ? undefined : filter.state,
    );
    const out: Approval[] = [];
    for (const row of rows) {
      const current = row.state === "pending" ? ((await this.#expireIfDue(row)) ?? row) : row;
      if (filter.state === undefined || current.state === filter.state) out.push(toApproval(current));
    }
    return out;
  }

  approve(approvalId: string, reviewer: string, reason?: string): Promise<Approval> {
    return this.#decideApproval(approvalId, reviewer, reason, "approved");
  }

  deny(approvalId: string, reviewer: string, reason?: string): Promise<Approval> {
    return this.#decideApproval(approvalId, reviewer, reason, "denied");
  }

  async #decideApproval(
    approvalId: string,
    reviewer: string,
    reason: string | undefined,
    to: "approved" | "denied",
  ): Promise<Approval> {
    this.#assertOpen();
    if (typeof reviewer !== "string" || reviewer.trim() === "") {
      throw invalid("the reviewer must be a non-empty string naming who decides", { field: "reviewer" });
    }
    if (reason !== undefined && typeof reason !== "string") {
      throw invalid("the reason must be a string", { field: "reason" });
    }
    const row = await this.#currentApproval(approvalId);
    if (!row) throw approvalNotFound(approvalId);
    const snapshot = JSON.parse(row.request) as ApprovalSnapshot;
    if (reviewer === row.agentId || snapshot.delegation.includes(reviewer)) {
      throw new EngineError(
        "SELF_APPROVAL_FORBIDDEN",
        403,
        `${reviewer} requested (or delegated) this action and may not ${to === "approved" ? "approve" : "deny"} it; another reviewer must decide`,
        { approvalId, reviewer },
      );
    }
    const safeReason = reason === undefined ? null : redactText(this.#redactor, reason);
    const at = new Date().toISOString();
    const fields = this.#approvalFields(
      row,
      snapshot,
      to === "approved" ? "approval.approved" : "approval.denied",
      {
        agent: reviewer,
        status: to === "denied" ? "denied" : null,
        denialReason: to === "denied" ? "DENIED_BY_REVIEWER" : null,
        reason: safeReason,
        time: at,
      },
    );
    const outcome = await this.#writer.append({
      fields,
      encoded: encodeRecord(fields),
      effects: [{ type: "approval.transition", approvalId, to, decidedBy: reviewer, reason: safeReason, at }],
    });
    if (!outcome.ok) throw outcome.error;
    this.#notifyApproval(approvalId);
    return toApproval({ ...row, state: to, decidedBy: reviewer, reason: safeReason, decidedAt: at });
  }

  #approvalFields(
    row: ApprovalRow,
    snapshot: ApprovalSnapshot,
    kind: RecordKind,
    extra: Partial<RecordFields>,
  ): RecordFields {
    return {
      id: uuidv7(),
      kind,
      time: new Date().toISOString(),
      org: this.#org,
      agent: row.agentId,
      delegation: snapshot.delegation,
      actionType: row.actionType,
      tool: snapshot.tool,
      framework: snapshot.framework,
      args: snapshot.args,
      argsHash: snapshot.argsHash,
      metadata: snapshot.metadata,
      dataAccessed: snapshot.dataAccessed,
      status: null,
      denialReason: null,
      policyName: snapshot.policyName,
      policyHash: snapshot.policyHash,
      conditions: snapshot.conditions,
      approvalId: row.id,
      traceId: snapshot.traceId,
      toolCallId: snapshot.toolCallId,
      mode: "enforce",
      shadow: null,
      failOpen: false,
      reason: null,
      redactionRules: snapshot.redactionRules,
      user: snapshot.user ?? null,
      ...extra,
    };
  }

  /** Reads an approval, expiring it (with its audit record) when its time is up. */
  async #currentApproval(approvalId: string): Promise<ApprovalRow | undefined> {
    if (typeof approvalId !== "string" || approvalId === "") {
      throw invalid("approvalId must be a non-empty string", { field: "approvalId" });
    }
    const row = await this.#store.getApproval(this.#org, approvalId);
    if (row?.state !== "pending") return row;
    return (await this.#expireIfDue(row)) ?? row;
  }

  async #expireIfDue(row: ApprovalRow): Promise<ApprovalRow | undefined> {
    if (Date.parse(row.expiresAt) > Date.now()) return undefined;
    const snapshot = JSON.parse(row.request) as ApprovalSnapshot;
    const at = new Date().toISOString();
    const reason = `no reviewer decided before ${row.expiresAt}`;
    const fields = this.#approvalFields(row, snapshot, "approval.expired", {
      status: "denied",
      denialReason: "APPROVAL_TIMEOUT",
      reason,
      time: at,
    });
    const outcome = await this.#writer.append({
      fields,
      encoded: encodeRecord(fields),
      effects: [
        { type: "approval.transition", approvalId: row.id, to: "expired", decidedBy: null, reason, at },
      ],
    });
    this.#notifyApproval(row.id);
    if (!outcome.ok) {
      // Someone decided it first (another process or a reviewer racing the clock): theirs stands.
      return await this.#store.getApproval(this.#org, row.id);
    }
    return { ...row, state: "expired", reason, decidedAt: at };
  }

  async awaitApproval(
    approvalId: string,
    options: { timeoutMs?: number; signal?: AbortSignal; pollIntervalMs?: number } = {},
  ): Promise<Approval> {
    this.#assertOpen();
    const pollMs = options.pollIntervalMs ?? APPROVAL_POLL_MS;
    if (!Number.isSafeInteger(pollMs) || pollMs < 10) {
      throw invalid("pollIntervalMs must be an integer of at least 10 (milliseconds between store reads)", {
        field: "pollIntervalMs",
      });
    }
    const deadline =
      options.timeoutMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + options.timeoutMs;
    for (;;) {
      const changesBefore = this.#approvalChanges;
      const row = await this.#currentApproval(approvalId);
      if (!row) throw approvalNotFound(approvalId);
      if (row.state !== "pending") return toApproval(row);
      if (options.signal?.aborted) {
        throw new EngineError(
          "APPROVAL_WAIT_ABORTED",
          499,
          `Stopped waiting for approval ${approvalId}: aborted`,
          {
            approvalId,
          },
        );
      }
      const now = Date.now();
      if (now >= deadline) {
        throw new EngineError(
          "APPROVAL_WAIT_TIMEOUT",
          408,
          `Approval ${approvalId} is still pending after ${options.timeoutMs} ms; it stays open until ${row.expiresAt}`,
          { approvalId, expiresAt: row.expiresAt },
        );
      }
      if (this.#closed) throw closedError();
      // A change heard while the row was being read may be this one: read again at once.
      if (this.#approvalChanges !== changesBefore) continue;
      const wait = Math.min(pollMs, deadline - now, Math.max(0, Date.parse(row.expiresAt) - now) + 1);
      await this.#waitForApprovalChange(approvalId, wait, options.signal);
    }
  }

  #waitForApprovalChange(approvalId: string, ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve) => {
      let waiters = this.#approvalWaiters.get(approvalId);
      if (!waiters) {
        waiters = new Set();
        this.#approvalWaiters.set(approvalId, waiters);
      }
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        waiters.delete(done);
        if (waiters.size === 0) this.#approvalWaiters.delete(approvalId);
        resolve();
      };
      const timer = setTimeout(done, ms);
      waiters.add(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  #notifyApproval(approvalId: string): void {
    this.#approvalChanges++;
    const waiters = this.#approvalWaiters.get(approvalId);
    if (waiters) for (const wake of [...waiters]) wake();
  }

  #notifyAllApprovals(): void {
    this.#approvalChanges++;
    for (const id of [...this.#approvalWaiters.keys()]) this.#notifyApproval(id);
  }

  /** A commit by any replica sharing the store (or a resync after missed hints): wake who waits. */
  #onStoreChange(change: StoreChange): void {
    if (this.#closed) return;
    if (change.kind === "appended") {
      if (change.org !== this.#org) return;
      if (change.approvals === "all") this.#notifyAllApprovals();
      else for (const id of change.approvals) this.#notifyApproval(id);
      if (change.controls) {
        void this.#containment.safelyRefresh();
        void this.#delegations.registry.safelyRefresh();
      }
    } else {
      this.#notifyAllApprovals();
      void this.#containment.safelyRefresh();
      void this.#delegations.registry.safelyRefresh();
    }
    if (this.#events.listening) this.#events.wake();
  }

  /**
   * Releases the call an approval was granted for, exactly once: marks the approval consumed and
   * appends an `executed` record referencing it, in one transaction. Only the requesting agent may
   * release it.
   */
  async releaseApproval(approvalId: string, agentId: string): Promise<ActionResult> {
    this.#assertOpen();
    const row = await this.#currentApproval(approvalId);
    if (!row) throw approvalNotFound(approvalId);
    if (row.agentId !== agentId) {
      throw new EngineError(
        "FORBIDDEN",
        403,
        `Approval ${approvalId} belongs to another agent; only it may release the call`,
        {
          approvalId,
        },
      );
    }
    if (this.#tampered !== undefined) {
      throw new EngineError("POLICY_TAMPERED", 403, this.#tampered.denial.message, { approvalId });
    }
    const snapshot = JSON.parse(row.request) as ApprovalSnapshot;
    if (snapshot.delegationId !== undefined) {
      // Revoked or expired while the call waited for its reviewer: the approval cannot release it.
      const resolution = await this.#delegations.registry.resolveId(snapshot.delegationId, Date.now());
      if (!resolution.ok) throw denialError(resolution.denial);
    }
    const contained = this.#containment.blocking(agentId, snapshot.delegation);
    if (contained) {
      throw new EngineError("AGENT_CONTAINED", 403, containedMessage(agentId, contained), {
        approvalId,
        agentId,
      });
    }
    const at = new Date().toISOString();
    const fields = this.#approvalFields(row, snapshot, "approval.released", { status: "executed", time: at });
    const outcome = await this.#writer.append({
      fields,
      encoded: encodeRecord(fields),
      effects: [{ type: "approval.consume", approvalId, at }],
    });
    if (!outcome.ok) throw outcome.error;
    if (this.#shared === undefined) this.#budgets.countCall(agentId, Date.now());
    // The release is committed: a count that fails to reach the shared counter is not worth failing it.
    else await this.#shared.countCall(agentId, this.#budgets).catch(() => undefined);
    return {
      status: "executed",
      auditEventId: fields.id,
      approvalId,
      message: `Approved by ${row.decidedBy ?? "a reviewer"}${row.reason ? `: ${row.reason}` : ""}`,
      ...(snapshot.policyName ? { policyName: snapshot.policyName } : {}),
      policyHash: snapshot.policyHash,
      conditionsEvaluated: snapshot.conditions as ConditionResult[],
    };
  }

  // ---------------------------------------------------------------- outcomes & receipts

  async report(auditEventId: string, outcome: Outcome, agentId: string): Promise<void> {
    this.#assertOpen();
    if (typeof auditEventId !== "string" || !UUID_RE.test(auditEventId)) {
      throw new EngineError(
        "INVALID_AUDIT_EVENT_ID",
        400,
        "auditEventId must be the UUID returned by decide()",
        {
          field: "auditEventId",
        },
      );
    }
    if (outcome === null || typeof outcome !== "object" || Array.isArray(outcome)) {
      throw new EngineError(
        "INVALID_BODY",
        400,
        "the outcome must be an object {status, message?, metadata?}",
      );
    }
    if (!OUTCOME_STATUSES.has(outcome.status as string)) {
      throw new EngineError(
        "INVALID_OUTCOME",
        400,
        "outcome.status must be one of success, failure, partial",
        {
          field: "status",
          allowed: ["success", "failure", "partial"],
        },
      );
    }
    if (outcome.message !== undefined && typeof outcome.message !== "string") {
      throw new EngineError("INVALID_BODY", 400, "outcome.message must be a string", { field: "message" });
    }
    if (
      outcome.metadata !== undefined &&
      (outcome.metadata === null || typeof outcome.metadata !== "object" || Array.isArray(outcome.metadata))
    ) {
      throw new EngineError("INVALID_BODY", 400, "outcome.metadata must be an object", { field: "metadata" });
    }
    if (typeof agentId !== "string" || agentId === "") {
      throw new EngineError("INVALID_BODY", 400, "agentId must be the reporting agent's id", {
        field: "agentId",
      });
    }
    let event: StoredEvent | undefined;
    try {
      event = await this.#store.getEvent(this.#org, auditEventId);
    } catch (error) {
      throw storeFailure("REPORT_FAILED", "Looking up the audit event", error);
    }
    if (!event) {
      throw new EngineError(
        "AUDIT_EVENT_NOT_FOUND",
        404,
        `No audit event ${auditEventId} in this organisation`,
        {
          auditEventId,
        },
      );
    }
    if (event.agent !== agentId) {
      throw new EngineError("FORBIDDEN", 403, "Only the agent that made the call may report its outcome", {
        auditEventId,
      });
    }
    const redacted = this.#redactor({ args: undefined, metadata: outcome.metadata, dataAccessed: undefined });
    try {
      await this.#store.upsertOutcome(this.#org, {
        auditEventId,
        agentId,
        status: outcome.status,
        message: outcome.message === undefined ? null : redactText(this.#redactor, outcome.message),
        metadata: redacted.metadata === undefined ? null : JSON.stringify(redacted.metadata),
        updatedAt: new Date().toISOString(),
      });
    } catch (error) {
      throw storeFailure("REPORT_FAILED", "Saving the outcome", error);
    }
    if (outcome.status === "failure") this.#breaker.recordFailure(agentId, Date.now());
  }

  /**
   * A signed receipt (compact JWS) for an executed action, including its outcome once reported.
   * Verify it offline with `verifyReceipt(receipt, engine.jwks())`.
   */
  async receipt(auditEventId: string): Promise<string> {
    this.#assertOpen();
    const event =
      typeof auditEventId === "string" ? await this.#store.getEvent(this.#org, auditEventId) : undefined;
    if (!event) {
      throw new EngineError(
        "AUDIT_EVENT_NOT_FOUND",
        404,
        `No audit event ${auditEventId} in this organisation`,
        {
          auditEventId,
        },
      );
    }
    const record = JSON.parse(event.text) as Record<string, unknown>;
    if (record.status !== "executed") {
      throw new EngineError(
        "INVALID_AUDIT_EVENT_ID",
        400,
        `Audit event ${auditEventId} is not an executed action (status ${String(record.status)}); only executed actions get receipts`,
        { auditEventId },
      );
    }
    const outcome = await this.#store.getOutcome(this.#org, auditEventId);
    return signReceipt(
      {
        auditEventId,
        org: this.#org,
        agentId: event.agent,
        actionType: event.actionType,
        argsHash: record.args_hash as string,
        status: "executed",
        policyName: (record.policy_name as string | null) ?? null,
        policyHash: record.policy_hash as string,
        approvalId: (record.approval_id as string | null) ?? null,
        delegationChain: record.delegation as string[],
        chain: { seq: event.seq, recordHash: event.hash },
        issuedAt: new Date().toISOString(),
        ...(outcome
          ? {
              outcome: {
                status: outcome.status as Outcome["status"],
                messageHash: hashOutcomeMessage(outcome.message),
              },
            }
          : {}),
      },
      this.#keyring,
    );
  }

  /** Every public key that signed checkpoints or receipts (active and retired), as a JWKS. */
  jwks(): { keys: ReturnType<Keyring["jwks"]>["keys"] } {
    return this.#keyring.jwks();
  }

  // ---------------------------------------------------------------- audit, verify, export

  async audit(query: AuditQuery = {}): Promise<AuditPage<AuditEvent>> {
    this.#assertOpen();
    const limit = query.limit ?? 100;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000) {
      throw invalid("limit must be an integer from 1 to 1000", { field: "limit" });
    }
    const traceId = query.traceId;
    if (traceId !== undefined && (typeof traceId !== "string" || traceId === "" || traceId.length > 256)) {
      throw invalid("traceId must be a non-empty string of at most 256 characters", { field: "traceId" });
    }
    const order = query.order ?? "asc";
    if (order !== "asc" && order !== "desc") {
      throw invalid('order must be "asc" (oldest first) or "desc" (newest first)', { field: "order" });
    }
    // The record's canonical text holds `"trace_id":<JSON string>` exactly once: the store
    // prefilters on that text, and the parsed record decides (the same text may sit in args).
    const textContains = traceId === undefined ? undefined : `"trace_id":${quoteJson(traceId)}`;
    const rows =
      order === "asc"
        ? await this.#store.readEvents(
            this.#org,
            query.cursor === undefined ? 0 : decodeCursor(query.cursor, "asc"),
            limit + 1,
            query.actionType,
            textContains,
          )
        : await this.#store.readEventsBefore(
            this.#org,
            query.cursor === undefined ? Number.MAX_SAFE_INTEGER : decodeCursor(query.cursor, "desc"),
            limit + 1,
            query.actionType,
            textContains,
          );
    const page = rows.slice(0, limit);
    const items: AuditEvent[] = [];
    // One read for the page's outcomes, not one per record (a round trip each on PostgreSQL).
    const outcomes = new Map<string, OutcomeRow>();
    for (const outcome of await this.#store.getOutcomes(
      this.#org,
      page.map((row) => row.id),
    ))
      outcomes.set(outcome.auditEventId, outcome);
    for (const row of page) {
      const event = toAuditEvent(row, outcomes.get(row.id));
      if (traceId === undefined || event.trace_id === traceId) items.push(event);
    }
    const last = page.at(-1);
    return rows.length > limit && last ? { items, nextCursor: encodeCursor(last.seq, order) } : { items };
  }

  async verify(options: ChainPassOptions = {}): Promise<VerifyResult> {
    this.#assertOpen();
    await this.#writer.drain();
    return verifyStoreChain(this.#store, this.#org, this.#keyring.jwks(), options.onProgress);
  }

  /** Writes the org's chain, outcomes, checkpoints and JWKS as JSONL to a path or a writable stream. */
  async exportAudit(
    target: ExportTarget,
    options: ChainPassOptions = {},
  ): Promise<{ records: number; outcomes: number; checkpoints: number }> {
    this.#assertOpen();
    await this.#writer.drain();
    await this.checkpoint();
    return exportAuditTo(this.#store, this.#org, this.#keyring.jwks(), target, options.onProgress);
  }

  /**
   * Rotates the Ed25519 key that signs checkpoints and receipts. The chain so far is first
   * checkpointed with the current key; the retired key's public half stays in `jwks()` (so old
   * checkpoints and receipts still verify) and its private half is discarded. Returns the new kid.
   */
  async rotateSigningKey(): Promise<string> {
    this.#assertOpen();
    await this.checkpoint();
    let stored: StoredKeys;
    try {
      stored = await this.#store.updateKeys(this.#org, (current) => {
        const ring = Keyring.fromJSON(current.keyring);
        ring.rotate();
        return { ...current, keyring: ring.toJSON() };
      });
    } catch (error) {
      throw storeFailure("STORE_WRITE_FAILED", "Rotating the signing key", error);
    }
    this.#keyring = Keyring.fromJSON(stored.keyring);
    return this.#keyring.activeKid;
  }

  /** Signs a checkpoint over the current head now (no-op when the chain is empty or unchanged). */
  async checkpoint(): Promise<Checkpoint | undefined> {
    const head = await this.#store.head(this.#org);
    if (head.seq === 0 || head.seq <= this.#checkpointedSize) return undefined;
    return this.#writeCheckpoint(head.seq, head.hash);
  }

  /** `hash` is undefined for a deferred record (memory store): the checkpoint then covers the head. */
  #maybeCheckpoint(seq: number, hash: string | undefined): void {
    if (Math.floor(seq / this.#interval) > Math.floor(this.#checkpointedSize / this.#interval)) {
      const written =
        hash === undefined
          ? Promise.resolve(this.#store.head(this.#org)).then((head) =>
              this.#writeCheckpoint(head.seq, head.hash),
            )
          : this.#writeCheckpoint(seq, hash);
      const pending = written.then(
        () => undefined,
        () => {
          // A missed periodic checkpoint is re-attempted at the next interval and on close().
        },
      );
      this.#pendingCheckpoints.add(pending);
      void pending.finally(() => this.#pendingCheckpoints.delete(pending));
    }
  }

  async #writeCheckpoint(size: number, headHash: string): Promise<Checkpoint> {
    const time = new Date().toISOString();
    const signed = this.#keyring.sign(checkpointPayload(this.#org, size, headHash, time));
    const checkpoint: Checkpoint = {
      org: this.#org,
      size,
      headHash,
      time,
      kid: signed.kid,
      signature: signed.signature,
    };
    this.#checkpointedSize = Math.max(this.#checkpointedSize, size);
    await this.#store.insertCheckpoint(checkpoint);
    return checkpoint;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#writer.drain();
    await this.#shared?.drain();
    await Promise.all(this.#pendingCheckpoints);
    try {
      await this.checkpoint();
    } finally {
      this.#closed = true;
      this.#containment.stop();
      this.#delegations.stop();
      this.#events.close();
      this.#unwatch?.();
      for (const id of [...this.#approvalWaiters.keys()]) this.#notifyApproval(id);
      await this.#store.close();
    }
  }

  // ---------------------------------------------------------------- realtime events

  /**
   * Subscribes to realtime events projected from the audit chain (docs/events.md): in seq order,
   * at least once; `after` resumes after a seq (default: only events appended from now on).
   */
  async subscribe(
    callback: (event: EngineEvent) => unknown,
    options: SubscribeOptions = {},
  ): Promise<Subscription> {
    this.#assertOpen();
    return this.#events.subscribe(callback, options, async () => {
      await this.#writer.drain();
      return (await this.#store.head(this.#org)).seq;
    });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #assertOpen(): void {
    if (this.#closed) throw closedError();
  }
}

/**
 * Realtime events: a projection of the org's audit chain. Each subscriber reads records after the
 * last `seq` it has seen, so delivery is in chain order, at least once, and a subscriber that
 * resumes with `after` gets exactly what it missed. Local appends wake readers at once; other
 * processes' appends (same SQLite file or PostgreSQL database) are seen by polling the store.
 */
import { invalid } from "./errors.js";
import type { AuditStore, StoredEvent } from "./store/types.js";
import type { EngineEvent, EngineEventType, SubscribeOptions, Subscription } from "./types.js";

/** Every event type (`anomaly.detected`: a tampered policy was found, docs/events.md). */
export const ENGINE_EVENT_TYPES: readonly EngineEventType[] = [
  "action.denied",
  "action.executed",
  "approval.requested",
  "approval.resolved",
  "delegation.created",
  "delegation.expired",
  "delegation.revoked",
  "policy.changed",
  "anomaly.detected",
  "enforcement.triggered",
];

/** Denials that come from an enforcement control (kill switch, circuit breaker, budget, rate limit, tampered policy). */
const ENFORCEMENT_DENIALS = new Set(["CIRCUIT_OPEN", "BUDGET_EXCEEDED", "RATE_LIMITED", "POLICY_TAMPERED"]);
const PAGE = 500;
const PROJECTION_CACHE = 2 * PAGE;
export const DEFAULT_EVENTS_POLL_MS = 250;

/** Maps one stored record to the events it produces (zero, one or two), in a fixed order. */
export function eventsOfRecord(row: StoredEvent): EngineEvent[] {
  const record = JSON.parse(row.text) as Record<string, unknown>;
  const kind = record.kind as string;
  const status = (record.status as string | null) ?? null;
  const denialReason = (record.denial_reason as string | null) ?? null;
  const base = {
    id: row.id,
    seq: row.seq,
    time: record.time as string,
    agentId: row.agent,
    actionType: row.actionType,
  };
  const data = {
    kind,
    status,
    denialReason,
    policyName: (record.policy_name as string | null) ?? null,
    approvalId: (record.approval_id as string | null) ?? null,
    reason: (record.reason as string | null) ?? null,
    mode: record.mode as string,
    tool: (record.tool as string | null) ?? null,
    userId: (record.user as { id: string } | null | undefined)?.id ?? null,
  };
  const event = (type: EngineEventType, extra: Record<string, unknown> = {}): EngineEvent => ({
    ...base,
    type,
    data: { ...data, ...extra },
  });
  switch (kind) {
    case "action":
      if (status === "executed") return [event("action.executed")];
      if (status === "requested") return [event("approval.requested")];
      if (status === "denied") {
        return denialReason !== null && ENFORCEMENT_DENIALS.has(denialReason)
          ? [event("action.denied"), event("enforcement.triggered", { trigger: denialReason })]
          : [event("action.denied")];
      }
      return [];
    case "approval.released":
      return [event("action.executed")];
    case "approval.approved":
    case "approval.denied":
    case "approval.expired":
      return [event("approval.resolved", { resolution: kind.slice("approval.".length) })];
    case "policy.changed":
      return [event("policy.changed")];
    case "policy.tampered": {
      const metadata = (record.metadata ?? {}) as Record<string, unknown>;
      return [
        event("anomaly.detected", {
          trigger: "POLICY_TAMPERED",
          storedHash: metadata.storedHash ?? null,
          recordedHash: metadata.recordedHash ?? null,
        }),
      ];
    }
    case "agent.contained":
    case "agent.released":
      return [event("enforcement.triggered", { trigger: kind })];
    case "delegation.created":
    case "delegation.revoked":
    case "delegation.expired": {
      const metadata = (record.metadata ?? {}) as Record<string, unknown>;
      return [
        event(kind, {
          delegationId: metadata.delegationId ?? null,
          parentDelegationId: metadata.parentDelegationId ?? null,
          chain: record.delegation,
          capabilities: metadata.capabilities ?? null,
          expiresAt: metadata.expiresAt ?? null,
        }),
      ];
    }
    default:
      return [];
  }
}

/** Validates `subscribe` options and turns them into a predicate. */
function compileFilter(options: SubscribeOptions): {
  accepts: (event: EngineEvent) => boolean;
  agents: ReadonlySet<string> | undefined;
} {
  const types = options.events === undefined ? undefined : new Set<string>(options.events);
  if (options.events !== undefined) {
    if (!Array.isArray(options.events) || options.events.length === 0) {
      throw invalid("events must be a non-empty array of event types, e.g. ['action.denied']", {
        field: "events",
      });
    }
    for (const type of options.events) {
      if (!ENGINE_EVENT_TYPES.includes(type)) {
        throw invalid(
          `events: unknown event type ${JSON.stringify(type)}; use one of ${ENGINE_EVENT_TYPES.join(", ")}`,
          {
            field: "events",
          },
        );
      }
    }
  }
  const agentList = options.agentFilter;
  const agents =
    agentList === undefined
      ? undefined
      : new Set<unknown>(
          typeof agentList === "string" ? [agentList] : Array.isArray(agentList) ? agentList : [null],
        );
  if (
    agents !== undefined &&
    (agents.size === 0 || [...agents].some((a) => typeof a !== "string" || a === ""))
  ) {
    throw invalid("agentFilter must be an agent id or a non-empty array of agent ids", {
      field: "agentFilter",
    });
  }
  return {
    accepts: (event) => types === undefined || types.has(event.type),
    agents: agents as ReadonlySet<string> | undefined,
  };
}

function safelyWarn(what: string, error: unknown): void {
  try {
    process.emitWarning(
      `${what}: ${error instanceof Error ? error.message : String(error)}`,
      "AssemblyEventSubscriberWarning",
    );
  } catch {
    // Nothing more to do: a warning must never stop delivery.
  }
}

class Subscriber {
  lastSeq: number;
  active = true;
  #running = false;
  /** Set after a failed store read, so a store that stays down warns once, not every poll. */
  #failing = false;
  #again = false;
  readonly #store: AuditStore;
  readonly #org: string;
  readonly #project: (row: StoredEvent) => readonly EngineEvent[];
  readonly #filter: ReturnType<typeof compileFilter>;
  readonly #callback: (event: EngineEvent) => unknown;

  constructor(
    store: AuditStore,
    org: string,
    after: number,
    project: (row: StoredEvent) => readonly EngineEvent[],
    filter: ReturnType<typeof compileFilter>,
    callback: (event: EngineEvent) => unknown,
  ) {
    this.#store = store;
    this.#org = org;
    this.lastSeq = after;
    this.#project = project;
    this.#filter = filter;
    this.#callback = callback;
  }

  /** Reads and delivers everything after `lastSeq`; one reader at a time keeps the order. */
  async pump(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = true;
    try {
      do {
        this.#again = false;
        for (;;) {
          if (!this.active) return;
          const rows = await this.#store.readEvents(this.#org, this.lastSeq, PAGE);
          const { agents, accepts } = this.#filter;
          for (const row of rows) {
            // The event's agent is the row's: other agents' records are skipped unparsed.
            if (agents === undefined || agents.has(row.agent)) {
              for (const event of this.#project(row)) {
                if (this.active && accepts(event)) await this.#safelyDeliver(event);
              }
            }
            this.lastSeq = row.seq;
          }
          this.#failing = false;
          if (rows.length < PAGE) break;
        }
      } while (this.#again && this.active);
    } catch (error) {
      // A failed store read is retried at the next wake or poll, from the same lastSeq; after
      // unsubscribe or close the store may be gone, which is not worth a warning.
      if (this.active && !this.#failing) {
        safelyWarn(
          `events: reading the audit record after seq ${this.lastSeq} failed (retried on every poll; engine.verify() checks the chain)`,
          error,
        );
      }
      this.#failing = true;
    } finally {
      this.#running = false;
    }
  }

  async #safelyDeliver(event: EngineEvent): Promise<void> {
    try {
      await this.#callback(event);
    } catch (error) {
      safelyWarn("an event subscriber threw", error);
    }
  }
}

/** The engine's subscribers, woken by local appends and by a store poll. */
export class EventHub {
  readonly #store: AuditStore;
  readonly #org: string;
  readonly #pollMs: number;
  readonly #subscribers = new Set<Subscriber>();
  #timer: NodeJS.Timeout | undefined;
  #wakeScheduled = false;
  /** Recent projections, so several subscribers reading the same record parse it once. */
  #projected = new Map<number, readonly EngineEvent[]>();

  constructor(store: AuditStore, org: string, pollMs = DEFAULT_EVENTS_POLL_MS) {
    this.#store = store;
    this.#org = org;
    this.#pollMs = pollMs;
  }

  /** True while anyone listens: the append path checks this before waking. */
  get listening(): boolean {
    return this.#subscribers.size > 0;
  }

  async subscribe(
    callback: (event: EngineEvent) => unknown,
    options: SubscribeOptions,
    headSeq: () => Promise<number>,
  ): Promise<Subscription> {
    if (typeof callback !== "function") {
      throw invalid("subscribe needs a callback function (event) => void", { field: "callback" });
    }
    const filter = compileFilter(options);
    if (options.after !== undefined && (!Number.isSafeInteger(options.after) || options.after < 0)) {
      throw invalid("after must be a seq (an integer of at least 0) to resume after", { field: "after" });
    }
    const after = options.after ?? (await headSeq());
    const subscriber = new Subscriber(
      this.#store,
      this.#org,
      after,
      (row) => this.#project(row),
      filter,
      callback,
    );
    this.#subscribers.add(subscriber);
    this.#startPolling();
    void subscriber.pump();
    const hub = this;
    return {
      get lastSeq() {
        return subscriber.lastSeq;
      },
      unsubscribe() {
        subscriber.active = false;
        hub.#subscribers.delete(subscriber);
        if (hub.#subscribers.size === 0) hub.#stopPolling();
      },
    };
  }

  /** Called after a local commit: coalesces wakes into one pump per subscriber. */
  wake(): void {
    if (this.#wakeScheduled) return;
    this.#wakeScheduled = true;
    setImmediate(() => {
      this.#wakeScheduled = false;
      for (const subscriber of this.#subscribers) void subscriber.pump();
    });
  }

  /** Events are frozen because subscribers share them. */
  #project(row: StoredEvent): readonly EngineEvent[] {
    const known = this.#projected.get(row.seq);
    if (known !== undefined) return known;
    const events = Object.freeze(
      eventsOfRecord(row).map((event) => {
        Object.freeze(event.data);
        return Object.freeze(event);
      }),
    );
    if (this.#projected.size >= PROJECTION_CACHE) this.#projected.clear();
    this.#projected.set(row.seq, events);
    return events;
  }

  close(): void {
    this.#projected.clear();
    for (const subscriber of this.#subscribers) subscriber.active = false;
    this.#subscribers.clear();
    this.#stopPolling();
  }

  #startPolling(): void {
    // Only a shared store can change behind this process's back.
    if (this.#timer !== undefined || this.#store.kind === "memory") return;
    this.#timer = setInterval(() => {
      for (const subscriber of this.#subscribers) void subscriber.pump();
    }, this.#pollMs);
    this.#timer.unref();
  }

  #stopPolling(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

/**
 * Per-agent budgets (calls, tokens, cost), kept in this process's memory in fixed windows: an
 * agent's window for a kind starts with its first use and resets `windowMs` later. Calls are
 * counted when the gate executes one; tokens and cost are reserved before an LLM call and
 * reconciled with the real figures after it. The decision path costs one Map lookup per agent.
 */
import { randomBytes } from "node:crypto";
import { type PolicyBudgets, parseDuration } from "@aa/policy";
import { EngineError } from "../errors.js";
import type { BudgetKind, BudgetLimit, BudgetOptions, BudgetUsage, TokenReservation } from "../types.js";

export const DEFAULT_RESERVATION_TTL_MS = 5 * 60_000;
const KINDS: readonly BudgetKind[] = ["calls", "tokens", "cost"];

interface Window {
  startedAt: number;
  used: number;
}

interface Reservation {
  agentId: string;
  tokens: number;
  cost: number;
  expiresAt: number;
}

type Limits = Partial<Record<BudgetKind, BudgetLimit>>;

export class Budgets {
  #defaults: Limits = {};
  #perAgent = new Map<string, Limits>();
  readonly #ttlMs: number;
  /** Per kind, each agent's current window. */
  readonly #windows: Record<BudgetKind, Map<string, Window>> = {
    calls: new Map(),
    tokens: new Map(),
    cost: new Map(),
  };
  readonly #reservations = new Map<string, Reservation>();
  /** True when no limit is configured: the decision path skips budgets entirely. */
  inactive = true;

  constructor(options: BudgetOptions = {}) {
    this.setLimits(options);
    const ttl = options.reservationTtlMs ?? DEFAULT_RESERVATION_TTL_MS;
    if (!Number.isSafeInteger(ttl) || ttl < 1) {
      throw badOption(
        "budgets.reservationTtlMs",
        `must be a positive integer (default ${DEFAULT_RESERVATION_TTL_MS})`,
      );
    }
    this.#ttlMs = ttl;
  }

  /** Replaces the limits (e.g. from a new policy); usage counted in open windows is kept. */
  setLimits(options: BudgetOptions): void {
    if (options === null || typeof options !== "object") {
      throw badOption(
        "budgets",
        "must be an object { calls?, tokens?, cost?, perAgent?, reservationTtlMs? }",
      );
    }
    const defaults = checkedLimits(options, "budgets");
    const perAgent = new Map<string, Limits>();
    if (options.perAgent !== undefined) {
      if (options.perAgent === null || typeof options.perAgent !== "object") {
        throw badOption(
          "budgets.perAgent",
          "must be an object mapping agent ids to { calls?, tokens?, cost? }",
        );
      }
      for (const [agentId, limits] of Object.entries(options.perAgent)) {
        perAgent.set(agentId, { ...defaults, ...checkedLimits(limits, `budgets.perAgent.${agentId}`) });
      }
    }
    this.#defaults = defaults;
    this.#perAgent = perAgent;
    this.inactive = Object.keys(defaults).length === 0 && perAgent.size === 0;
  }

  #limit(agentId: string, kind: BudgetKind): BudgetLimit | undefined {
    if (this.#perAgent.size === 0) return this.#defaults[kind];
    return (this.#perAgent.get(agentId) ?? this.#defaults)[kind];
  }

  /** The agent's window for a kind, rolled over when its time is up (created when `create`). */
  #window(
    agentId: string,
    kind: BudgetKind,
    limit: BudgetLimit,
    now: number,
    create: boolean,
  ): Window | undefined {
    const windows = this.#windows[kind];
    let window = windows.get(agentId);
    if (window !== undefined && now - window.startedAt >= limit.windowMs) {
      window.startedAt = now;
      window.used = 0;
    }
    if (window === undefined && create) {
      window = { startedAt: now, used: 0 };
      windows.set(agentId, window);
    }
    return window;
  }

  /** The agent's calls budget, if it has one (undefined also when budgets are off). */
  callsLimit(agentId: string): BudgetLimit | undefined {
    return this.inactive ? undefined : this.#limit(agentId, "calls");
  }

  /** The longest calls-budget window of any agent (0 when no calls budget is configured). */
  longestCallsWindowMs(): number {
    let longest = this.#defaults.calls?.windowMs ?? 0;
    for (const limits of this.#perAgent.values()) longest = Math.max(longest, limits.calls?.windowMs ?? 0);
    return longest;
  }

  /**
   * Adopts the agent's calls window as the store's shared counter reported it (replicas on
   * PostgreSQL), so `usage` shows what every replica counted.
   */
  mirrorCalls(agentId: string, startedAt: number | undefined, used: number): void {
    if (startedAt === undefined) return;
    const window = this.#windows.calls.get(agentId);
    if (window === undefined) this.#windows.calls.set(agentId, { startedAt, used });
    else if (startedAt >= window.startedAt) {
      window.startedAt = startedAt;
      window.used = used;
    }
  }

  /** Why the agent's next call is over its calls budget, or undefined when it fits. */
  callsExceeded(agentId: string, now: number): string | undefined {
    if (this.inactive) return undefined;
    const limit = this.#limit(agentId, "calls");
    if (limit === undefined) return undefined;
    const window = this.#window(agentId, "calls", limit, now, false);
    if (window === undefined || window.used < limit.limit) return undefined;
    return callsBudgetSpent(agentId, limit, window.startedAt);
  }

  /** Counts one executed call. */
  countCall(agentId: string, now: number): void {
    if (this.inactive) return;
    const limit = this.#limit(agentId, "calls");
    if (limit !== undefined) this.#window(agentId, "calls", limit, now, true)!.used++;
  }

  /** Reserves tokens and/or cost before an LLM call; throws `BUDGET_EXCEEDED` when it does not fit. */
  reserve(agentId: string, estimate: { tokens?: number; cost?: number }, now: number): TokenReservation {
    if (typeof agentId !== "string" || agentId === "") {
      throw invalidAmount("agentId must be a non-empty string", "agentId");
    }
    const amounts = checkedAmounts(estimate, "estimate");
    this.#releaseExpired(now);
    for (const kind of ["tokens", "cost"] as const) {
      const limit = this.#limit(agentId, kind);
      if (limit === undefined || amounts[kind] === 0) continue;
      const used = this.#window(agentId, kind, limit, now, false)?.used ?? 0;
      const reserved = this.#reserved(agentId, kind);
      if (used + reserved + amounts[kind] > limit.limit) {
        const window = this.#window(agentId, kind, limit, now, true)!;
        const resetsAt = new Date(window.startedAt + limit.windowMs).toISOString();
        throw new EngineError(
          "BUDGET_EXCEEDED",
          429,
          `Agent ${agentId} cannot reserve ${amounts[kind]} ${kind}: ${used} used and ${reserved} reserved of ${limit.limit} per ${limit.windowMs} ms; the window resets at ${resetsAt}`,
          {
            agentId,
            kind,
            limit: limit.limit,
            windowMs: limit.windowMs,
            used,
            reserved,
            requested: amounts[kind],
            resetsAt,
          },
        );
      }
    }
    const id = `rsv_${randomBytes(16).toString("base64url")}`;
    const expiresAt = now + this.#ttlMs;
    this.#reservations.set(id, { agentId, tokens: amounts.tokens, cost: amounts.cost, expiresAt });
    return {
      id,
      agentId,
      tokens: amounts.tokens,
      cost: amounts.cost,
      expiresAt: new Date(expiresAt).toISOString(),
    };
  }

  /** Replaces a reservation by what the call really used (which may be more than reserved). */
  reconcile(reservationId: string, actual: { tokens?: number; cost?: number }, now: number): void {
    const amounts = checkedAmounts(actual, "actual");
    this.#releaseExpired(now);
    const reservation = typeof reservationId === "string" ? this.#reservations.get(reservationId) : undefined;
    if (reservation === undefined) {
      throw new EngineError(
        "RESERVATION_NOT_FOUND",
        404,
        `No open token reservation ${String(reservationId)}: it was already reconciled, or it expired after ${this.#ttlMs} ms and was released`,
        { reservationId },
      );
    }
    this.#reservations.delete(reservationId);
    for (const kind of ["tokens", "cost"] as const) {
      const limit = this.#limit(reservation.agentId, kind);
      if (limit !== undefined && amounts[kind] > 0) {
        this.#window(reservation.agentId, kind, limit, now, true)!.used += amounts[kind];
      }
    }
  }

  #reserved(agentId: string, kind: "tokens" | "cost"): number {
    let sum = 0;
    for (const r of this.#reservations.values()) if (r.agentId === agentId) sum += r[kind];
    return sum;
  }

  #releaseExpired(now: number): void {
    for (const [id, r] of this.#reservations) if (r.expiresAt <= now) this.#reservations.delete(id);
  }

  /** The agent's usage of every configured budget (no store read). */
  usage(agentId: string, now: number): Partial<Record<BudgetKind, BudgetUsage>> {
    if (this.inactive) return {};
    this.#releaseExpired(now);
    const out: Partial<Record<BudgetKind, BudgetUsage>> = {};
    for (const kind of KINDS) {
      const limit = this.#limit(agentId, kind);
      if (limit === undefined) continue;
      const window = this.#window(agentId, kind, limit, now, false);
      out[kind] = {
        limit: limit.limit,
        windowMs: limit.windowMs,
        used: window?.used ?? 0,
        reserved: kind === "calls" ? 0 : this.#reserved(agentId, kind),
        ...(window ? { resetsAt: new Date(window.startedAt + limit.windowMs).toISOString() } : {}),
      };
    }
    return out;
  }
}

/** Why a call is denied by a spent calls budget: the budget and when its window resets. */
export function callsBudgetSpent(agentId: string, limit: BudgetLimit, startedAt: number): string {
  return `Agent ${agentId} has used its calls budget (${limit.limit} executed calls per ${limit.windowMs} ms); calls are denied until the window resets at ${new Date(startedAt + limit.windowMs).toISOString()}`;
}

function checkedLimits(options: Limits, where: string): Limits {
  if (options === null || typeof options !== "object") {
    throw badOption(where, "must be an object { calls?, tokens?, cost? }");
  }
  const out: Limits = {};
  for (const kind of KINDS) {
    const value = options[kind];
    if (value === undefined) continue;
    const name = `${where}.${kind}`;
    if (value === null || typeof value !== "object")
      throw badOption(name, "must be an object { limit, windowMs }");
    const limitOk =
      typeof value.limit === "number" &&
      Number.isFinite(value.limit) &&
      value.limit >= 0 &&
      (kind === "cost" || Number.isSafeInteger(value.limit));
    if (!limitOk) {
      throw badOption(
        `${name}.limit`,
        kind === "cost" ? "must be a finite number of at least 0" : "must be an integer of at least 0",
      );
    }
    if (!Number.isSafeInteger(value.windowMs) || value.windowMs < 1) {
      throw badOption(`${name}.windowMs`, "must be a positive integer (milliseconds)");
    }
    out[kind] = { limit: value.limit, windowMs: value.windowMs };
  }
  return out;
}

function checkedAmounts(
  value: { tokens?: number; cost?: number },
  what: string,
): { tokens: number; cost: number } {
  if (value === null || typeof value !== "object") {
    throw invalidAmount(`${what} must be an object { tokens?, cost? }`, what);
  }
  const tokens = value.tokens ?? 0;
  const cost = value.cost ?? 0;
  if (!Number.isSafeInteger(tokens) || tokens < 0) {
    throw invalidAmount(`${what}.tokens must be an integer of at least 0`, `${what}.tokens`);
  }
  if (typeof cost !== "number" || !Number.isFinite(cost) || cost < 0) {
    throw invalidAmount(`${what}.cost must be a finite number of at least 0`, `${what}.cost`);
  }
  return { tokens, cost };
}

function badOption(option: string, problem: string): EngineError {
  return new EngineError("INVALID_OPTIONS", 400, `\`${option}\` ${problem}`, { option });
}

function invalidAmount(message: string, field: string): EngineError {
  return new EngineError("INVALID_REQUEST", 400, message, { field });
}

/** A policy file's `budgets:` section as engine budgets (windows are durations such as "1h"). */
export function budgetsFromPolicy(budgets: PolicyBudgets | undefined): BudgetOptions {
  if (budgets === undefined) return {};
  const limits = (rules: Omit<PolicyBudgets, "agents">): Limits => {
    const out: Limits = {};
    for (const kind of KINDS) {
      const rule = rules[kind];
      if (rule) out[kind] = { limit: rule.limit, windowMs: parseDuration(rule.window) };
    }
    return out;
  };
  const options: BudgetOptions = limits(budgets);
  if (budgets.agents) {
    options.perAgent = Object.fromEntries(
      Object.entries(budgets.agents).map(([agentId, rules]) => [agentId, limits(rules)]),
    );
  }
  return options;
}

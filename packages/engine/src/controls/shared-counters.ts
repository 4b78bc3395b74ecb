/**
 * Rate limits and the calls budget kept in the store, for stores several processes share
 * (PostgreSQL replicas): every replica of an org checks and counts in the same counters, so N
 * replicas together allow a limit, not N times it. The semantics are the in-memory ones
 * (rate-limits.ts, budgets.ts): fixed windows that start with their first count, a call refused
 * when a counter has reached its limit, counted only when it is admitted. The engine predicts
 * whether the call will count (the policy is evaluated first, it is pure), and the store checks
 * and counts in one atomic step, so a fan-out of parallel calls across replicas cannot pass a
 * limit. A call that ends up not counting after all (its circumstances changed while the counters
 * were read) gives its counts back.
 *
 * The calls of one process that arrive in the same tick share one round trip. Counters whose
 * window has ended for every configured limit are deleted in the background, at most once per
 * sweep interval, so one row per user ever seen does not stay forever.
 */
import type { AuditStore, CounterEntry, CounterVerdict } from "../store/types.js";
import type { Principal } from "../types.js";
import { type Budgets, callsBudgetSpent } from "./budgets.js";
import { limitReached, type RateLimits } from "./rate-limits.js";

/** A count made for a call, to give back if the call ends up not counting. */
export interface SharedCount {
  name: string;
  startedAt: number;
}

/** What the shared counters said about one call. */
export interface SharedVerdict {
  /** Set when the agent's calls budget is spent (checked first, as in memory). */
  overBudget: string | undefined;
  /** Set when a rate limit is reached. */
  overRate: string | undefined;
  /** The calls-budget count made for the call (it was predicted to execute). */
  calls: SharedCount | undefined;
  /** The rate-limit counts made for the call (it was predicted to be admitted). */
  rate: SharedCount[];
}

interface Waiter {
  entries: CounterEntry[];
  resolve: (verdict: CounterVerdict) => void;
  reject: (error: unknown) => void;
}

const PASSED: SharedVerdict = { overBudget: undefined, overRate: undefined, calls: undefined, rate: [] };

/** Counters deleted per statement of a sweep (each statement is its own short transaction). */
const SWEEP_BATCH = 1000;

type CounterStore = Required<Pick<AuditStore, "takeCounters" | "giveCounters">> &
  Pick<AuditStore, "sweepCounters">;

export class SharedCounters {
  readonly #store: CounterStore;
  readonly #org: string;
  readonly #sweepEveryMs: number;
  #nextSweepAt = 0;
  #queue: Waiter[] = [];
  #busy = false;
  readonly #pending = new Set<Promise<unknown>>();

  /** Undefined when the store keeps no shared counters (memory, SQLite: one process). */
  static for(store: AuditStore, org: string, sweepEveryMs: number): SharedCounters | undefined {
    if (store.takeCounters === undefined || store.giveCounters === undefined) return undefined;
    return new SharedCounters(store as CounterStore, org, sweepEveryMs);
  }

  private constructor(store: CounterStore, org: string, sweepEveryMs: number) {
    this.#store = store;
    this.#org = org;
    this.#sweepEveryMs = sweepEveryMs;
  }

  /**
   * Checks one call against the agent's calls budget and the rate limits it touches, counting it
   * in the budget when `takeCalls` (it will execute) and in the rate limits when `takeRate` (it
   * will be admitted). Nothing is counted when any counter has reached its limit.
   */
  async check(
    agentId: string,
    principal: Principal | undefined,
    budgets: Budgets,
    rateLimits: RateLimits,
    takeCalls: boolean,
    takeRate: boolean,
  ): Promise<SharedVerdict> {
    const callsLimit = budgets.callsLimit(agentId);
    const rate = rateLimits.sharedEntries(agentId, principal);
    if (callsLimit === undefined && rate.length === 0) return PASSED;
    this.#maybeSweep(budgets, rateLimits);
    const entries: CounterEntry[] = [];
    const callsName = `calls:${agentId}`;
    if (callsLimit !== undefined) {
      entries.push({
        name: callsName,
        limit: callsLimit.limit,
        windowMs: callsLimit.windowMs,
        take: takeCalls,
      });
    }
    for (const r of rate) {
      entries.push({ name: r.name, limit: r.limit.limit, windowMs: r.limit.windowMs, take: takeRate });
    }
    const verdict = await this.#take(entries);
    const offset = callsLimit === undefined ? 0 : 1;
    if (callsLimit !== undefined) {
      const state = verdict.counters[0]!;
      budgets.mirrorCalls(agentId, state.startedAt, state.used);
    }
    if (verdict.blocked >= 0) {
      const startedAt = verdict.counters[verdict.blocked]!.startedAt!;
      if (verdict.blocked < offset) {
        return { ...PASSED, overBudget: callsBudgetSpent(agentId, callsLimit!, startedAt) };
      }
      const r = rate[verdict.blocked - offset]!;
      return { ...PASSED, overRate: limitReached(r.who, r.scope, r.limit, startedAt) };
    }
    return {
      overBudget: undefined,
      overRate: undefined,
      calls:
        callsLimit !== undefined && takeCalls
          ? { name: callsName, startedAt: verdict.counters[0]!.startedAt! }
          : undefined,
      rate: takeRate
        ? rate.map((r, i) => ({ name: r.name, startedAt: verdict.counters[offset + i]!.startedAt! }))
        : [],
    };
  }

  /** Counts one executed call in the agent's calls budget whatever its use (an approved call released). */
  async countCall(agentId: string, budgets: Budgets): Promise<void> {
    const limit = budgets.callsLimit(agentId);
    if (limit === undefined) return;
    const verdict = await this.#take([
      {
        name: `calls:${agentId}`,
        limit: Number.POSITIVE_INFINITY,
        windowMs: limit.windowMs,
        take: true,
      },
    ]);
    const state = verdict.counters[0]!;
    budgets.mirrorCalls(agentId, state.startedAt, state.used);
  }

  /**
   * Gives back counts of a call that ended up not counting, in the background. If this fails the
   * counters stay one higher until their window rolls: stricter, never looser.
   */
  give(counts: SharedCount[]): void {
    if (counts.length === 0) return;
    const pending = this.#store.giveCounters(this.#org, counts).catch(() => undefined);
    this.#pending.add(pending);
    void pending.finally(() => this.#pending.delete(pending));
  }

  /**
   * Starts a background sweep when the interval has passed: counters whose window ended at least
   * the longest configured window ago hold nothing any limit still counts (a take would roll them
   * to a fresh window), so deleting them changes no decision. A failed sweep is retried next time.
   */
  #maybeSweep(budgets: Budgets, rateLimits: RateLimits): void {
    const sweep = this.#store.sweepCounters;
    const now = Date.now();
    if (sweep === undefined || now < this.#nextSweepAt) return;
    this.#nextSweepAt = now + this.#sweepEveryMs;
    const longest = Math.max(budgets.longestCallsWindowMs(), rateLimits.longestWindowMs());
    if (longest === 0) return;
    const sweeping = (async () => {
      while ((await sweep.call(this.#store, this.#org, longest, SWEEP_BATCH)) === SWEEP_BATCH) {}
    })().catch(() => undefined);
    this.#pending.add(sweeping);
    void sweeping.finally(() => this.#pending.delete(sweeping));
  }

  /** Resolves once nothing is queued, being checked, given back or swept. */
  async drain(): Promise<void> {
    while (this.#busy || this.#queue.length > 0 || this.#pending.size > 0) {
      await Promise.all([...this.#pending]);
      if (this.#busy || this.#queue.length > 0) await new Promise((resolve) => setImmediate(resolve));
    }
  }

  #take(entries: CounterEntry[]): Promise<CounterVerdict> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ entries, resolve, reject });
      if (!this.#busy) {
        this.#busy = true;
        queueMicrotask(() => void this.#flush());
      }
    });
  }

  /** One statement per batch, one batch at a time: calls arriving meanwhile form the next batch. */
  async #flush(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue;
      this.#queue = [];
      try {
        const verdicts = await this.#store.takeCounters(
          this.#org,
          batch.map((w) => w.entries),
        );
        for (let i = 0; i < batch.length; i++) batch[i]!.resolve(verdicts[i]!);
      } catch (error) {
        for (const waiter of batch) waiter.reject(error);
      }
    }
    this.#busy = false;
  }
}

/**
 * Rate limits per user, per agent and per tenant, kept in this process's memory in fixed windows
 * (the approach of budgets.ts): a counter's window starts with its first counted call and resets
 * `windowMs` later. A user's counter is keyed by (tenant, user id), so every agent and sub-agent
 * acting for that user shares it and two tenants never share one; an agent's counter is keyed by
 * (tenant, agent id). The check and the count run synchronously inside one decision, so
 * concurrent calls cannot overshoot a limit.
 */
import { type PolicyRateLimits, parseDuration } from "@aa/policy";
import { EngineError } from "../errors.js";
import type { Principal, RateLimit, RateLimitOptions, RateLimitScope } from "../types.js";

const SCOPES: readonly RateLimitScope[] = ["user", "agent", "tenant"];
/** Counters kept per scope before expired windows are swept (so many one-off users cannot grow memory forever). */
const SWEEP_AT = 10_000;

interface Window {
  startedAt: number;
  used: number;
}

/** Keys never collide across tenants: the separator cannot occur in an id (NUL is not allowed there). */
const key = (tenant: string, id: string) => `${tenant}\u0000${id}`;

export class RateLimits {
  #limits: Partial<Record<RateLimitScope, RateLimit>> = {};
  readonly #windows: Record<RateLimitScope, Map<string, Window>> = {
    user: new Map(),
    agent: new Map(),
    tenant: new Map(),
  };
  /** True when no limit is configured: the decision path skips rate limits entirely. */
  inactive = true;

  /** The tenant of calls whose principal names none (the engine's org). */
  readonly #defaultTenant: string;
  /** Sweep windows whose time is up once a scope holds this many counters. */
  #sweepAt = SWEEP_AT;

  constructor(options: RateLimitOptions, defaultTenant: string) {
    this.#defaultTenant = defaultTenant;
    this.setLimits(options);
  }

  /** Replaces the limits (e.g. from a new policy); calls counted in open windows are kept. */
  setLimits(options: RateLimitOptions): void {
    if (options === null || typeof options !== "object") {
      throw badOption("rateLimits", "must be an object { user?, agent?, tenant? }");
    }
    const limits: Partial<Record<RateLimitScope, RateLimit>> = {};
    for (const scope of SCOPES) {
      const value = options[scope];
      if (value === undefined) continue;
      const name = `rateLimits.${scope}`;
      if (value === null || typeof value !== "object")
        throw badOption(name, "must be an object { limit, windowMs }");
      if (!Number.isSafeInteger(value.limit) || value.limit < 1) {
        throw badOption(`${name}.limit`, "must be an integer of at least 1");
      }
      if (!Number.isSafeInteger(value.windowMs) || value.windowMs < 1) {
        throw badOption(`${name}.windowMs`, "must be a positive integer (milliseconds)");
      }
      limits[scope] = { limit: value.limit, windowMs: value.windowMs };
    }
    this.#limits = limits;
    this.inactive = Object.keys(limits).length === 0;
  }

  /** The counter keys one call touches, by scope (a user counter only when the call names a user). */
  #keys(agentId: string, principal: Principal | undefined): [RateLimitScope, string, string][] {
    const tenant = principal?.tenant ?? this.#defaultTenant;
    const out: [RateLimitScope, string, string][] = [];
    if (principal !== undefined && this.#limits.user)
      out.push(["user", key(tenant, principal.userId), `User ${principal.userId} (tenant ${tenant})`]);
    if (this.#limits.agent) out.push(["agent", key(tenant, agentId), `Agent ${agentId} (tenant ${tenant})`]);
    if (this.#limits.tenant) out.push(["tenant", tenant, `Tenant ${tenant}`]);
    return out;
  }

  #window(scope: RateLimitScope, id: string, limit: RateLimit, now: number): Window | undefined {
    const window = this.#windows[scope].get(id);
    if (window !== undefined && now - window.startedAt >= limit.windowMs) {
      window.startedAt = now;
      window.used = 0;
    }
    return window;
  }

  /** Why the call would pass a limit (naming the limit and when it resets), or undefined when it fits. */
  exceeded(agentId: string, principal: Principal | undefined, now: number): string | undefined {
    if (this.inactive) return undefined;
    for (const [scope, id, who] of this.#keys(agentId, principal)) {
      const limit = this.#limits[scope]!;
      const window = this.#window(scope, id, limit, now);
      if (window !== undefined && window.used >= limit.limit)
        return limitReached(who, scope, limit, window.startedAt);
    }
    return undefined;
  }

  /**
   * The counters one call touches, for counters kept in the store (shared by replicas): names are
   * unique per org and never collide across scopes or tenants.
   */
  sharedEntries(
    agentId: string,
    principal: Principal | undefined,
  ): { name: string; who: string; scope: RateLimitScope; limit: RateLimit }[] {
    if (this.inactive) return [];
    const tenant = principal?.tenant ?? this.#defaultTenant;
    return this.#keys(agentId, principal).map(([scope, , who]) => ({
      // The tenant's length makes the name unambiguous whatever characters the ids contain.
      name: `rate:${scope}:${tenant.length}:${tenant}:${scope === "user" ? principal!.userId : scope === "agent" ? agentId : ""}`,
      who,
      scope,
      limit: this.#limits[scope]!,
    }));
  }

  /** The longest window of any configured limit (0 when none). */
  longestWindowMs(): number {
    let longest = 0;
    for (const scope of SCOPES) longest = Math.max(longest, this.#limits[scope]?.windowMs ?? 0);
    return longest;
  }

  /** Counts one admitted call against every counter it touches. */
  count(agentId: string, principal: Principal | undefined, now: number): void {
    if (this.inactive) return;
    for (const [scope, id] of this.#keys(agentId, principal)) {
      const limit = this.#limits[scope]!;
      const window = this.#window(scope, id, limit, now);
      if (window !== undefined) {
        window.used++;
        continue;
      }
      const windows = this.#windows[scope];
      if (windows.size >= this.#sweepAt) this.#sweep(windows, limit.windowMs, now);
      windows.set(id, { startedAt: now, used: 1 });
    }
  }

  /** Drops windows whose time is up (they would restart at 0 anyway). */
  #sweep(windows: Map<string, Window>, windowMs: number, now: number): void {
    for (const [id, window] of windows) if (now - window.startedAt >= windowMs) windows.delete(id);
    this.#sweepAt = Math.max(SWEEP_AT, windows.size * 2);
  }
}

/** Why a call is denied by a reached limit: who, the limit, the window and when it resets. */
export function limitReached(
  who: string,
  scope: RateLimitScope,
  limit: RateLimit,
  startedAt: number,
): string {
  const resetsAt = new Date(startedAt + limit.windowMs).toISOString();
  return `${who} reached the ${scope} rate limit of ${limit.limit} calls per ${limit.windowMs} ms; calls are denied until the window resets at ${resetsAt}`;
}

function badOption(option: string, problem: string): EngineError {
  return new EngineError("INVALID_OPTIONS", 400, `\`${option}\` ${problem}`, { option });
}

/** A policy file's `rate_limits:` section as engine limits (windows are durations such as "1m"). */
export function rateLimitsFromPolicy(rateLimits: PolicyRateLimits | undefined): RateLimitOptions {
  const options: RateLimitOptions = {};
  if (rateLimits === undefined) return options;
  for (const scope of SCOPES) {
    const rule = rateLimits[scope];
    if (rule) options[scope] = { limit: rule.limit, windowMs: parseDuration(rule.window) };
  }
  return options;
}

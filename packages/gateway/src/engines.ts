/**
 * One engine per org on the shared database (the store's tables are org-keyed), opened on first
 * use with the org's stored policy, or the gateway's default policy when an admin never set one.
 */
import { type DecisionEngine, type EngineOptions, openEngine } from "@aa/engine";
import type { CompiledPolicy, PolicyDocument } from "@aa/policy";
import type { GatewayStore } from "./gateway-store.js";

/** Engine settings every org's engine gets (everything but the store, the org and the policy). */
export type SharedEngineOptions = Omit<EngineOptions, "store" | "orgId" | "policy">;

export class EnginePool {
  readonly #store: string;
  readonly #gatewayStore: GatewayStore;
  readonly #defaultPolicy: CompiledPolicy | PolicyDocument;
  readonly #options: SharedEngineOptions;
  readonly #engines = new Map<string, Promise<DecisionEngine>>();
  #closed = false;

  constructor(
    store: string,
    gatewayStore: GatewayStore,
    defaultPolicy: CompiledPolicy | PolicyDocument,
    options: SharedEngineOptions,
  ) {
    this.#store = store;
    this.#gatewayStore = gatewayStore;
    this.#defaultPolicy = defaultPolicy;
    this.#options = options;
  }

  /** The org's engine (opened once; a failed open is retried by the next request). */
  get(orgId: string): Promise<DecisionEngine> {
    const existing = this.#engines.get(orgId);
    if (existing) return existing;
    const opening = this.#open(orgId);
    this.#engines.set(orgId, opening);
    opening.catch(() => {
      if (this.#engines.get(orgId) === opening) this.#engines.delete(orgId);
    });
    return opening;
  }

  /** Engines already open (for JWKS over every org this gateway serves). */
  async openEngines(): Promise<DecisionEngine[]> {
    const settled = await Promise.allSettled([...this.#engines.values()]);
    return settled.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  }

  async #open(orgId: string): Promise<DecisionEngine> {
    if (this.#closed) throw new Error("the gateway is shutting down");
    const stored = await this.#gatewayStore.getPolicy(orgId);
    return openEngine({
      ...this.#options,
      store: this.#store,
      orgId,
      policy: stored?.policy ?? this.#defaultPolicy,
    });
  }

  /** Closes every engine (each writes its final checkpoint); failures are collected, not hidden. */
  async close(): Promise<void> {
    this.#closed = true;
    const engines = await this.openEngines();
    this.#engines.clear();
    const results = await Promise.allSettled(engines.map((engine) => engine.close()));
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed.length > 0) {
      throw new AggregateError(
        failed.map((f) => f.reason),
        `${failed.length} engine(s) failed to close`,
      );
    }
  }
}

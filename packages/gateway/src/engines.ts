/**
 * One engine per org on the shared database (the store's tables are org-keyed), opened on first
 * use with the org's stored policy, or the gateway's default policy when an admin never set one.
 */
import { type DecisionEngine, type EngineOptions, openEngine } from "@aa/engine";
import type { CompiledPolicy, PolicyDocument } from "@aa/policy";
import type { GatewayStore } from "./gateway-store.js";

/** Engine settings every org's engine gets (everything but the store, the org and the policy). */
export type SharedEngineOptions = Omit<EngineOptions, "store" | "orgId" | "policy">;

/** How often each open org's stored policy is compared with the one its engine enforces. */
const POLICY_CHECK_MS = 1000;

export class EnginePool {
  readonly #store: string;
  readonly #gatewayStore: GatewayStore;
  readonly #defaultPolicy: CompiledPolicy | PolicyDocument;
  readonly #options: SharedEngineOptions;
  readonly #engines = new Map<string, Promise<DecisionEngine>>();
  readonly #timers: NodeJS.Timeout[] = [];
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
    const engine = await openEngine({
      // A server: decisions for requests read in the same I/O phase share one commit.
      groupCommit: "io",
      ...this.#options,
      store: this.#store,
      orgId,
      policy: stored?.policy ?? this.#defaultPolicy,
    });
    if (this.#gatewayStore.kind !== "memory") this.#followPolicies(orgId, engine);
    return engine;
  }

  /**
   * Replicas: a policy replaced through another gateway on this database is enforced here too.
   * Every POLICY_CHECK_MS the org's stored policy hash (one row) is compared with the engine's;
   * when they differ the engine adopts the stored policy, but only once the audit chain records
   * it as the newest change (the replica that made it appends the record first, then stores it).
   */
  #followPolicies(orgId: string, engine: DecisionEngine): void {
    let warnedAbout: string | undefined;
    /** A mismatch seen once may be this replica's own change between its record and its store write. */
    let seenOnce: string | undefined;
    let checking = false;
    const timer = setInterval(() => {
      if (checking || this.#closed) return;
      checking = true;
      void (async () => {
        try {
          const stored = await this.#gatewayStore.getPolicy(orgId);
          if (stored === undefined || stored.policyHash === engine.policyHash) return;
          if (await engine.adoptRecordedPolicy(stored.policy)) return;
          if (seenOnce !== stored.policyHash) {
            seenOnce = stored.policyHash;
            return;
          }
          if (warnedAbout !== stored.policyHash) {
            warnedAbout = stored.policyHash;
            process.emitWarning(
              `org ${orgId}: the stored policy ${stored.policyHash} is not the newest policy change in the audit chain; this gateway keeps enforcing ${engine.policyHash} (replace the policy again with PUT /v1/policies to settle it)`,
              "AssemblyGatewayWarning",
            );
          }
        } catch {
          // Store unreachable or engine closing: the next tick tries again.
        } finally {
          checking = false;
        }
      })();
    }, POLICY_CHECK_MS);
    timer.unref();
    this.#timers.push(timer);
  }

  /** Closes every engine (each writes its final checkpoint); failures are collected, not hidden. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const timer of this.#timers.splice(0)) clearInterval(timer);
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

/**
 * One engine per org on the shared database (the store's tables are org-keyed), opened on first
 * use with the org's stored policy, or the gateway's default policy when an admin never set one.
 * The stored policy is checked against the audit chain at open and every POLICY_CHECK_MS after:
 * a row changed without `PUT /v1/policies` puts the org in the tampered state (docs/policy.md).
 */
import { type DecisionEngine, type EngineOptions, openEngine, type PolicyTamperFinding } from "@aa/engine";
import {
  type CompiledPolicy,
  compilePolicy,
  type PolicyDocument,
  PolicyValidationError,
  validatePolicy,
} from "@aa/policy";
import type { GatewayStore, ReadPolicy } from "./gateway-store.js";

/** Engine settings every org's engine gets (everything but the store, the org and the policy). */
export type SharedEngineOptions = Omit<EngineOptions, "store" | "orgId" | "policy">;

/** How often each open org's stored policy is compared with the one its engine enforces. */
const POLICY_CHECK_MS = 1000;

const FIX =
  "Every call for this org is denied (POLICY_TAMPERED) until an admin replaces the policy through PUT /v1/policies, which records it in the audit chain and ends this state.";

/** What comparing an org's stored policy row with its audit chain found. */
type PolicyCheck =
  /** No row, and the chain shows no policy replaced through PUT /v1/policies: the default applies. */
  | { kind: "default" }
  /** The row is the chain's newest policy change: enforce it. */
  | { kind: "recorded"; policy: CompiledPolicy }
  /**
   * The row is an older recorded policy, or missing after a recorded PUT: a PUT between its audit
   * record and its row write looks like this for a moment, so it is tampering only if it lasts.
   * `key` names the situation (row hash and newest record), `policy` is the row when it has one.
   */
  | { kind: "behind"; key: string; policy: CompiledPolicy | undefined; finding: PolicyTamperFinding }
  /** Nothing a legitimate update produces, even for a moment. */
  | { kind: "tampered"; finding: PolicyTamperFinding };

export class EnginePool {
  readonly #store: string;
  readonly #gatewayStore: GatewayStore;
  readonly #defaultPolicy: CompiledPolicy;
  readonly #options: SharedEngineOptions;
  readonly #engines = new Map<string, Promise<DecisionEngine>>();
  /** Per org: the running `replacePolicy`, which the policy check waits for rather than races. */
  readonly #replacing = new Map<string, Promise<unknown>>();
  /** The last stored row compiled, by org: a row that did not change is not validated again. */
  readonly #compiled = new Map<string, { text: string; hash: string; result: CompiledPolicy | string }>();
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
    this.#defaultPolicy =
      typeof (defaultPolicy as CompiledPolicy).evaluate === "function"
        ? (defaultPolicy as CompiledPolicy)
        : compilePolicy(defaultPolicy as PolicyDocument);
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

  /** Orgs whose open engine denies every call because their stored policy was tampered with. */
  async tamperedOrgs(): Promise<string[]> {
    const engines = await this.openEngines();
    return engines.filter((e) => e.policyIntegrity.state === "tampered").map((e) => e.orgId);
  }

  /**
   * `PUT /v1/policies`: records the change in the org's chain (which ends a tampered state), then
   * stores the row. The org's policy check waits while this runs, so it never sees this replica's
   * own record without its row.
   */
  async replacePolicy(orgId: string, document: PolicyDocument, changedBy: string): Promise<string> {
    const engine = await this.get(orgId);
    const previous = this.#replacing.get(orgId) ?? Promise.resolve();
    const run = previous
      .catch(() => undefined)
      .then(async () => {
        await engine.setPolicy(document, changedBy);
        await this.#gatewayStore.putPolicy({
          orgId,
          policy: document,
          policyHash: engine.policyHash,
          updatedAt: new Date().toISOString(),
          updatedBy: changedBy,
        });
        return engine.policyHash;
      });
    this.#replacing.set(orgId, run);
    try {
      return await run;
    } finally {
      if (this.#replacing.get(orgId) === run) this.#replacing.delete(orgId);
    }
  }

  async #open(orgId: string): Promise<DecisionEngine> {
    if (this.#closed) throw new Error("the gateway is shutting down");
    const stored = await this.#gatewayStore.getPolicy(orgId);
    // Opened with the default policy and nothing recorded; the row is enforced only once the
    // chain shows it was recorded, never because the database says so.
    const engine = await openEngine({
      // A server: decisions for requests read in the same I/O phase share one commit.
      groupCommit: "io",
      ...this.#options,
      store: this.#store,
      orgId,
      policy: this.#defaultPolicy,
      policyChangeAtOpen: "none",
    });
    try {
      const check = await this.#check(orgId, stored, engine);
      let seenOnce: string | undefined;
      if (check.kind === "default") {
        // The gateway's own policy (its configuration) may have changed since the chain last
        // recorded one: record that, as an embedded engine does for an edited policy file.
        await engine.recordPolicyAtOpen();
      } else if (check.kind === "recorded") {
        await engine.adoptRecordedPolicy(check.policy);
      } else if (check.kind === "behind") {
        // Maybe another replica's PUT in flight: enforce the recorded row, decide at the next check.
        if (check.policy !== undefined) await engine.adoptRecordedPolicy(check.policy, { newest: false });
        seenOnce = check.key;
      } else {
        await this.#markTampered(orgId, engine, check.finding);
      }
      if (this.#gatewayStore.kind !== "memory") this.#followPolicies(orgId, engine, seenOnce);
      return engine;
    } catch (error) {
      await engine.close().catch(() => undefined);
      throw error;
    }
  }

  /**
   * Replicas and tampering: every POLICY_CHECK_MS the org's stored row is compared with the audit
   * chain. A row that is the chain's newest policy change is enforced (a change made through
   * another replica, which appends the record first, then stores the row); a row that is not puts
   * the org in the tampered state, at once when no legitimate update can produce it, or when it
   * is seen twice in a row otherwise (see `PolicyCheck`).
   */
  #followPolicies(orgId: string, engine: DecisionEngine, seenFirst: string | undefined): void {
    /** A `behind` row seen once may be a PUT between its record and its row write. */
    let seenOnce = seenFirst;
    let checking = false;
    const timer = setInterval(() => {
      if (checking || this.#closed) return;
      checking = true;
      void (async () => {
        try {
          await this.#replacing.get(orgId)?.catch(() => undefined);
          const check = await this.#check(orgId, await this.#gatewayStore.getPolicy(orgId), engine);
          if (check.kind === "behind") {
            if (seenOnce === check.key) await this.#markTampered(orgId, engine, check.finding);
            seenOnce = check.key;
            return;
          }
          seenOnce = undefined;
          if (check.kind === "recorded") {
            if (check.policy.hash !== engine.policyHash || engine.policyIntegrity.state === "tampered") {
              await engine.adoptRecordedPolicy(check.policy);
            }
          } else if (check.kind === "tampered") {
            await this.#markTampered(orgId, engine, check.finding);
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

  async #markTampered(orgId: string, engine: DecisionEngine, finding: PolicyTamperFinding): Promise<void> {
    const before = engine.policyIntegrity;
    await engine.markPolicyTampered(finding);
    if (before.state !== "tampered" || before.message !== finding.message) {
      process.emitWarning(`org ${orgId}: ${finding.message}`, "AssemblyGatewayWarning");
    }
  }

  /** Compares the org's stored row with the policy changes its audit chain records. */
  async #check(orgId: string, stored: ReadPolicy | undefined, engine: DecisionEngine): Promise<PolicyCheck> {
    const recorded = await engine.recordedPolicies();
    const newest = recorded.newest;
    const newestText = newest === undefined ? "none" : newest.hash;
    const finding = (storedHash: string, problem: string): PolicyTamperFinding => ({
      storedHash,
      recordedHash: newest?.hash ?? null,
      message: `The policy stored for org ${orgId} ${problem}. ${FIX}`,
      detectedBy: "gateway",
    });
    if (stored === undefined) {
      // Policy changes recorded at open are the gateway's default policy changing; any other
      // recorded change was a PUT, whose row must be there.
      if (newest === undefined || newest.openedWith || newest.hash === this.#defaultPolicy.hash) {
        return { kind: "default" };
      }
      return {
        kind: "behind",
        key: `missing@${newest.seq}`,
        policy: undefined,
        finding: finding(
          "none",
          `is missing (its row was deleted), but the audit chain's newest policy change (${newestText}) was made through PUT /v1/policies`,
        ),
      };
    }
    const compiled = this.#compile(orgId, stored);
    if (typeof compiled === "string") {
      return { kind: "tampered", finding: finding(stored.policyHash, compiled) };
    }
    if (compiled.hash !== stored.policyHash) {
      return {
        kind: "tampered",
        finding: finding(
          stored.policyHash,
          `does not match its hash: the row's policy_hash is ${stored.policyHash} but its policy hashes to ${compiled.hash} (edited in the database without PUT /v1/policies; the audit chain's newest policy change is ${newestText})`,
        ),
      };
    }
    if (newest?.hash === compiled.hash) return { kind: "recorded", policy: compiled };
    if (!recorded.hashes.has(compiled.hash)) {
      return {
        kind: "tampered",
        finding: finding(
          stored.policyHash,
          `(${stored.policyHash}) was never recorded in the audit chain (written to the database without PUT /v1/policies; the chain's newest policy change is ${newestText})`,
        ),
      };
    }
    return {
      kind: "behind",
      key: `${compiled.hash}@${newest?.seq ?? 0}`,
      policy: compiled,
      finding: finding(
        stored.policyHash,
        `(${stored.policyHash}) is not the audit chain's newest policy change (${newestText}): the row was restored or edited in the database, or a PUT /v1/policies stopped between its audit record and its row`,
      ),
    };
  }

  /** The stored row validated and compiled, or why it cannot be (cached while the row is unchanged). */
  #compile(orgId: string, stored: ReadPolicy): CompiledPolicy | string {
    const cached = this.#compiled.get(orgId);
    if (cached !== undefined && cached.text === stored.text && cached.hash === stored.policyHash) {
      return cached.result;
    }
    let result: CompiledPolicy | string;
    try {
      result = compilePolicy(validatePolicy(stored.policy, { source: "aa_gateway_policies" }));
    } catch (error) {
      const why =
        stored.policy === null
          ? "its text is not JSON"
          : error instanceof PolicyValidationError
            ? `it does not validate (${error.issues.length} issue(s), first: ${error.issues[0]?.message ?? "unknown"})`
            : `it cannot be compiled (${(error as Error).message})`;
      result = `(policy_hash ${stored.policyHash}) is not a valid policy: ${why}; it was edited in the database without PUT /v1/policies`;
    }
    this.#compiled.set(orgId, { text: stored.text, hash: stored.policyHash, result });
    return result;
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

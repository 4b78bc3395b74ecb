/**
 * The embedded gate: @aa/engine in this process, loaded only when no gateway is configured so a
 * process that talks to a remote gateway never loads a store.
 */
import type { PolicyDocument } from "@aa/policy";
import { AssemblyTimeoutError } from "../errors.js";
import type { Gate } from "../internal-types.js";
import { toAssemblyError } from "./errors.js";

export async function openEmbeddedGate(options: { policy: PolicyDocument; store: string }): Promise<Gate> {
  const { openEngine } = await import("@aa/engine");
  const engine = await openEngine({ policy: options.policy, store: options.store }).catch(
    (error: unknown) => {
      throw toAssemblyError(error, "could not open the embedded gate");
    },
  );
  const call = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (error) {
      throw toAssemblyError(error);
    }
  };
  return {
    kind: "embedded",
    get policyHash() {
      return engine.policyHash;
    },
    // The hot path: no wrapper closure, errors are mapped by the interceptor.
    orgId: engine.orgId,
    decide: (request) => engine.decide(request),
    awaitApproval: (id, opts) =>
      call(() => engine.awaitApproval(id, opts)).catch((error: unknown) => {
        // The wait ended undecided: that is the caller's timeout, not a gate failure.
        if ((error as { code?: unknown }).code === "APPROVAL_WAIT_TIMEOUT")
          throw new AssemblyTimeoutError(id);
        throw error;
      }),
    agentState: (agentId) => engine.agentState(agentId),
    reserveTokens: (agentId, estimate) => engine.reserveTokens(agentId, estimate),
    reconcileTokens: (id, actual) => engine.reconcileTokens(id, actual),
    releaseApproval: (id, agentId) => call(() => engine.releaseApproval(id, agentId)),
    getApproval: (id) => call(() => engine.getApproval(id)),
    listApprovals: (filter) => call(() => engine.listApprovals(filter)),
    approve: (id, reviewer, reason) => call(() => engine.approve(id, reviewer, reason)),
    deny: (id, reviewer, reason) => call(() => engine.deny(id, reviewer, reason)),
    report: (id, outcome, agentId) => call(() => engine.report(id, outcome, agentId)),
    audit: (query) => call(() => engine.audit(query)),
    verify: () => call(() => engine.verify()),
    posture: () => call(() => engine.posture()),
    setPolicy: (policy, changedBy) => call(() => engine.setPolicy(policy, changedBy)),
    delegate: (parent, name, options) => call(() => engine.delegate(parent, name, options)),
    // The engine checks the acting agent itself; a token only matters over the wire.
    revokeDelegation: (id, by, options) =>
      call(() =>
        engine.revokeDelegation(id, by, options?.agentId === undefined ? {} : { agentId: options.agentId }),
      ),
    listDelegations: (filter) => call(() => engine.listDelegations(filter)),
    subscribe: (callback, options) => call(() => engine.subscribe(callback, options)),
    close: () => call(() => engine.close()),
  };
}

/**
 * Delegation on the governance client: `delegate()` creates a child agent that acts for this one
 * within narrower capabilities, for a limited time, and yields a child client with the same
 * surface. Calls made through the child, and tool calls any adapter intercepts inside
 * `child.run(fn)` (or inside the callback form), are attributed to and limited by the child.
 *
 * The "which delegation is current" marker is an AsyncLocalStorage created only when a process
 * first delegates: entering one slows every later await of the process on Node 22, so processes
 * that never delegate never pay for it, and the interceptor only reads it (`getStore()`).
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { Delegation, DelegationGrant } from "@aa/engine";
import type { GovernanceClient } from "./client.js";
import { AssemblyError } from "./errors.js";
import { toAssemblyError } from "./gate/errors.js";
import type { Gate } from "./internal-types.js";

/** What a child may do and for how long. */
export interface DelegateOptions {
  /** Action-type globs (policy `action` syntax: `*` within a segment, `**` anything); a subset of the parent's. */
  capabilities: string[];
  /** Lifetime in seconds, at most 86 400 and never past the parent's expiry. Default 3600 (or the parent's remaining time). */
  ttl?: number;
}

/** One child of a `parallel()` fan-out. */
export interface DelegationSpec extends DelegateOptions {
  /** The child's name: its agent id is `<parent agent id>/<name>`. */
  name: string;
}

/** Which delegations `delegations()` lists, relative to this client's agent. */
export interface DelegationsQuery {
  /** `parent` (default): the delegations this agent issued; `child`: the ones it holds; `ancestor`: every delegation below it. */
  role?: "parent" | "child" | "ancestor";
  /** Only delegations active now. */
  activeOnly?: boolean;
}

/** A child agent's governance client: everything a governance client does, as the child. */
export interface DelegatedClient extends GovernanceClient {
  /** The child's agent id, `<parent>/<name>`. */
  readonly agentId: string;
  /** The delegation as created (id, capabilities, expiry, chain). */
  readonly delegation: Delegation;
  /** The delegation token (EdDSA JWT) the child presents with each call. */
  readonly token: string;
  /**
   * Runs `fn` as the child: tool calls that adapters intercept inside it (and in everything it
   * awaits) are attributed to the child and limited by its capabilities.
   */
  run<T>(fn: () => T): T;
  /** Revokes the delegation (and every delegation below it). Idempotent; `await using` calls it. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** The delegation a tool call is made under (read by the interceptor). */
export interface DelegatedCall {
  agentId: string;
  token: string;
}

const STORAGE_KEY = Symbol.for("agent-assembly.delegation-context");
// Shared by every copy of @aa/core in the process (ESM and CJS), like the process context.
const shared = globalThis as typeof globalThis & { [STORAGE_KEY]?: AsyncLocalStorage<DelegatedCall> };
// An own property, even undefined: the per-call read of a property the global object lacks costs
// ~25 ns on Node 22, an own one ~2 ns (see trace.ts).
if (!(STORAGE_KEY in shared)) shared[STORAGE_KEY] = undefined;

/** The delegation of the current async context, if a `run()` is active. Never creates the storage. */
export function currentDelegation(): DelegatedCall | undefined {
  return shared[STORAGE_KEY]?.getStore();
}

function storage(): AsyncLocalStorage<DelegatedCall> {
  shared[STORAGE_KEY] ??= new AsyncLocalStorage<DelegatedCall>();
  return shared[STORAGE_KEY];
}

/** The delegation methods of a governance client acting as `agent` (a root, or a child with its token). */
export interface DelegationMethods {
  delegate(name: string, options: DelegateOptions): Promise<DelegatedClient>;
  delegate<T>(
    name: string,
    options: DelegateOptions,
    fn: (child: DelegatedClient) => T | Promise<T>,
  ): Promise<T>;
  parallel<T>(
    specs: DelegationSpec[],
    task: (child: DelegatedClient, spec: DelegationSpec, index: number) => T | Promise<T>,
  ): Promise<T[]>;
  delegations(query?: DelegationsQuery): Promise<Delegation[]>;
  revoke(delegationId: string): Promise<Delegation>;
}

export function delegationMethods(settings: {
  gate: Gate;
  agentId: string;
  token: string | undefined;
  /** Builds the child's governance client (the same factory that built this one). */
  clientFor: (grant: DelegationGrant) => GovernanceClient;
}): DelegationMethods {
  const { gate, agentId, token } = settings;
  const need = <K extends "delegate" | "revokeDelegation" | "listDelegations">(method: K) => {
    const fn = gate[method];
    if (fn === undefined) {
      throw new AssemblyError(
        "NOT_SUPPORTED",
        `this gate does not offer delegation (${method}); use the embedded gate`,
      );
    }
    return fn.bind(gate) as NonNullable<Gate[K]>;
  };

  const create = async (name: string, options: DelegateOptions): Promise<DelegatedClient> => {
    if (options === null || typeof options !== "object") {
      throw new AssemblyError(
        "INVALID_REQUEST",
        "delegate(name, options) needs options { capabilities, ttl? }",
        {
          field: "options",
        },
      );
    }
    let grant: DelegationGrant;
    try {
      grant = await need("delegate")(
        token === undefined ? { agentId } : { agentId, delegationToken: token },
        name,
        {
          capabilities: options.capabilities,
          ...(options.ttl === undefined ? {} : { ttlSeconds: options.ttl }),
        },
      );
    } catch (error) {
      throw toAssemblyError(error);
    }
    return childClient(settings.clientFor(grant), grant, (id) => revoke(id));
  };

  const revoke = async (delegationId: string): Promise<Delegation> => {
    try {
      return await need("revokeDelegation")(
        delegationId,
        agentId,
        token === undefined ? { agentId } : { agentId, delegationToken: token },
      );
    } catch (error) {
      throw toAssemblyError(error);
    }
  };

  async function delegate(name: string, options: DelegateOptions): Promise<DelegatedClient>;
  async function delegate<T>(
    name: string,
    options: DelegateOptions,
    fn: (child: DelegatedClient) => T | Promise<T>,
  ): Promise<T>;
  async function delegate<T>(
    name: string,
    options: DelegateOptions,
    fn?: (child: DelegatedClient) => T | Promise<T>,
  ): Promise<DelegatedClient | T> {
    if (fn !== undefined && typeof fn !== "function") {
      throw new AssemblyError("INVALID_REQUEST", "delegate(name, options, fn): fn must be a function", {
        field: "fn",
      });
    }
    const child = await create(name, options);
    if (fn === undefined) return child;
    return settle([child], () => child.run(() => fn(child)));
  }

  return {
    delegate,

    async parallel<T>(
      specs: DelegationSpec[],
      task: (child: DelegatedClient, spec: DelegationSpec, index: number) => T | Promise<T>,
    ): Promise<T[]> {
      if (!Array.isArray(specs) || specs.length === 0 || typeof task !== "function") {
        throw new AssemblyError(
          "INVALID_REQUEST",
          "parallel(specs, task) needs a non-empty array of { name, capabilities, ttl? } and a task function",
          { field: "specs" },
        );
      }
      const created = await Promise.allSettled(specs.map((spec) => create(spec?.name, spec)));
      const children: DelegatedClient[] = [];
      let failure: { reason: unknown } | undefined;
      for (const outcome of created) {
        if (outcome.status === "fulfilled") children.push(outcome.value);
        else failure ??= { reason: outcome.reason };
      }
      // Some children could not be created: revoke the others, then report why.
      if (failure) return settle(children, () => Promise.reject(failure.reason));
      return settle(children, async () => {
        const results = await Promise.allSettled(
          children.map((child, index) => child.run(() => task(child, specs[index]!, index))),
        );
        const values: T[] = [];
        for (const result of results) {
          if (result.status === "rejected") throw result.reason;
          values.push(result.value);
        }
        return values;
      });
    },

    async delegations(query = {}) {
      if (query === null || typeof query !== "object") {
        throw new AssemblyError("INVALID_REQUEST", "delegations(query) takes { role?, activeOnly? }", {
          field: "query",
        });
      }
      try {
        return await need("listDelegations")(
          {
            agentId,
            role: query.role ?? "parent",
            ...(query.activeOnly === undefined ? {} : { activeOnly: query.activeOnly }),
          },
          token === undefined ? {} : { delegationToken: token },
        );
      } catch (error) {
        throw toAssemblyError(error);
      }
    },

    revoke,
  };
}

function childClient(
  base: GovernanceClient,
  grant: DelegationGrant,
  revoke: (delegationId: string) => Promise<Delegation>,
): DelegatedClient {
  const call: DelegatedCall = Object.freeze({ agentId: grant.delegation.agentId, token: grant.token });
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= revoke(grant.delegation.id).then(
      () => undefined,
      (error: unknown) => {
        closing = undefined; // a failed revocation may be retried
        throw error;
      },
    );
    return closing;
  };
  return Object.assign(base, {
    agentId: grant.delegation.agentId,
    delegation: grant.delegation,
    token: grant.token,
    run: <T>(fn: () => T): T => storage().run(call, fn),
    close,
    [Symbol.asyncDispose]: close,
  });
}

/**
 * Runs `body`, then closes (revokes) every child whatever happened. The body's error wins; a
 * revocation failure after a successful body is thrown; one after a failed body is reported as a
 * warning (the body's error is the one the caller must see).
 */
async function settle<T>(children: DelegatedClient[], body: () => T | Promise<T>): Promise<T> {
  let outcome: { ok: true; value: T } | { ok: false; error: unknown };
  try {
    outcome = { ok: true, value: await body() };
  } catch (error) {
    outcome = { ok: false, error };
  }
  const closed = await Promise.allSettled(children.map((child) => child.close()));
  const closeFailure = closed.find((result) => result.status === "rejected");
  if (!outcome.ok) {
    if (closeFailure) {
      process.emitWarning(
        `Agent Assembly: revoking a delegation after a failed task also failed: ${String((closeFailure.reason as Error)?.message ?? closeFailure.reason)}`,
        { code: "AA_DELEGATION_REVOKE_FAILED" },
      );
    }
    throw outcome.error;
  }
  if (closeFailure) throw closeFailure.reason;
  return outcome.value;
}

/**
 * The interceptor: the one place where a framework's tool call meets the gate. Adapters call
 * `intercept(call, invoke)`; everything about deciding, waiting for approval, failing closed and
 * running the tool exactly once lives here, never in an adapter.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { ActionResult, DecisionRequest } from "@aa/engine";
import { BoundedMemo } from "./bounded-memo.js";
import { currentDelegation } from "./delegation.js";
import { AssemblyDeniedError, type AssemblyError } from "./errors.js";
import { toAssemblyError } from "./gate/errors.js";
import type { Gate } from "./internal-types.js";
import type { EnforcementMode, FailureMode } from "./options.js";
import { currentPrincipal } from "./principal.js";
import { currentTraceScope } from "./trace.js";
import type { FrameworkAdapter, InterceptOptions, Interceptor, ToolCall } from "./types.js";
import { awaitRelease, DEFAULT_APPROVAL_WAIT_MS, deniedError } from "./verdicts.js";

/** How many executed results are remembered for idempotent re-runs (LangGraph resume). */
const EXECUTED_MEMO_LIMIT = 10_000;

export interface InterceptorSettings {
  gate: Gate;
  agent: { id: string; name?: string };
  enforcementMode: EnforcementMode;
  failureMode: FailureMode;
  approvalWaitMs?: number;
}

/** Adapters at this rank or above are backstops (MCP): they skip calls another adapter already governs. */
export const BACKSTOP_RANK = 99;

export class GateInterceptor implements Interceptor {
  readonly #settings: InterceptorSettings;
  #enrichers: FrameworkAdapter[] = [];
  /**
   * Marks "a governed call is executing" so a backstop adapter can tell that the call it sees
   * (an MCP tool inside a governed LangChain tool) is already decided and audited. Only created
   * when a backstop and another adapter are both installed: entering an AsyncLocalStorage slows
   * every later await of the process on Node 22, so processes that cannot nest never pay for it.
   */
  #nesting: AsyncLocalStorage<{ open: boolean }> | undefined;
  /** eventId → result of the execution, so a re-run of the same call does not execute twice. */
  readonly #executed = new BoundedMemo<string, Promise<unknown>>(EXECUTED_MEMO_LIMIT);

  constructor(settings: InterceptorSettings) {
    this.#settings = settings;
  }

  /** Adapters whose `enrichCall` runs for every call (set by initAssembly as adapters install). */
  setEnrichers(adapters: readonly FrameworkAdapter[]): void {
    this.#enrichers = adapters.filter((a) => typeof a.enrichCall === "function");
  }

  /** Turn nesting detection on when a backstop adapter is installed beside another adapter. */
  setNestingDetection(enabled: boolean): void {
    this.#nesting = enabled ? (this.#nesting ?? new AsyncLocalStorage<{ open: boolean }>()) : undefined;
  }

  /** The interceptor an adapter of this rank gets: backstops skip calls made inside a governed call. */
  forRank(rank: number): Interceptor {
    if (rank < BACKSTOP_RANK) return this;
    return {
      intercept: <T>(
        call: ToolCall,
        invoke: () => T | Promise<T>,
        options?: InterceptOptions,
      ): Promise<T> => {
        // Only while the outer call is still running: timers, servers or clients created inside it
        // inherit the async context forever, and their later calls must be decided again.
        if (this.#nesting?.getStore()?.open === true) return (async () => invoke())();
        return this.#intercept(call, invoke, options, false);
      },
    };
  }

  intercept<T>(call: ToolCall, invoke: () => T | Promise<T>, options?: InterceptOptions): Promise<T> {
    return this.#intercept(call, invoke, options, this.#nesting !== undefined);
  }

  /** `markNested`: run the tool inside the nesting frame, so a backstop below it stands aside. */
  async #intercept<T>(
    call: ToolCall,
    invoke: () => T | Promise<T>,
    options: InterceptOptions | undefined,
    markNested: boolean,
  ): Promise<T> {
    const opts = this.#enrich(call, options);
    const eventId = opts?.eventId;
    if (eventId !== undefined) {
      const earlier = this.#executed.get(eventId);
      if (earlier) return earlier as Promise<T>;
    }
    // Inside `child.run()` the call is the child's: attributed to it, limited by its delegation.
    const delegated = currentDelegation();
    // Inside `assembly.trace()`: the call carries the trace id and records its step. A read only.
    const traced = currentTraceScope();
    const request: DecisionRequest = {
      agent: delegated === undefined ? this.#settings.agent : { id: delegated.agentId },
      actionType: call.actionType ?? call.toolName,
      toolName: call.toolName,
      framework: call.framework,
      args: call.args,
      metadata: traced === undefined ? call.metadata : traced.trace.metadataFor(traced, call.metadata),
      toolCallId: call.toolCallId,
      mcpServer: call.mcpServer,
      eventId,
      enforcementMode: this.#settings.enforcementMode,
      principal: currentPrincipal(),
    };
    if (delegated !== undefined) request.delegationToken = delegated.token;
    if (traced !== undefined) request.traceId = traced.trace.id;
    let result: ActionResult;
    try {
      result = await this.#settings.gate.decide(request);
    } catch (error) {
      traced?.trace.noteDecision(traced, request, undefined);
      return this.#gateFailed(request, toAssemblyError(error), invoke);
    }
    traced?.trace.noteDecision(traced, request, result);
    switch (result.status) {
      case "executed":
        // The common case needs neither the re-run memo nor the nesting frame: call straight through.
        // `return await` settles this promise with the tool's value; `return invoke()` would adopt
        // the tool's promise as a thenable, two more microtask hops on every governed call.
        if (eventId === undefined && !markNested) return await invoke();
        return await this.#run(eventId, invoke, markNested);
      case "denied":
        throw deniedError(result, call);
      case "requested":
        return this.#held(result, call, invoke, opts, markNested, request);
      default:
        throw new AssemblyDeniedError({
          reason: "GATE_UNAVAILABLE",
          message: `Agent Assembly denied tool "${call.toolName}": the gate answered with an unknown status`,
        });
    }
  }

  #enrich(call: ToolCall, options: InterceptOptions | undefined): InterceptOptions | undefined {
    let merged = options;
    for (const adapter of this.#enrichers) {
      let extra: InterceptOptions | undefined;
      try {
        extra = adapter.enrichCall?.(call);
      } catch (cause) {
        // A broken enricher must not let a call through undecided, nor crash the host with a
        // foreign error: the call is denied below with a clear reason.
        throw new AssemblyDeniedError({
          reason: "GATE_UNAVAILABLE",
          message: `Agent Assembly could not prepare tool call "${call.toolName}": adapter "${adapter.name}" failed (${String(cause)})`,
        });
      }
      if (extra) merged = merged ? { ...merged, ...extra } : extra;
    }
    return merged;
  }

  #run<T>(eventId: string | undefined, invoke: () => T | Promise<T>, markNested: boolean): Promise<T> {
    const nesting = markNested ? this.#nesting : undefined;
    const running = nesting ? runMarked(nesting, invoke) : (async () => invoke())();
    if (eventId !== undefined) {
      this.#executed.set(eventId, running);
    }
    return running;
  }

  async #held<T>(
    result: ActionResult,
    call: ToolCall,
    invoke: () => T | Promise<T>,
    options: InterceptOptions | undefined,
    markNested: boolean,
    request: DecisionRequest,
  ): Promise<T> {
    const approvalId = result.approvalId;
    if (!approvalId)
      throw deniedError({ ...result, status: "denied", denialReason: "GATE_UNAVAILABLE" }, call);
    const held = {
      approvalId,
      auditEventId: result.auditEventId,
      timeoutAt: result.timeoutAt,
      message: result.message,
    };
    // May throw on purpose (e.g. a LangGraph interrupt suspends the graph here).
    await options?.onHold?.(held, call);
    await awaitRelease(
      this.#settings.gate,
      { ...result, approvalId },
      request.delegationToken === undefined
        ? { agentId: request.agent.id }
        : { agentId: request.agent.id, delegationToken: request.delegationToken },
      call.toolName,
      this.#settings.approvalWaitMs ?? DEFAULT_APPROVAL_WAIT_MS,
    );
    return this.#run(options?.eventId, invoke, markNested);
  }

  async #gateFailed<T>(
    request: DecisionRequest,
    error: AssemblyError,
    invoke: () => T | Promise<T>,
  ): Promise<T> {
    if (this.#settings.failureMode === "open") {
      process.emitWarning(
        `Agent Assembly: the gate failed (${error.message}); running "${request.actionType}" because failureMode is "open"`,
        { code: "AA_FAIL_OPEN" },
      );
      await this.#safelyRecordFailOpen(request);
      return invoke();
    }
    throw new AssemblyDeniedError({
      reason: "GATE_UNAVAILABLE",
      message: `Agent Assembly denied tool "${request.toolName ?? request.actionType}" because the gate could not decide (GATE_UNAVAILABLE): ${error.message}`,
    });
  }

  /** Best effort: record that a call ran without a decision. Swallows errors (the gate is already failing). */
  async #safelyRecordFailOpen(request: DecisionRequest): Promise<void> {
    try {
      await this.#settings.gate.decide({ ...request, enforcementMode: "disabled", failOpen: true });
    } catch {
      // Nothing more can be done; the warning above already told the operator.
    }
  }
}

/** Run a governed execution inside an open nesting frame, closed when the execution settles. */
async function runMarked<T>(
  nesting: AsyncLocalStorage<{ open: boolean }>,
  invoke: () => T | Promise<T>,
): Promise<T> {
  const frame = { open: true };
  try {
    return await nesting.run(frame, invoke);
  } finally {
    frame.open = false;
  }
}

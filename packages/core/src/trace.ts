/**
 * Decision traces: `assembly.trace(name, fn)` runs `fn` with an ambient trace, so every decision
 * made inside it (tool calls of any adapter, `execute`/`gate`, calls inside `child.run()`, across
 * awaits and fan-outs) carries the trace's W3C trace id, and the step it was made in. LLM calls go
 * through `trace.llm()`, which reserves tokens/cost against the agent's budget (and the trace's own
 * budget) before the call and reconciles what it used after. `trace.summary()` tells what happened.
 *
 * Like the principal and delegation stores, the trace store is an AsyncLocalStorage created on the
 * first `trace()` of the process and entered once per trace and per scoped step, never per tool
 * call: the interceptor only reads it. A process that never traces never creates it.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { randomBytes } from "node:crypto";
import type { ActionResult, ActionStatus, DecisionRequest, DenialReasonCode } from "@aa/engine";
import type { BudgetReservation } from "./client.js";
import { AssemblyError } from "./errors.js";

/** Tokens and/or cost, as budgets count them. */
export interface TokenAmounts {
  tokens?: number;
  cost?: number;
}

/** Options of `assembly.trace()`. */
export interface TraceOptions {
  /**
   * Continue a trace started elsewhere: its 32-hex W3C trace id (lowercase, not all zeros). The
   * new trace is a root span of that trace. Use `traceparent` to also keep the caller's span.
   */
  traceId?: string;
  /** Continue a trace from an incoming W3C `traceparent` header (`00-<trace id>-<span id>-<flags>`). */
  traceparent?: string;
  /**
   * A budget for this trace's LLM calls (`trace.llm()`), on top of the agent's budgets: a call whose
   * estimate does not fit what is left is refused with `BUDGET_EXCEEDED` and does not run. Nested
   * traces' LLM calls count against every enclosing trace's budget too.
   */
  budget?: TokenAmounts;
  /** Called once with the summary when `fn` has settled (an error thrown here is reported as a warning). */
  onEnd?: (summary: TraceSummary) => void;
}

/** What `trace.llm()` is told about the call it guards. */
export interface LlmCallOptions {
  /** The model called, e.g. `"gpt-4o-mini"`: recorded in the trace summary. */
  model: string;
  /** Tokens and/or cost to hold before the call (the call is refused when they do not fit). */
  estimate: TokenAmounts;
}

/** Handed to the function `trace.llm()` runs: report what the call really used. */
export interface LlmCallContext {
  /**
   * What the call used. Takes precedence over usage read from the returned response; when neither
   * is known, the estimate is counted (never less than was held).
   */
  report(usage: TokenAmounts): void;
}

/** One named step of a trace. */
export interface TraceStepSummary {
  name: string;
  /** The step it was started in, or null. */
  parent: string | null;
  startedAt: string;
  endedAt: string | null;
  status: "running" | "ok" | "error";
}

/** One decision made inside a trace (tool call, `execute` or `gate`). */
export interface TraceToolCall {
  actionType: string;
  tool: string | null;
  /** The agent the call was attributed to (a delegated child inside `child.run()`). */
  agentId: string;
  step: string | null;
  /** The gate's decision, or `error` when the gate could not decide. */
  status: ActionStatus | "error";
  /** The audit record of the decision (null when the gate could not decide). */
  auditEventId: string | null;
  approvalId?: string;
  denialReason?: DenialReasonCode;
  policyName?: string;
}

/** One LLM call made through `trace.llm()`. */
export interface TraceLlmCall {
  model: string;
  step: string | null;
  /** `denied`: refused by a budget before it ran; `error`: it ran and threw. */
  status: "ok" | "error" | "denied";
  estimate: { tokens: number; cost: number };
  /** What was counted against the budgets (null when denied). */
  usage: { tokens: number; cost: number } | null;
  /** Where `usage` came from: `report()`, the response's usage fields, or the estimate. */
  usageSource: "reported" | "response" | "estimate" | null;
  /** `BUDGET_EXCEEDED` (with `budgetScope`) when denied. */
  denialReason?: string;
  budgetScope?: "trace" | "agent";
}

/** What happened in a trace. */
export interface TraceSummary {
  traceId: string;
  spanId: string;
  /** The enclosing trace's span, or the caller's span from a `traceparent`, or null. */
  parentSpanId: string | null;
  name: string;
  startedAt: string;
  endedAt: string | null;
  status: "running" | "ok" | "error";
  steps: TraceStepSummary[];
  toolCalls: TraceToolCall[];
  llmCalls: TraceLlmCall[];
  /** Tokens and cost of this trace's LLM calls, nested traces included. */
  usage: { tokens: number; cost: number };
  budget: TokenAmounts | null;
  /** Traces started inside this one (same trace id, child spans). */
  children: TraceSummary[];
}

/** The trace handed to `assembly.trace(name, fn)`'s function. */
export interface Trace {
  /** W3C trace id (32 lowercase hex). Every decision inside the trace records it as `trace_id`. */
  readonly id: string;
  /** This trace's span id (16 lowercase hex). */
  readonly spanId: string;
  readonly name: string;
  /** `00-<trace id>-<span id>-01`: send it as the `traceparent` header to continue the trace elsewhere. */
  readonly traceparent: string;
  /**
   * Runs `fn` as the named step: decisions made inside it (and in everything it awaits) record the
   * step (`metadata.aa_trace.step`). Returns what `fn` returns.
   */
  step<T>(name: string, fn: () => T): T;
  /**
   * Marks the start of the named step for what follows in this trace, until the next `step(name)`
   * (for sequential code; concurrent work should use the scoped form).
   */
  step(name: string): void;
  /**
   * Runs one LLM call against the budgets: holds `estimate` against the agent's tokens/cost budget
   * and this trace's budget, runs `fn`, then counts what the call used (`report()`, else the usage
   * fields of the response, else the estimate).
   * @throws AssemblyError `BUDGET_EXCEEDED` (details: `scope` `trace` or `agent`, `kind`, `limit`,
   * `used`, `reserved`, `requested`) when the estimate does not fit; `fn` does not run.
   */
  llm<T>(call: LlmCallOptions, fn: (call: LlmCallContext) => T | Promise<T>): Promise<T>;
  /** What happened so far (a snapshot). */
  summary(): TraceSummary;
}

/** The ambient position: a trace and, inside a scoped step, that step. */
export interface TraceScope {
  readonly trace: TraceState;
  readonly step: StepState | undefined;
}

const STORAGE_KEY = Symbol.for("agent-assembly.trace-context");
// Shared by every copy of @aa/core in the process (ESM and CJS), like the other ambient stores.
const shared = globalThis as typeof globalThis & { [STORAGE_KEY]?: AsyncLocalStorage<TraceScope> };
// An own property, even undefined: reading a property the global object lacks costs ~25 ns per
// tool call on Node 22, an own one ~2 ns (the per-call read before any trace exists).
if (!(STORAGE_KEY in shared)) shared[STORAGE_KEY] = undefined;

/** The trace of the current async context, if any. Never creates the storage. */
export function currentTraceScope(): TraceScope | undefined {
  return shared[STORAGE_KEY]?.getStore();
}

function storage(): AsyncLocalStorage<TraceScope> {
  shared[STORAGE_KEY] ??= new AsyncLocalStorage<TraceScope>();
  return shared[STORAGE_KEY];
}

const TRACE_ID = /^[0-9a-f]{32}$/;
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** A W3C trace id: 16 random bytes as lowercase hex (never all zeros). */
export function newTraceId(): string {
  for (;;) {
    const id = randomBytes(16).toString("hex");
    if (id !== "0".repeat(32)) return id;
  }
}

function newSpanId(): string {
  for (;;) {
    const id = randomBytes(8).toString("hex");
    if (id !== "0".repeat(16)) return id;
  }
}

function invalid(option: string, message: string): AssemblyError {
  return new AssemblyError("INVALID_REQUEST", message, { option });
}

/** The trace id (and caller's span) a trace continues, from `traceId` / `traceparent`. */
function continued(options: TraceOptions): { traceId?: string; parentSpanId?: string } {
  if (options.traceparent !== undefined) {
    const match = typeof options.traceparent === "string" ? TRACEPARENT.exec(options.traceparent) : null;
    if (match === null || match[1] === "ff" || match[2] === "0".repeat(32) || match[3] === "0".repeat(16)) {
      throw invalid(
        "traceparent",
        `trace options.traceparent must be a W3C traceparent "00-<32 hex trace id>-<16 hex span id>-<2 hex flags>" (lowercase, ids not all zeros), got ${JSON.stringify(options.traceparent)}`,
      );
    }
    if (options.traceId !== undefined && options.traceId !== match[2]) {
      throw invalid(
        "traceId",
        "trace options.traceId and options.traceparent name different traces; pass one",
      );
    }
    return { traceId: match[2]!, parentSpanId: match[3]! };
  }
  if (options.traceId !== undefined) {
    if (
      typeof options.traceId !== "string" ||
      !TRACE_ID.test(options.traceId) ||
      /^0+$/.test(options.traceId)
    ) {
      throw invalid(
        "traceId",
        `trace options.traceId must be a W3C trace id: 32 lowercase hex characters, not all zeros (got ${JSON.stringify(options.traceId)})`,
      );
    }
    return { traceId: options.traceId };
  }
  return {};
}

function checkedAmounts(value: unknown, option: string): { tokens: number; cost: number } {
  if (value === null || typeof value !== "object") {
    throw invalid(option, `${option} must be an object { tokens?, cost? }`);
  }
  const amounts = value as TokenAmounts;
  const out = { tokens: 0, cost: 0 };
  for (const kind of ["tokens", "cost"] as const) {
    const amount = amounts[kind];
    if (amount === undefined) continue;
    if (typeof amount !== "number" || !Number.isFinite(amount) || amount < 0) {
      throw invalid(option, `${option}.${kind} must be a finite number >= 0, got ${JSON.stringify(amount)}`);
    }
    out[kind] = amount;
  }
  return out;
}

function checkedBudget(value: unknown): TokenAmounts | null {
  if (value === undefined) return null;
  const amounts = checkedAmounts(value, "options.budget");
  const budget = value as TokenAmounts;
  const out: TokenAmounts = {};
  if (budget.tokens !== undefined) out.tokens = amounts.tokens;
  if (budget.cost !== undefined) out.cost = amounts.cost;
  return out;
}

function nonEmptyName(name: unknown, what: string): string {
  if (typeof name !== "string" || name.trim() === "") {
    throw invalid("name", `${what} needs a non-empty name, got ${JSON.stringify(name)}`);
  }
  return name;
}

/** A step while it runs. */
export interface StepState {
  readonly summary: TraceStepSummary;
}

/** The tokens/cost counters of one trace. */
interface Counters {
  tokens: number;
  cost: number;
}

/**
 * The usage an LLM response reports, read generically: LangChain `usage_metadata`, OpenAI
 * `usage.total_tokens` / `prompt_tokens + completion_tokens`, Anthropic and OpenAI Responses
 * `usage.input_tokens + output_tokens`, Vercel AI SDK `usage.totalTokens` / `inputTokens +
 * outputTokens`. Tokens only: prices are the caller's (`report({ cost })`).
 */
export function usageOfResponse(response: unknown): { tokens: number } | undefined {
  if (response === null || typeof response !== "object") return undefined;
  const r = response as Record<string, unknown>;
  for (const holder of [r.usage_metadata, r.usage, r.totalUsage]) {
    if (holder === null || typeof holder !== "object") continue;
    const u = holder as Record<string, unknown>;
    const total = firstCount(u.total_tokens, u.totalTokens);
    if (total !== undefined) return { tokens: total };
    const input = firstCount(u.input_tokens, u.prompt_tokens, u.inputTokens, u.promptTokens);
    const output = firstCount(u.output_tokens, u.completion_tokens, u.outputTokens, u.completionTokens);
    if (input !== undefined || output !== undefined) return { tokens: (input ?? 0) + (output ?? 0) };
  }
  return undefined;
}

function firstCount(...values: unknown[]): number | undefined {
  for (const value of values) {
    if (typeof value === "number" && Number.isFinite(value) && value >= 0) return value;
  }
  return undefined;
}

/** What a trace needs from the governance client it belongs to. */
export interface TraceHost {
  reserve(estimate: TokenAmounts): Promise<BudgetReservation>;
}

/** One trace (a span): its record of what happened and its budget. */
export class TraceState implements Trace {
  readonly id: string;
  readonly spanId: string;
  readonly name: string;
  readonly parentSpanId: string | null;
  readonly parent: TraceState | undefined;
  readonly #host: TraceHost;
  readonly #budget: TokenAmounts | null;
  readonly #used: Counters = { tokens: 0, cost: 0 };
  readonly #reserved: Counters = { tokens: 0, cost: 0 };
  readonly #steps: TraceStepSummary[] = [];
  readonly #toolCalls: TraceToolCall[] = [];
  readonly #llmCalls: TraceLlmCall[] = [];
  readonly #children: TraceState[] = [];
  readonly #startedAt = new Date().toISOString();
  #endedAt: string | null = null;
  #status: TraceSummary["status"] = "running";
  /** The step set by `step(name)` without a function, for calls outside any scoped step. */
  #markedStep: StepState | undefined;
  /** The `aa_trace` metadata of calls outside any step (built once). */
  readonly #rootMetadata: Readonly<Record<string, string>>;

  constructor(settings: {
    name: string;
    host: TraceHost;
    parent: TraceState | undefined;
    traceId: string;
    parentSpanId: string | null;
    budget: TokenAmounts | null;
  }) {
    this.id = settings.traceId;
    this.spanId = newSpanId();
    this.name = settings.name;
    this.parentSpanId = settings.parentSpanId;
    this.parent = settings.parent;
    this.#host = settings.host;
    this.#budget = settings.budget;
    this.#rootMetadata = Object.freeze({ name: this.name, span_id: this.spanId });
    if (settings.parent !== undefined) settings.parent.#children.push(this);
  }

  get traceparent(): string {
    return `00-${this.id}-${this.spanId}-01`;
  }

  /** The step a call made at `scope` belongs to. */
  stepAt(scope: TraceScope): StepState | undefined {
    return scope.step ?? this.#markedStep;
  }

  /**
   * The metadata a decision made at `scope` records: the caller's, plus `aa_trace` (trace name,
   * span id, step). Policies can read it as `metadata.aa_trace.step`.
   */
  metadataFor(scope: TraceScope, metadata: Record<string, unknown> | undefined): Record<string, unknown> {
    const step = this.stepAt(scope);
    const aaTrace =
      step === undefined ? this.#rootMetadata : { ...this.#rootMetadata, step: step.summary.name };
    return metadata === undefined ? { aa_trace: aaTrace } : { ...metadata, aa_trace: aaTrace };
  }

  /** Notes a decision made at `scope` (`result` undefined: the gate could not decide). */
  noteDecision(scope: TraceScope, request: DecisionRequest, result: ActionResult | undefined): void {
    const call: TraceToolCall = {
      actionType: request.actionType,
      tool: request.toolName ?? null,
      agentId: request.agent.id,
      step: this.stepAt(scope)?.summary.name ?? null,
      status: result?.status ?? "error",
      auditEventId: result?.auditEventId || null,
    };
    if (result?.approvalId !== undefined) call.approvalId = result.approvalId;
    if (result?.denialReason !== undefined) call.denialReason = result.denialReason;
    if (result?.policyName !== undefined) call.policyName = result.policyName;
    this.#toolCalls.push(call);
  }

  step<T>(name: string, fn: () => T): T;
  step(name: string): void;
  step<T>(name: string, fn?: () => T): T | undefined {
    const stepName = nonEmptyName(name, "trace.step(name)");
    if (fn !== undefined && typeof fn !== "function") {
      throw invalid("fn", "trace.step(name, fn): fn must be a function");
    }
    this.#assertRunning("step");
    const scope = currentTraceScope();
    const enclosing = scope?.trace === this ? this.stepAt(scope) : this.#markedStep;
    const summary: TraceStepSummary = {
      name: stepName,
      parent: enclosing?.summary.name ?? null,
      startedAt: new Date().toISOString(),
      endedAt: null,
      status: "running",
    };
    this.#steps.push(summary);
    const state: StepState = { summary };
    if (fn === undefined) {
      // A marked step ends where the next one starts.
      if (this.#markedStep !== undefined) endStep(this.#markedStep, "ok");
      this.#markedStep = state;
      return undefined;
    }
    let result: T;
    try {
      result = storage().run({ trace: this, step: state }, fn);
    } catch (error) {
      endStep(state, "error");
      throw error;
    }
    if (isPromiseLike(result)) {
      result.then(
        () => endStep(state, "ok"),
        () => endStep(state, "error"),
      );
    } else {
      endStep(state, "ok");
    }
    return result;
  }

  async llm<T>(call: LlmCallOptions, fn: (call: LlmCallContext) => T | Promise<T>): Promise<T> {
    if (call === null || typeof call !== "object") {
      throw invalid("call", "trace.llm(call, fn) needs call = { model, estimate: { tokens?, cost? } }");
    }
    const model = nonEmptyName(call.model, "trace.llm({ model })");
    const estimate = checkedAmounts(call.estimate, "estimate");
    if (typeof fn !== "function") throw invalid("fn", "trace.llm(call, fn): fn must be a function");
    this.#assertRunning("llm");
    const scope = currentTraceScope();
    const step = scope?.trace === this ? this.stepAt(scope) : this.#markedStep;
    const record: TraceLlmCall = {
      model,
      step: step?.summary.name ?? null,
      status: "denied",
      estimate,
      usage: null,
      usageSource: null,
    };
    // Check and hold the trace budgets in one synchronous step, so concurrent calls cannot overshoot.
    try {
      this.#holdInTraces(estimate);
    } catch (error) {
      record.denialReason = "BUDGET_EXCEEDED";
      record.budgetScope = "trace";
      this.#llmCalls.push(record);
      throw error;
    }
    let reservation: BudgetReservation | undefined;
    try {
      reservation = await this.#host.reserve(estimate);
    } catch (error) {
      if (!(error instanceof AssemblyError && error.code === "NOT_SUPPORTED")) {
        this.#releaseInTraces(estimate);
        if (error instanceof AssemblyError && error.code === "BUDGET_EXCEEDED") {
          record.denialReason = "BUDGET_EXCEEDED";
          record.budgetScope = "agent";
          error.details.scope ??= "agent";
        }
        this.#llmCalls.push(record);
        throw error;
      }
      // A gateway enforces the agent's budgets itself; the trace budget still applies here.
    }
    record.status = "ok";
    this.#llmCalls.push(record);
    let reported: { tokens: number; cost: number } | undefined;
    const context: LlmCallContext = {
      report(usage) {
        const amounts = checkedAmounts(usage, "usage");
        const partial = usage as TokenAmounts;
        reported = {
          tokens: partial.tokens === undefined ? (reported?.tokens ?? estimate.tokens) : amounts.tokens,
          cost: partial.cost === undefined ? (reported?.cost ?? estimate.cost) : amounts.cost,
        };
      },
    };
    let outcome: { ok: true; value: T } | { ok: false; error: unknown };
    try {
      outcome = { ok: true, value: await fn(context) };
    } catch (error) {
      outcome = { ok: false, error };
    }
    let usage: { tokens: number; cost: number };
    if (reported !== undefined) {
      usage = reported;
      record.usageSource = "reported";
    } else {
      const fromResponse = outcome.ok ? usageOfResponse(outcome.value) : undefined;
      usage = fromResponse === undefined ? estimate : { tokens: fromResponse.tokens, cost: estimate.cost };
      record.usageSource = fromResponse === undefined ? "estimate" : "response";
    }
    record.usage = usage;
    if (!outcome.ok) record.status = "error";
    this.#releaseInTraces(estimate);
    this.#countInTraces(usage);
    if (reservation !== undefined) {
      try {
        await reservation.reconcile(usage);
      } catch (error) {
        // An expired reservation cannot be reconciled; the call already ran, so report, not fail.
        process.emitWarning(
          `Agent Assembly: could not reconcile the budget reservation of an LLM call in trace "${this.name}": ${(error as Error).message}`,
          { code: "AA_TRACE_RECONCILE_FAILED" },
        );
      }
    }
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  }

  summary(): TraceSummary {
    return {
      traceId: this.id,
      spanId: this.spanId,
      parentSpanId: this.parentSpanId,
      name: this.name,
      startedAt: this.#startedAt,
      endedAt: this.#endedAt,
      status: this.#status,
      steps: this.#steps.map((step) => ({ ...step })),
      toolCalls: this.#toolCalls.map((call) => ({ ...call })),
      llmCalls: this.#llmCalls.map((call) => ({
        ...call,
        estimate: { ...call.estimate },
        usage: call.usage && { ...call.usage },
      })),
      usage: { tokens: this.#used.tokens, cost: this.#used.cost },
      budget: this.#budget && { ...this.#budget },
      children: this.#children.map((child) => child.summary()),
    };
  }

  /** Ends the trace (`fn` settled). */
  end(status: "ok" | "error"): void {
    if (this.#markedStep !== undefined) endStep(this.#markedStep, status);
    this.#endedAt = new Date().toISOString();
    this.#status = status;
  }

  #assertRunning(method: string): void {
    if (this.#status !== "running") {
      throw new AssemblyError(
        "TRACE_ENDED",
        `trace "${this.name}" (${this.id}) has ended; call trace.${method}() inside the function passed to assembly.trace()`,
        { traceId: this.id, name: this.name },
      );
    }
  }

  #holdInTraces(estimate: Counters): void {
    for (let t: TraceState | undefined = this; t !== undefined; t = t.parent) {
      const budget = t.#budget;
      if (budget === null) continue;
      for (const kind of ["tokens", "cost"] as const) {
        const limit = budget[kind];
        if (limit === undefined || estimate[kind] === 0) continue;
        if (t.#used[kind] + t.#reserved[kind] + estimate[kind] > limit) {
          throw new AssemblyError(
            "BUDGET_EXCEEDED",
            `LLM call refused: trace "${t.name}" has a budget of ${limit} ${kind}, ${t.#used[kind]} used and ${t.#reserved[kind]} held, so ${estimate[kind]} more do not fit; raise the trace's budget or lower the estimate`,
            {
              scope: "trace",
              traceId: t.id,
              trace: t.name,
              kind,
              limit,
              used: t.#used[kind],
              reserved: t.#reserved[kind],
              requested: estimate[kind],
            },
          );
        }
      }
    }
    for (let t: TraceState | undefined = this; t !== undefined; t = t.parent) {
      t.#reserved.tokens += estimate.tokens;
      t.#reserved.cost += estimate.cost;
    }
  }

  #releaseInTraces(estimate: Counters): void {
    for (let t: TraceState | undefined = this; t !== undefined; t = t.parent) {
      t.#reserved.tokens -= estimate.tokens;
      t.#reserved.cost -= estimate.cost;
    }
  }

  #countInTraces(usage: Counters): void {
    for (let t: TraceState | undefined = this; t !== undefined; t = t.parent) {
      t.#used.tokens += usage.tokens;
      t.#used.cost += usage.cost;
    }
  }
}

function endStep(step: StepState, status: "ok" | "error"): void {
  if (step.summary.endedAt !== null) return;
  step.summary.endedAt = new Date().toISOString();
  step.summary.status = status;
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === "object" || typeof value === "function") &&
    typeof (value as { then?: unknown }).then === "function"
  );
}

/**
 * Runs `fn(trace)` as a new trace of the governance client `host`. Inside another trace it is a
 * child span of it (same trace id) unless `options` continue another trace.
 */
export async function runTrace<T>(
  host: TraceHost,
  name: string,
  fn: (trace: Trace) => T | Promise<T>,
  options: TraceOptions = {},
): Promise<T> {
  const traceName = nonEmptyName(name, "assembly.trace(name, fn)");
  if (typeof fn !== "function") throw invalid("fn", "assembly.trace(name, fn): fn must be a function");
  if (options === null || typeof options !== "object") {
    throw invalid("options", "assembly.trace(name, fn, options): options must be an object");
  }
  if (options.onEnd !== undefined && typeof options.onEnd !== "function") {
    throw invalid("onEnd", "trace options.onEnd must be a function");
  }
  const incoming = continued(options);
  const budget = checkedBudget(options.budget);
  const enclosing = incoming.traceId === undefined ? currentTraceScope()?.trace : undefined;
  const trace = new TraceState({
    name: traceName,
    host,
    parent: enclosing,
    traceId: incoming.traceId ?? enclosing?.id ?? newTraceId(),
    parentSpanId: incoming.parentSpanId ?? enclosing?.spanId ?? null,
    budget,
  });
  let outcome: { ok: true; value: T } | { ok: false; error: unknown };
  try {
    outcome = { ok: true, value: await storage().run({ trace, step: undefined }, () => fn(trace)) };
  } catch (error) {
    outcome = { ok: false, error };
  }
  trace.end(outcome.ok ? "ok" : "error");
  if (options.onEnd !== undefined) {
    try {
      options.onEnd(trace.summary());
    } catch (error) {
      process.emitWarning(
        `Agent Assembly: a trace's onEnd callback threw: ${(error as Error)?.message ?? error}`,
        {
          code: "AA_TRACE_ON_END_FAILED",
        },
      );
    }
  }
  if (!outcome.ok) throw outcome.error;
  return outcome.value;
}

/**
 * Governing one SDK function tool, in place and once: its `needsApproval` asks the gate first (a
 * held call becomes an SDK interruption), and an official tool input guardrail, appended after the
 * tool's own, turns the gate's decision into `allow` or `rejectContent(<denial>)`, which the model
 * receives as the tool's result. The tool's `invoke` is never replaced (the SDK keys its input
 * parser on it).
 */
import { AssemblyError, type HeldCall, type Interceptor, type ToolCall } from "@aa/core";
import { BoundedMemo } from "@aa/core/adapter-kit";
import { rememberHeld } from "./approvals.js";
import { denialText, eventIdFor, isGovernanceError, parseArguments, toToolCall } from "./translate.js";

/** Name of the input guardrail the adapter appends (visible in `result.toolInputGuardrailResults`). */
export const GUARDRAIL_NAME = "agent-assembly";

/** The parts of an SDK function tool the adapter reads and governs. */
export interface FunctionToolLike {
  type?: unknown;
  name?: unknown;
  needsApproval?: unknown;
  inputGuardrails?: unknown;
}

type NeedsApproval = (runContext: unknown, input: unknown, callId?: string) => Promise<boolean>;

interface ToolInputGuardrail {
  readonly type: "tool_input";
  readonly name: string;
  run(data: { toolCall?: { callId?: unknown; arguments?: unknown } }): Promise<GuardrailOutput>;
}

type GuardrailOutput = { behavior: { type: "allow" } | { type: "rejectContent"; message: string } };

/** What was changed on one tool, to put it back exactly. */
interface GovernedTool {
  readonly tool: FunctionToolLike;
  readonly needsApproval: { readonly ours: NeedsApproval; readonly original: PropertyDescriptor | undefined };
  readonly inputGuardrails: {
    readonly ours: ToolInputGuardrail[];
    readonly guardrail: ToolInputGuardrail;
    readonly original: PropertyDescriptor | undefined;
  };
}

/** The call's gate answer resolves to this when allowed: the guardrail decides, it does not run the tool. */
const ALLOWED = Symbol("agent-assembly.openai-agents.allowed");

/** Thrown from `onHold` to stop waiting: the SDK's interruption is the approval UI. */
class HeldForApproval extends Error {
  constructor(readonly held: HeldCall) {
    super(`held for approval ${held.approvalId}`);
  }
}

/** How often (in governed tools) references to collected tools are swept. */
const RECORDS_SWEEP_EVERY = 1024;

/** How many translated calls are kept for the guardrail to replay with the very same request. */
const DECIDED_CALLS_LIMIT = 10_000;

/** Governs tools for one installation; `restoreAll()` puts every tool back and deactivates the rest. */
export class ToolGovernor {
  #active = true;
  readonly #interceptor: Interceptor;
  readonly #adapterName: string;
  readonly #governed = new WeakMap<FunctionToolLike, GovernedTool>();
  readonly #records = new Set<WeakRef<GovernedTool>>();
  /** eventId → the ToolCall the gate decided, so the guardrail replays exactly that request. */
  readonly #decidedCalls = new BoundedMemo<string, ToolCall>(DECIDED_CALLS_LIMIT);

  constructor(interceptor: Interceptor, adapterName: string) {
    this.#interceptor = interceptor;
    this.#adapterName = adapterName;
  }

  /** Govern a tool returned by `getAllTools` (function tools only; idempotent). */
  govern(tool: FunctionToolLike): void {
    if (!this.#active || tool === null || typeof tool !== "object" || tool.type !== "function") return;
    if (this.#governed.has(tool)) return;
    const record = this.#install(tool);
    this.#governed.set(tool, record);
    this.#records.add(new WeakRef(record));
    // MCP-derived tools can be new objects on every turn: forget the ones already collected.
    if (this.#records.size % RECORDS_SWEEP_EVERY === 0) this.#sweep();
  }

  #sweep(): void {
    for (const ref of this.#records) if (ref.deref() === undefined) this.#records.delete(ref);
  }

  /** Put every governed tool back as it was (when nobody replaced our slots since) and stop governing. */
  restoreAll(): void {
    this.#active = false;
    for (const ref of this.#records) {
      const record = ref.deref();
      if (record) restore(record);
    }
    this.#records.clear();
    this.#decidedCalls.clear();
  }

  #install(tool: FunctionToolLike): GovernedTool {
    const originalNeedsApproval = Object.getOwnPropertyDescriptor(tool, "needsApproval");
    const originalGuardrails = Object.getOwnPropertyDescriptor(tool, "inputGuardrails");
    const ownApproval = tool.needsApproval;
    const ownGuardrails = Array.isArray(tool.inputGuardrails) ? tool.inputGuardrails : [];
    const ours = this.#needsApproval(tool, ownApproval);
    const guardrail = this.#guardrail(tool);
    const guardrails = [...ownGuardrails, guardrail];
    try {
      tool.needsApproval = ours;
      tool.inputGuardrails = guardrails;
    } catch (cause) {
      const record = {
        tool,
        needsApproval: { ours, original: originalNeedsApproval },
        inputGuardrails: { ours: guardrails, guardrail, original: originalGuardrails },
      };
      safelyRestore(record);
      throw new AssemblyError(
        "ADAPTER_INSTALL_FAILED",
        `Agent Assembly could not govern function tool ${JSON.stringify(tool.name)} (its needsApproval / inputGuardrails cannot be set: ${
          cause instanceof Error ? cause.message : String(cause)
        }), so the agent was not given it ungoverned; build the tool with tool() or leave it unfrozen`,
        { adapter: this.#adapterName, tool: String(tool.name) },
        { cause },
      );
    }
    return {
      tool,
      needsApproval: { ours, original: originalNeedsApproval },
      inputGuardrails: { ours: guardrails, guardrail, original: originalGuardrails },
    };
  }

  /**
   * The gate decides before the SDK would ask for approval (the SDK evaluates `needsApproval`
   * before input guardrails): held → `true` (the run returns an interruption); denied → `false`
   * (no point asking a person; the guardrail answers the model with the denial); allowed → the
   * tool's own answer.
   */
  #needsApproval(tool: FunctionToolLike, own: unknown): NeedsApproval {
    const governor = this;
    return async function governedNeedsApproval(this: unknown, runContext, input, callId) {
      const askOwn = async (): Promise<boolean> =>
        typeof own === "function"
          ? Boolean(await (own as NeedsApproval).call(this, runContext, input, callId))
          : own === true;
      if (!governor.#active) return askOwn();
      const call = governor.#translate(() => toToolCall(tool.name, input, callId));
      const eventId = eventIdFor(call.toolName, call.toolCallId!);
      governor.#remember(eventId, call);
      try {
        await governor.#interceptor.intercept(call, () => ALLOWED, {
          eventId,
          onHold(held) {
            throw new HeldForApproval(held);
          },
        });
      } catch (error) {
        if (error instanceof HeldForApproval) {
          rememberHeld(eventId, error.held.approvalId);
          return true;
        }
        if (isGovernanceError(error)) return false;
        throw error;
      }
      return askOwn();
    };
  }

  /**
   * The guardrail that enforces the gate's decision: it replays the decision `needsApproval` got
   * (same idempotency key, same request: no second audit record), waits for the release of an
   * approved held call, and rejects with the denial text otherwise. It never runs the tool.
   */
  #guardrail(tool: FunctionToolLike): ToolInputGuardrail {
    const governor = this;
    return {
      type: "tool_input",
      name: GUARDRAIL_NAME,
      async run({ toolCall }) {
        if (!governor.#active) return { behavior: { type: "allow" } };
        const callId = toolCall?.callId;
        const eventId =
          typeof tool.name === "string" && typeof callId === "string"
            ? eventIdFor(tool.name, callId)
            : undefined;
        const call =
          (eventId !== undefined ? governor.#decidedCalls.get(eventId) : undefined) ??
          governor.#translate(() => toToolCall(tool.name, parseArguments(toolCall?.arguments), callId));
        try {
          const answer = await governor.#interceptor.intercept(call, () => ALLOWED, {
            eventId: eventIdFor(call.toolName, call.toolCallId!),
          });
          if (answer !== ALLOWED)
            throw new TypeError("the gate answered with something other than its allow");
          return { behavior: { type: "allow" } };
        } catch (error) {
          if (isGovernanceError(error))
            return { behavior: { type: "rejectContent", message: denialText(error) } };
          throw error;
        }
      },
    };
  }

  #remember(eventId: string, call: ToolCall): void {
    this.#decidedCalls.set(eventId, call);
  }

  /** Fail closed: a call we cannot describe to the gate is not run. */
  #translate(translate: () => ToolCall): ToolCall {
    try {
      return translate();
    } catch (cause) {
      throw new AssemblyError(
        "ADAPTER_TRANSLATION_FAILED",
        `Agent Assembly could not translate an OpenAI Agents SDK tool call, so it was not run: ${
          cause instanceof Error ? cause.message : String(cause)
        }`,
        { adapter: this.#adapterName },
        { cause },
      );
    }
  }
}

/** Undo a half-done install; swallows errors (the install already fails with a clear error). */
function safelyRestore(record: GovernedTool): void {
  try {
    restore(record);
  } catch {
    // The tool refuses changes: nothing of ours could have been left on it.
  }
}

/** Put one tool's slots back, each only while it still holds what we set. */
function restore(record: GovernedTool): void {
  const { tool } = record;
  if (tool.needsApproval === record.needsApproval.ours)
    putBack(tool, "needsApproval", record.needsApproval.original);
  const guardrails = tool.inputGuardrails;
  if (guardrails === record.inputGuardrails.ours) {
    putBack(tool, "inputGuardrails", record.inputGuardrails.original);
  } else if (Array.isArray(guardrails)) {
    // Someone replaced the array since (keeping ours in it): take ours out of theirs.
    const index = guardrails.indexOf(record.inputGuardrails.guardrail);
    if (index >= 0) guardrails.splice(index, 1);
  }
}

function putBack(
  tool: FunctionToolLike,
  key: "needsApproval" | "inputGuardrails",
  original?: PropertyDescriptor,
): void {
  if (original) Object.defineProperty(tool, key, original);
  else delete tool[key];
}

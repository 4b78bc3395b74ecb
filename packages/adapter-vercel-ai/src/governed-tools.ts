/**
 * `ai` v6 has no `toolApproval` option: its tools are governed one by one. Each tool of the `tools`
 * map that runs in-process (has `execute`) is replaced by a copy whose `needsApproval` also asks
 * the gate (a held call becomes a `tool-approval-request`) and whose `execute` runs only what the
 * gate allowed (a denial is thrown: the SDK hands the model a `tool-error` with the failed
 * conditions). The original tool objects are never changed.
 */
import { randomUUID } from "node:crypto";
import type { HeldCall, ToolCall } from "@aa/core";
import { BoundedMemo } from "@aa/core/adapter-kit";
import type { GovernedApprovalSettings } from "./approval.js";
import { recallCall, rememberCall } from "./held-calls.js";
import { FRAMEWORK, isApprovedResume, isGovernanceError } from "./translate.js";

// biome-ignore lint/suspicious/noExplicitAny: SDK tools are user-defined objects
type SdkTool = Record<string | symbol, any> & {
  execute?: (...args: unknown[]) => unknown;
  needsApproval?: unknown;
};

const GOVERNED_TOOL = Symbol("agent-assembly.vercel-ai.governed-tool");
const ALLOWED = Symbol("agent-assembly.vercel-ai.allowed");

/** What the gate answered in `needsApproval`, for the same call's `execute`. */
type Verdict = { kind: "allowed" } | { kind: "denied"; error: unknown } | { kind: "held" };

/** Decisions taken in `needsApproval`, by tool-call id, until the call's `execute` (bounded). */
const VERDICT_LIMIT = 10_000;
const verdicts = new BoundedMemo<string, Verdict>(VERDICT_LIMIT);

class HeldForUser extends Error {
  constructor(readonly held: HeldCall) {
    super(`held for approval ${held.approvalId}`);
  }
}

const cache = new WeakMap<object, WeakMap<GovernedApprovalSettings, object>>();

/** The governed copy of a `tools` map (the same copy for the same map and settings). */
export function governedTools(tools: unknown, settings: GovernedApprovalSettings): unknown {
  if (typeof tools !== "object" || tools === null) return tools;
  let perSettings = cache.get(tools);
  const cached = perSettings?.get(settings);
  if (cached) return cached;
  const governed: Record<string, unknown> = {};
  for (const [name, tool] of Object.entries(tools)) governed[name] = governedTool(name, tool, settings);
  if (!perSettings) {
    perSettings = new WeakMap();
    cache.set(tools, perSettings);
  }
  perSettings.set(settings, governed);
  return governed;
}

function governedTool(name: string, tool: unknown, settings: GovernedApprovalSettings): unknown {
  if (typeof tool !== "object" || tool === null) return tool;
  const sdkTool = tool as SdkTool;
  // Provider-executed and client-side tools (no execute) run elsewhere: nothing to stop here.
  if (typeof sdkTool.execute !== "function" || sdkTool[GOVERNED_TOOL] === settings) return tool;
  const execute = sdkTool.execute;
  const callerNeedsApproval = sdkTool.needsApproval;
  const copy: SdkTool = { ...sdkTool };
  Object.defineProperty(copy, GOVERNED_TOOL, { value: settings, enumerable: false });
  copy.needsApproval = async (input: unknown, options: { toolCallId?: string } & Record<string, unknown>) => {
    const callerWants =
      typeof callerNeedsApproval === "function"
        ? await callerNeedsApproval(input, options)
        : callerNeedsApproval === true;
    const toolCallId = options?.toolCallId;
    if (settings.approvals !== "user-approval" || typeof toolCallId !== "string") return callerWants === true;
    // The SDK re-checks a call the app approved when the run resumes: the first decision stands,
    // and `execute` waits for the gate's own approval of it.
    if (isApprovedResume(options.messages, toolCallId) && recallCall(toolCallId) !== undefined) {
      remember(toolCallId, { kind: "held" });
      return true;
    }
    const eventId = randomUUID();
    const call = toolCall(name, input, toolCallId);
    try {
      await settings.interceptor.intercept(call, () => ALLOWED, {
        eventId,
        onHold: (held) => {
          throw new HeldForUser(held);
        },
      });
      remember(toolCallId, { kind: "allowed" });
      return callerWants === true;
    } catch (error) {
      if (error instanceof HeldForUser) {
        remember(toolCallId, { kind: "held" });
        rememberCall(toolCallId, { eventId, approvalId: error.held.approvalId });
        return true;
      }
      // Denied (or undecidable): no approval request; `execute` throws the denial to the model.
      remember(toolCallId, { kind: "denied", error });
      return false;
    }
  };
  copy.execute = function governedExecute(this: unknown, ...args: unknown[]) {
    const [input, options] = args as [unknown, { toolCallId?: string } | undefined];
    const toolCallId = options?.toolCallId;
    const verdict = typeof toolCallId === "string" ? takeVerdict(toolCallId) : undefined;
    if (verdict?.kind === "allowed") return execute.apply(this, args);
    if (verdict?.kind === "denied") {
      return Promise.reject(
        isGovernanceError(verdict.error)
          ? verdict.error
          : new Error(
              `Agent Assembly could not decide tool "${name}", so it was not run: ${String(verdict.error)}`,
            ),
      );
    }
    // Held earlier (the app approved, the run resumed): the same decision, then wait for the gate.
    // Not seen before (approvals "wait", or another process): decide now, waiting if held.
    const eventId = (typeof toolCallId === "string" && recallCall(toolCallId)?.eventId) || randomUUID();
    return settings.interceptor.intercept(
      toolCall(name, input, toolCallId),
      () => execute.apply(this, args),
      { eventId },
    );
  };
  return copy;
}

function toolCall(toolName: string, args: unknown, toolCallId: string | undefined): ToolCall {
  const call: ToolCall = { framework: FRAMEWORK, toolName, args };
  if (typeof toolCallId === "string" && toolCallId !== "") call.toolCallId = toolCallId;
  return call;
}

function remember(toolCallId: string, verdict: Verdict): void {
  // Delete first: a verdict given again becomes the newest.
  verdicts.delete(toolCallId);
  verdicts.set(toolCallId, verdict);
}

function takeVerdict(toolCallId: string): Verdict | undefined {
  const verdict = verdicts.get(toolCallId);
  verdicts.delete(toolCallId);
  return verdict?.kind === "held" ? undefined : verdict;
}

/**
 * The `toolApproval` function the adapter injects into `generateText`, `streamText` and
 * `ToolLoopAgent`: it resolves the caller's own approval configuration exactly as the SDK would
 * (generic function, per-tool map, then the tool's `needsApproval`), asks the gate through the
 * interceptor, and composes both answers (a denial from either wins).
 */
import { randomUUID } from "node:crypto";
import type { HeldCall, Interceptor, ToolCall } from "@aa/core";
import { recallCall, rememberCall } from "./held-calls.js";
import {
  type ApprovalStatus,
  composeStatuses,
  denialText,
  heldText,
  isApprovedResume,
  isGovernanceError,
  normalizeStatus,
  type SdkToolCall,
  toToolCall,
} from "./translate.js";

/** How a call the gate holds for approval is answered. */
export type ApprovalsMode = "user-approval" | "wait";

export interface GovernedApprovalSettings {
  readonly interceptor: Interceptor;
  readonly approvals: ApprovalsMode;
}

/** What the SDK passes to a generic `toolApproval` function. */
interface ToolApprovalOptions {
  toolCall?: SdkToolCall;
  tools?: Record<string, { needsApproval?: unknown } | undefined>;
  toolsContext?: Record<string, unknown>;
  runtimeContext?: unknown;
  messages?: unknown;
}

type GovernedApproval = ((options: ToolApprovalOptions) => Promise<ApprovalStatus>) & {
  [GOVERNED]?: GovernedApprovalSettings;
};

const GOVERNED = Symbol("agent-assembly.vercel-ai.governed-approval");

/** What the interceptor runs for an allowed call: the SDK runs the tool itself afterwards. */
const ALLOWED = Symbol("agent-assembly.vercel-ai.allowed");

/** Thrown from `onHold` to answer a held call with `user-approval` instead of waiting. */
class HeldForUser extends Error {
  constructor(readonly held: HeldCall) {
    super(`held for approval ${held.approvalId}`);
  }
}

/** The governed `toolApproval` for a call whose caller passed `callerConfig` (may be undefined). */
export function governedToolApproval(
  callerConfig: unknown,
  settings: GovernedApprovalSettings,
): GovernedApproval {
  const existing =
    typeof callerConfig === "function" ? (callerConfig as GovernedApproval)[GOVERNED] : undefined;
  if (existing === settings) return callerConfig as GovernedApproval;
  const governed: GovernedApproval = async (options) => {
    const toolCall = options?.toolCall ?? {};
    const caller = await callerStatus(callerConfig, options ?? {}, toolCall);
    // Provider-executed tools run at the provider: nothing runs here that the gate could stop.
    if (toolCall.providerExecuted === true) return caller;
    // The caller refused: nothing will run, so there is nothing for the gate to decide.
    if (caller.type === "denied") return caller;
    let call: ToolCall;
    try {
      call = toToolCall(toolCall);
    } catch (cause) {
      // Fail closed: a call we cannot describe to the gate is not run.
      return {
        type: "denied",
        reason: `Agent Assembly could not translate this tool call, so it was not run: ${messageOf(cause)}`,
      };
    }
    const resumed = isApprovedResume(options?.messages, call.toolCallId);
    const eventId =
      (resumed && call.toolCallId !== undefined && recallCall(call.toolCallId)?.eventId) || randomUUID();
    const gate = await askGate(call, eventId, resumed, settings);
    const status = composeStatuses(caller, gate.status);
    if (status.type === "user-approval" && call.toolCallId !== undefined) {
      rememberCall(call.toolCallId, { eventId, approvalId: gate.held?.approvalId });
    }
    return status;
  };
  Object.defineProperty(governed, GOVERNED, { value: settings, enumerable: false });
  return governed;
}

async function askGate(
  call: ToolCall,
  eventId: string,
  resumed: boolean,
  settings: GovernedApprovalSettings,
): Promise<{ status: ApprovalStatus; held?: HeldCall }> {
  let held: HeldCall | undefined;
  const onHold = (heldCall: HeldCall) => {
    held = heldCall;
    // On the first pass the app asks its user; on a resumed run (the app approved) the gate's
    // own approval decides: the interceptor waits for it, and releases it exactly once.
    if (settings.approvals === "user-approval" && !resumed) throw new HeldForUser(heldCall);
  };
  try {
    await settings.interceptor.intercept(call, () => ALLOWED, { eventId, onHold });
    return { status: { type: "not-applicable" }, held };
  } catch (error) {
    if (error instanceof HeldForUser) {
      return { status: { type: "user-approval", reason: heldText(error.held, call.toolName) }, held };
    }
    if (isGovernanceError(error)) return { status: { type: "denied", reason: denialText(error) }, held };
    // The interceptor already turns gate failures into denials; anything else is a bug: fail closed.
    return {
      status: {
        type: "denied",
        reason: `Agent Assembly could not decide tool "${call.toolName}", so it was not run: ${messageOf(error)}`,
      },
      held,
    };
  }
}

/** The caller's own answer, resolved as the SDK's `resolveToolApproval` does. */
async function callerStatus(
  config: unknown,
  options: ToolApprovalOptions,
  toolCall: SdkToolCall,
): Promise<ApprovalStatus> {
  if (typeof config === "function") return safelyNormalize(await config(options));
  const toolName = typeof toolCall.toolName === "string" ? toolCall.toolName : "";
  const messages = options.messages;
  const toolContext = ownValue(options.toolsContext, toolName);
  if (config !== undefined && config !== null) {
    if (typeof config !== "object") {
      return { type: "denied", reason: `toolApproval must be a function or an object, got ${typeof config}` };
    }
    const entry = ownValue(config, toolName);
    if (entry !== undefined && entry !== null) {
      if (typeof entry !== "function") return safelyNormalize(entry);
      return safelyNormalize(
        await entry(toolCall.input, {
          toolCallId: toolCall.toolCallId,
          messages,
          toolContext,
          runtimeContext: options.runtimeContext,
        }),
      );
    }
  }
  const needsApproval = ownValue(options.tools, toolName)?.needsApproval;
  if (needsApproval === undefined || needsApproval === null) return { type: "not-applicable" };
  const needed =
    typeof needsApproval === "function"
      ? await needsApproval(toolCall.input, {
          toolCallId: toolCall.toolCallId,
          messages,
          context: toolContext,
        })
      : needsApproval;
  return needed ? { type: "user-approval" } : { type: "not-applicable" };
}

/**
 * The caller's answer, normalised; an answer that is not a ToolApprovalStatus is a denial naming
 * the mistake (fail closed, without throwing into the SDK run).
 */
function safelyNormalize(status: unknown): ApprovalStatus {
  try {
    return normalizeStatus(status);
  } catch (error) {
    return { type: "denied", reason: `Agent Assembly refused the call: ${messageOf(error)}` };
  }
}

// biome-ignore lint/suspicious/noExplicitAny: SDK configuration values are user-defined
function ownValue(record: unknown, key: string): any {
  if (typeof record !== "object" || record === null || !Object.hasOwn(record, key)) return undefined;
  return (record as Record<string, unknown>)[key];
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

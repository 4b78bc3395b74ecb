/**
 * Translation between a LangGraph run and the gate: the graph context of a tool call (read from
 * the RunnableConfig the LangChain adapter passes as `call.native`) becomes `metadata.*` and an
 * idempotency key; a held decision becomes a LangGraph interrupt payload.
 */
import type { HeldCall, ToolCall } from "@aa/core";

/** Graph context of one tool call; only fields the installed LangGraph provides are set. */
export interface GraphContext {
  threadId?: string;
  node?: string;
  runId?: string;
  checkpointNs?: string;
  checkpointId?: string;
}

type ConfigLike = {
  configurable?: Record<string, unknown>;
  metadata?: Record<string, unknown>;
  executionInfo?: Record<string, unknown>;
  runId?: unknown;
};

/**
 * Read the graph context from a RunnableConfig, or `undefined` when the call is not running inside
 * a LangGraph graph (no thread and no node). Cheap: it runs on every tool call.
 */
export function graphContextOf(native: unknown): GraphContext | undefined {
  if (typeof native !== "object" || native === null) return undefined;
  const config = native as ConfigLike;
  const configurable = objectOrUndefined(config.configurable);
  const metadata = objectOrUndefined(config.metadata);
  const executionInfo = objectOrUndefined(config.executionInfo);
  const node = stringOf(metadata?.langgraph_node);
  const threadId =
    stringOf(configurable?.thread_id) ?? stringOf(executionInfo?.threadId) ?? stringOf(metadata?.thread_id);
  if (node === undefined && threadId === undefined) return undefined;
  const context: GraphContext = {};
  if (threadId !== undefined) context.threadId = threadId;
  if (node !== undefined) context.node = node;
  const runId =
    stringOf(executionInfo?.runId) ??
    stringOf(configurable?.run_id) ??
    stringOf(metadata?.run_id) ??
    stringOf(config.runId);
  if (runId !== undefined) context.runId = runId;
  const checkpointNs = stringOf(metadata?.langgraph_checkpoint_ns) ?? stringOf(configurable?.checkpoint_ns);
  if (checkpointNs !== undefined) context.checkpointNs = checkpointNs;
  const checkpointId = stringOf(executionInfo?.checkpointId) ?? stringOf(configurable?.checkpoint_id);
  if (checkpointId !== undefined) context.checkpointId = checkpointId;
  return context;
}

function objectOrUndefined(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : undefined;
}

function stringOf(value: unknown): string | undefined {
  if (typeof value === "string" && value !== "") return value;
  return typeof value === "number" && Number.isFinite(value) ? String(value) : undefined;
}

/** Add the graph context to the call's metadata (`metadata.thread_id`, `langgraph_node`, `run_id`). */
export function addGraphMetadata(call: ToolCall, context: GraphContext): void {
  const metadata = call.metadata ?? {};
  if (context.threadId !== undefined) metadata.thread_id = context.threadId;
  if (context.node !== undefined) metadata.langgraph_node = context.node;
  if (context.runId !== undefined) metadata.run_id = context.runId;
  if (context.checkpointNs !== undefined) metadata.langgraph_checkpoint_ns = context.checkpointNs;
  if (context.checkpointId !== undefined) metadata.checkpoint_id = context.checkpointId;
  call.metadata = metadata;
}

/**
 * The idempotency key of a tool call in a thread. A resumed graph re-runs its tool node with the
 * same thread and tool-call ids, so the same key gives the same decision and no second execution.
 */
export function graphEventId(context: GraphContext, toolCallId: string | undefined): string | undefined {
  if (context.threadId === undefined || toolCallId === undefined) return undefined;
  return `${context.threadId}:${toolCallId}`;
}

/** What `interrupt()` receives for a call held for approval (what the app shows its operator). */
export interface ApprovalInterrupt {
  type: "agent-assembly/approval";
  approvalId: string;
  auditEventId: string;
  tool: string;
  args: unknown;
  toolCallId: string | undefined;
  timeoutAt: string | undefined;
  message: string;
}

export function approvalInterrupt(held: HeldCall, call: ToolCall): ApprovalInterrupt {
  return {
    type: "agent-assembly/approval",
    approvalId: held.approvalId,
    auditEventId: held.auditEventId,
    tool: call.toolName,
    args: call.args,
    toolCallId: call.toolCallId,
    timeoutAt: held.timeoutAt,
    message:
      held.message ??
      `Tool call "${call.toolName}" is held for approval ${held.approvalId}; approve or deny it, then resume the graph with new Command({ resume: ... }).`,
  };
}

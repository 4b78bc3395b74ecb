/**
 * Translation between LangChain's tool-call shapes and the gate: a LangChain call becomes a
 * `ToolCall`; a governance error becomes what a LangChain caller expects (an error `ToolMessage`
 * the model reads, or the typed error for direct callers).
 */
import type { ToolCall } from "@aa/core";
import { denialText, type GovernanceErrorLike, isGovernanceError } from "@aa/core";
import type { CallShape } from "./patch-targets.js";

/** Re-exported for callers of this package (they live in @aa/core, shared by every adapter). */
export { denialText, type GovernanceErrorLike, isGovernanceError };

/** Framework name recorded on every call this adapter intercepts. */
export const FRAMEWORK = "langchain";

/** The parts of a LangChain tool the translation reads (both StructuredTool and RunnableToolLike). */
export interface ToolLike {
  name?: unknown;
  tags?: unknown;
  metadata?: unknown;
}

/** LangChain's `ToolCall` shape (`{name, args, id, type: "tool_call"}`). */
interface LangChainToolCall {
  name?: unknown;
  args: unknown;
  id?: unknown;
  type: "tool_call";
}

/** Translate one intercepted LangChain call (the patched method's receiver and arguments). */
export function toToolCall(tool: ToolLike, shape: CallShape, methodArgs: readonly unknown[]): ToolCall {
  const input = methodArgs[0];
  const config = asRunnableConfig(methodArgs[1]);
  const toolCall = isLangChainToolCall(input) ? input : undefined;
  const toolName = typeof tool.name === "string" && tool.name !== "" ? tool.name : undefined;
  if (toolName === undefined) {
    throw new TypeError(
      `the ${shape === "structured-tool-call" ? "StructuredTool" : "RunnableToolLike"} has no name`,
    );
  }
  const call: ToolCall = {
    framework: FRAMEWORK,
    toolName,
    args: toolCall ? toolCall.args : input,
    metadata: metadataOf(tool, config),
  };
  const toolCallId = stringOrUndefined(toolCall?.id) ?? toolCallIdFromConfig(config);
  if (toolCallId !== undefined) call.toolCallId = toolCallId;
  if (config !== undefined) call.native = config;
  return call;
}

function isLangChainToolCall(value: unknown): value is LangChainToolCall {
  return typeof value === "object" && value !== null && (value as { type?: unknown }).type === "tool_call";
}

type RunnableConfigLike = Record<string, unknown> & {
  runName?: unknown;
  tags?: unknown;
  metadata?: unknown;
  toolCall?: unknown;
  toolCallId?: unknown;
};

/**
 * The legacy `call(arg, callbacks)` form passes callbacks (an array or a handler) where a config
 * goes; only a plain config object is a RunnableConfig.
 */
function asRunnableConfig(value: unknown): RunnableConfigLike | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return undefined;
  return value as RunnableConfigLike;
}

function toolCallIdFromConfig(config: RunnableConfigLike | undefined): string | undefined {
  if (config === undefined) return undefined;
  const fromToolCall = config.toolCall as { id?: unknown } | undefined;
  if (typeof fromToolCall === "object" && fromToolCall !== null) {
    const id = stringOrUndefined(fromToolCall.id);
    if (id !== undefined) return id;
  }
  // LangGraph's ToolNode passes a ToolRuntime whose `toolCallId` names the call.
  return stringOrUndefined(config.toolCallId);
}

function stringOrUndefined(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

/**
 * What the policy can read as `metadata.*`: the tool's and the run's LangChain metadata (plain JSON
 * values only: nothing that could not be recorded), then `runName` and `tags`.
 */
function metadataOf(tool: ToolLike, config: RunnableConfigLike | undefined): Record<string, unknown> {
  const metadata: Record<string, unknown> = {};
  copyPlainJsonFields(tool.metadata, metadata);
  copyPlainJsonFields(config?.metadata, metadata);
  const runName = stringOrUndefined(config?.runName);
  if (runName !== undefined) metadata.runName = runName;
  // Runs on every call: no arrays or Set unless there are tags (LangChain passes `tags: []`).
  const tags = addStrings(addStrings(undefined, config?.tags), tool.tags);
  if (tags !== undefined) metadata.tags = tags;
  return metadata;
}

/** `into` plus the strings of `value` not already in it, in order; `undefined` while there are none. */
function addStrings(into: string[] | undefined, value: unknown): string[] | undefined {
  if (!Array.isArray(value)) return into;
  let out = into;
  for (const item of value) {
    if (typeof item !== "string") continue;
    if (out === undefined) out = [item];
    else if (!out.includes(item)) out.push(item);
  }
  return out;
}

// These run on every call (every tool carries `metadata.versions`): plain loops over own keys, no
// entry/value arrays or callbacks allocated.
function copyPlainJsonFields(source: unknown, target: Record<string, unknown>): void {
  if (typeof source !== "object" || source === null || Array.isArray(source)) return;
  const record = source as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    const value = record[key];
    if (isPlainJson(value, 0)) target[key] = value;
  }
}

const MAX_JSON_DEPTH = 8;

/** JSON-representable without loss: no functions, class instances, cycles, NaN or undefined. */
function isPlainJson(value: unknown, depth: number): boolean {
  if (value === null || typeof value === "string" || typeof value === "boolean") return true;
  if (typeof value === "number") return Number.isFinite(value);
  if (typeof value !== "object" || depth >= MAX_JSON_DEPTH) return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!isPlainJson(value[i], depth + 1)) return false;
    return true;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) if (!isPlainJson(record[key], depth + 1)) return false;
  return true;
}

/** Constructor of LangChain's `ToolMessage`, from the same build as the tool being answered. */
export type ToolMessageConstructor = new (fields: {
  content: string;
  tool_call_id: string;
  name?: string;
  status?: "success" | "error";
  artifact?: unknown;
}) => unknown;

/**
 * A denial answered as an error `ToolMessage`, so an agent's model reads which rule failed and can
 * correct itself (LangGraph's ToolNode and `createAgent` pass returned ToolMessages through
 * unchanged, whatever their `handleToolErrors` setting).
 */
export function deniedToolMessage(
  ToolMessage: ToolMessageConstructor,
  error: GovernanceErrorLike,
  call: ToolCall,
  toolCallId: string,
): unknown {
  return new ToolMessage({
    status: "error",
    name: call.toolName,
    tool_call_id: toolCallId,
    content: denialText(error),
    artifact: {
      agentAssembly: {
        code: error.code,
        reason: error.reason ?? error.code,
        policy: error.policy,
        conditions: error.conditions ?? [],
        approvalId: error.approvalId,
        auditEventId: error.auditEventId,
      },
    },
  });
}

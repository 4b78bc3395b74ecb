/**
 * Test helpers: a scripted chat model (the "LLM" of the agents under test) that records what it
 * was sent, the test policy, and small polling helpers for approvals.
 */
import type { AssemblyContext } from "@aa/core";
import { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { AIMessage, type BaseMessage } from "@langchain/core/messages";
import type { ChatResult } from "@langchain/core/outputs";

export interface ScriptedToolCall {
  name: string;
  args: Record<string, unknown>;
  id: string;
}

/**
 * A chat model that answers with the scripted messages in order (then a plain "done"), and records
 * the messages it received on each turn, so a test can assert what the model read.
 */
export class ScriptedChatModel extends BaseChatModel {
  readonly received: BaseMessage[][] = [];
  #turn = 0;

  constructor(private readonly script: AIMessage[]) {
    super({});
  }

  _llmType(): string {
    return "scripted";
  }

  // biome-ignore lint/suspicious/noExplicitAny: bindTools' signature is generic in BaseChatModel
  override bindTools(_tools: unknown[]): any {
    return this;
  }

  async _generate(messages: BaseMessage[]): Promise<ChatResult> {
    this.received.push([...messages]);
    const message = this.script[this.#turn++] ?? new AIMessage("done");
    return { generations: [{ text: typeof message.content === "string" ? message.content : "", message }] };
  }

  /** Text of the tool messages the model received on turn `turn` (0-based). */
  toolMessagesAt(turn: number): { content: string; status: unknown; toolCallId: unknown }[] {
    return (this.received[turn] ?? [])
      .filter((message) => message.getType() === "tool")
      .map((message) => ({
        content: typeof message.content === "string" ? message.content : JSON.stringify(message.content),
        status: (message as { status?: unknown }).status,
        toolCallId: (message as { tool_call_id?: unknown }).tool_call_id,
      }));
  }
}

/** An AI message asking for the given tool calls. */
export function askTools(...calls: ScriptedToolCall[]): AIMessage {
  return new AIMessage({
    content: "",
    tool_calls: calls.map((call) => ({ ...call, type: "tool_call" as const })),
  });
}

/** The policy every test uses: small transfers allowed, lookups allowed, deploys held for review. */
export const TEST_POLICY = {
  version: 1,
  default: "deny",
  policies: [
    {
      name: "small-transfers",
      action: "transfer",
      effect: "allow",
      when: [{ field: "args.amount", op: "lt", value: 100 }],
    },
    { name: "lookups", action: "lookup", effect: "allow" },
    { name: "deploys-need-review", action: "deploy", effect: "require_approval" },
  ],
};

/** Wait until the assembly has `count` pending approvals and return them (polls; no timing asserted). */
export async function pendingApprovals(assembly: AssemblyContext, count = 1) {
  for (;;) {
    const pending = await assembly.listApprovals({ state: "pending" });
    if (pending.length >= count) return pending;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Audit records of the assembly (first page, enough for a test). */
export async function auditRecords(assembly: AssemblyContext): Promise<Record<string, unknown>[]> {
  const page = await assembly.audit({ limit: 1000 });
  return page.items as Record<string, unknown>[];
}

/**
 * Test your governed LangChain / LangGraph agent without an API key: a scripted chat model that
 * answers with the messages you give it (tool calls included) and records what it was sent, so a
 * test can assert that the model read a denial.
 *
 * @example
 * import { ScriptedChatModel, askTools } from "@aa/adapter-langchain/testing";
 * const model = new ScriptedChatModel([askTools({ name: "transfer", args: { amount: 500 }, id: "c1" })]);
 * await createAgent({ model, tools: [transfer] }).invoke({ messages: [{ role: "user", content: "pay" }] });
 * model.toolMessagesAt(1); // [{ status: "error", content: "Agent Assembly denied tool \"transfer\" ..." }]
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

/** Wait until the assembly has at least `count` pending approvals and return them (polls every 5 ms). */
export async function pendingApprovals(assembly: AssemblyContext, count = 1) {
  for (;;) {
    const pending = await assembly.listApprovals({ state: "pending" });
    if (pending.length >= count) return pending;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * A scripted chat model standing in for an LLM (no API key, deterministic). It plans like an agent
 * would: it only knows what is in its conversation, so it learns about a denial the same way a real
 * model does, by reading the tool result, and corrects itself from the failed condition it names.
 */
import { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { AIMessage, type BaseMessage, ToolMessage } from "@langchain/core/messages";
import type { ChatResult } from "@langchain/core/outputs";
import { cyan, red, say, short } from "./ui.js";

interface Change {
  area: string;
  files: string[];
  lines: number;
}

let callCounter = 0;
const callId = () => `call_${++callCounter}`;

export class ReleasePlannerModel extends BaseChatModel {
  _llmType(): string {
    return "scripted-release-planner";
  }

  // biome-ignore lint/suspicious/noExplicitAny: BaseChatModel's bindTools signature is generic
  override bindTools(_tools: unknown[]): any {
    return this;
  }

  async _generate(messages: BaseMessage[]): Promise<ChatResult> {
    const reply = this.#plan(messages);
    for (const call of reply.tool_calls ?? []) say(cyan("▸ agent"), `calls ${call.name} ${short(call.args)}`);
    if (!reply.tool_calls?.length) say(cyan("▸ agent"), String(reply.content));
    return { generations: [{ text: String(reply.content), message: reply }] };
  }

  #plan(messages: BaseMessage[]): AIMessage {
    const results = messages.filter(
      (m): m is ToolMessage => m instanceof ToolMessage || m.getType() === "tool",
    );
    const latestTurn = trailingToolMessages(messages);
    for (const denial of latestTurn.filter((m) => m.status === "error")) {
      say(red("◂ reads"), short(String(denial.content), 200));
    }
    const changes = results.find((m) => m.name === "read_changes");
    if (!changes) return ask({ name: "read_changes", args: {} });
    const all = JSON.parse(String(changes.content)) as Change[];

    const released = results.find((m) => m.name === "merge_release" && m.status !== "error");
    if (released) return new AIMessage(`Done: ${released.content}.`);
    const releaseDenied = latestTurn.find((m) => m.name === "merge_release" && m.status === "error");
    if (releaseDenied) return new AIMessage("The release was not approved; stopping here.");

    const opened = latestTurn.filter((m) => m.name === "open_pr" && m.status !== "error");
    if (opened.length > 0) {
      const prs = opened.map((m) => (JSON.parse(String(m.content)) as { pr: number }).pr);
      return ask({
        name: "merge_release",
        args: { prs, version: "v2.4.0", token: "ghp_demoSecretToken1234567890abcdefABCD" },
      });
    }

    // A denied PR: the denial names the failed condition, e.g. "args.lines_changed lt 50 (actual: 120)".
    const prDenial = latestTurn.find((m) => m.name === "open_pr" && m.status === "error");
    if (prDenial) {
      const limit = Number(/args\.lines_changed lt (\d+)/.exec(String(prDenial.content))?.[1]);
      if (Number.isFinite(limit)) {
        return new AIMessage({
          content: `PRs must stay under ${limit} lines: splitting by area.`,
          tool_calls: splitUnder(all, limit).map((group) => toolCall("open_pr", prArgs(group))),
        });
      }
      return new AIMessage("Opening the PR was denied and I cannot tell why; stopping.");
    }
    return ask({ name: "open_pr", args: prArgs(all) });
  }
}

function prArgs(changes: Change[]) {
  return {
    title: `Release: ${changes.map((c) => c.area).join(", ")}`,
    files: changes.flatMap((c) => c.files),
    lines_changed: changes.reduce((sum, c) => sum + c.lines, 0),
  };
}

/** Group changes into PRs that each stay strictly under `limit` lines. */
function splitUnder(changes: Change[], limit: number): Change[][] {
  const groups: Change[][] = [];
  for (const change of changes) {
    const group = groups.find((g) => g.reduce((s, c) => s + c.lines, 0) + change.lines < limit);
    if (group) group.push(change);
    else groups.push([change]);
  }
  return groups;
}

/** The tool results that answer the model's latest request (after its last AI message). */
function trailingToolMessages(messages: BaseMessage[]): ToolMessage[] {
  const out: ToolMessage[] = [];
  for (let i = messages.length - 1; i >= 0 && messages[i]!.getType() === "tool"; i--)
    out.unshift(messages[i] as ToolMessage);
  return out;
}

function toolCall(name: string, args: Record<string, unknown>) {
  return { name, args, id: callId(), type: "tool_call" as const };
}

function ask(call: { name: string; args: Record<string, unknown> }): AIMessage {
  return new AIMessage({ content: "", tool_calls: [toolCall(call.name, call.args)] });
}

/**
 * A scripted model standing in for an LLM (no API key, deterministic), built on the SDK's own
 * `ScriptedModel`. Each turn is a `modelResponder` that plans from the conversation it is sent, as an
 * LLM would: it learns about a denial only by reading the tool result, and picks another route from
 * the failed condition the denial names.
 */
import type { AgentInputItem } from "@openai/agents";
import {
  assistantMessage,
  functionCall,
  modelResponder,
  type RecordedModelCall,
  ScriptedModel,
} from "@openai/agents-core/testing";
import { cyan, red, say, short } from "./ui.js";

const CUSTOMER = { order_id: "A-1001", email: "dana@example.com" };

/** A support model that plans every turn from its conversation; `turns` bounds the run. */
export function supportModel(turns = 6): ScriptedModel {
  return new ScriptedModel(Array.from({ length: turns }, () => modelResponder(plan)));
}

type Output = ReturnType<typeof functionCall> | ReturnType<typeof assistantMessage>;

function plan(call: RecordedModelCall): Output[] {
  const input: AgentInputItem[] = typeof call.request.input === "string" ? [] : [...call.request.input];
  const results = toolResults(input);
  const latest = results.filter((r) => r.index >= trailingResultsStart(input));
  for (const denial of latest.filter((r) => r.output.startsWith("Agent Assembly"))) {
    say(red("◂ reads"), short(denial.output, 200));
  }
  const reply = next(results);
  // A final answer is printed by the app (result.finalOutput); tool calls are narrated here.
  if (reply.type === "function_call") say(cyan("▸ agent"), `calls ${reply.name} ${short(reply.arguments)}`);
  return [reply];
}

function next(results: ToolResult[]): Output {
  const result = (name: string) => results.findLast((r) => r.name === name);
  const escalated = result("escalate_refund");
  if (escalated) {
    return escalated.output.startsWith("Agent Assembly")
      ? assistantMessage("A supervisor declined the refund; I have told the customer.")
      : assistantMessage(`Done: ${escalated.output}. The customer has been told.`);
  }
  const order = result("lookup_order");
  if (!order) return call("lookup_order", { order_id: CUSTOMER.order_id });
  const { total } = JSON.parse(order.output) as { total: number };
  const refund = result("issue_refund");
  if (!refund) return call("issue_refund", { ...CUSTOMER, amount: total });
  // The denial names the failed condition, e.g. "args.amount lte 50 (actual: 180)".
  const limit = /args\.amount lte (\d+)/.exec(refund.output)?.[1];
  if (limit === undefined) return assistantMessage(`Refund result: ${refund.output}`);
  return call("escalate_refund", {
    ...CUSTOMER,
    amount: total,
    reason: `damaged on delivery; ${total} EUR is over my ${limit} EUR refund limit`,
  });
}

let callCounter = 0;
function call(name: string, args: Record<string, unknown>) {
  return functionCall(name, args, { callId: `call_${++callCounter}` });
}

interface ToolResult {
  index: number;
  name: string;
  output: string;
}

/** The tool results in the conversation, with the tool name from the matching function call. */
function toolResults(input: AgentInputItem[]): ToolResult[] {
  const names = new Map<string, string>();
  const out: ToolResult[] = [];
  input.forEach((item, index) => {
    if (item.type === "function_call") names.set(item.callId, item.name);
    if (item.type === "function_call_result") {
      out.push({ index, name: names.get(item.callId) ?? item.name, output: textOf(item.output) });
    }
  });
  return out;
}

/** Where the tool results answering the model's latest request start (the input's trailing results). */
function trailingResultsStart(input: AgentInputItem[]): number {
  let start = input.length;
  while (start > 0 && input[start - 1]?.type === "function_call_result") start--;
  return start;
}

function textOf(output: unknown): string {
  if (typeof output === "string") return output;
  if (output && typeof output === "object" && "text" in output) return String(output.text);
  return JSON.stringify(output);
}

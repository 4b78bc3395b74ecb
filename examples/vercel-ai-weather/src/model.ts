/**
 * A mock model standing in for an LLM (no API key, deterministic), built on the AI SDK's own
 * `MockLanguageModelV4` (`ai/test`). Each step plans from the prompt it is sent, as an LLM would: it
 * learns about a denial only by reading the `execution-denied` tool result, and corrects itself from
 * the failed condition the denial names.
 */
import { MockLanguageModelV4 } from "ai/test";
import { cyan, red, say, short } from "./ui.js";

type CallOptions = Parameters<MockLanguageModelV4["doGenerate"]>[0];
type GenerateResult = Awaited<ReturnType<MockLanguageModelV4["doGenerate"]>>;
type Message = CallOptions["prompt"][number];

/** What the model reads back from a tool: its output, or why it was denied. */
interface ToolOutcome {
  toolName: string;
  denied?: string;
  value?: unknown;
}

const usage: GenerateResult["usage"] = {
  inputTokens: { total: 1, noCache: 1, cacheRead: 0, cacheWrite: 0 },
  outputTokens: { total: 1, text: 1, reasoning: 0 },
};

/** The weather assistant's model. */
export function weatherModel(): MockLanguageModelV4 {
  let calls = 0;
  const callTool = (toolName: string, input: Record<string, unknown>): GenerateResult => {
    say(cyan("▸ agent"), `calls ${toolName} ${short(input)}`);
    return {
      content: [{ type: "tool-call", toolCallId: `call_${++calls}`, toolName, input: JSON.stringify(input) }],
      finishReason: { unified: "tool-calls", raw: "tool_calls" },
      usage,
      warnings: [],
    };
  };
  const answer = (text: string): GenerateResult => ({
    content: [{ type: "text", text }],
    finishReason: { unified: "stop", raw: "stop" },
    usage,
    warnings: [],
  });

  return new MockLanguageModelV4({
    doGenerate: async ({ prompt }) => {
      const outcomes = toolOutcomes(prompt);
      for (const denial of latestOutcomes(prompt).filter((o) => o.denied !== undefined)) {
        say(red("◂ reads"), short(`execution-denied: ${denial.denied}`, 200));
      }
      const last = (name: string) => outcomes.findLast((o) => o.toolName === name);

      if (!last("get_forecast")) return callTool("get_forecast", { city: "Hamburg" });
      const thermostat = last("set_thermostat");
      if (!thermostat) return callTool("set_thermostat", { celsius: 30, home_pin: "4711" });
      if (thermostat.denied !== undefined) {
        // The denial names the failed condition, e.g. "args.celsius lte 24 (actual: 30)".
        const limit = Number(/args\.celsius lte (\d+)/.exec(thermostat.denied)?.[1]);
        if (!Number.isFinite(limit)) return answer("I could not set the heating and cannot tell why.");
        return callTool("set_thermostat", { celsius: limit, home_pin: "4711" });
      }
      const alert = last("broadcast_alert");
      if (!alert) {
        return callTool("broadcast_alert", {
          area: "Hamburg-Altona",
          message: "Storm tonight, gusts up to 95 km/h: bring in garden furniture.",
        });
      }
      if (alert.denied !== undefined) return answer(`Heating is at 24 °C; the alert was not sent.`);
      return answer(`Heating is at 24 °C and the neighbours are warned (${String(alert.value)}).`);
    },
  });
}

/** Every tool result in the prompt, in order. */
function toolOutcomes(prompt: Message[]): ToolOutcome[] {
  return prompt.flatMap((message) => (message.role === "tool" ? outcomesOf(message) : []));
}

/** The tool results answering the model's latest request (the prompt's trailing tool message). */
function latestOutcomes(prompt: Message[]): ToolOutcome[] {
  const last = prompt.at(-1);
  return last?.role === "tool" ? outcomesOf(last) : [];
}

function outcomesOf(message: Extract<Message, { role: "tool" }>): ToolOutcome[] {
  return message.content.flatMap((part): ToolOutcome[] => {
    if (part.type !== "tool-result") return [];
    const { output } = part;
    if (output.type === "execution-denied") return [{ toolName: part.toolName, denied: output.reason ?? "" }];
    return [{ toolName: part.toolName, value: "value" in output ? output.value : undefined }];
  });
}

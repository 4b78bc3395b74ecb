// Overhead of governing an OpenAI Agents SDK function tool, in one run: a whole agent turn (the
// SDK's ScriptedModel asks for one tool call, then answers) bare, with the adapter and a pass-through
// interceptor (the adapter's share: needsApproval + guardrail), and governed with the embedded gate
// (:memory: store). Each iteration uses a fresh call id (the call's idempotency key).
import { createHostContext, initAssembly } from "@aa/core";
import { Agent, Runner, setTracingDisabled, tool } from "@openai/agents";
import { assistantMessage, functionCall, ScriptedModel } from "@openai/agents-core/testing";
import { z } from "zod";
import { measureAsync, table, us, withAdapterOnly, withGovernance } from "../../../scripts/bench-util.mjs";
import { openAIAgentsAdapter } from "../dist/index.js";

setTracingDisabled(true);
const ROOT = new URL("..", import.meta.url).pathname;
const POLICY = {
  version: 1,
  default: "deny",
  policies: [
    { name: "adds", action: "add", effect: "allow", when: [{ field: "args.a", op: "lt", value: 1000 }] },
  ],
};
const add = tool({
  name: "add",
  description: "adds two numbers",
  parameters: z.object({ a: z.number(), b: z.number() }),
  execute: async ({ a, b }) => String(a + b),
});
const runner = new Runner();
let calls = 0;
async function turn() {
  calls += 1;
  // A fresh scripted model per turn: it records every request, which would otherwise pile up.
  const model = new ScriptedModel([
    [functionCall("add", { a: 1, b: 2 }, { callId: `call-${calls}` })],
    [assistantMessage("3")],
  ]);
  const result = await runner.run(new Agent({ name: "adder", model, tools: [add] }), "add");
  if (result.finalOutput !== "3") throw new Error(`unexpected output ${result.finalOutput}`);
}

const OPTIONS = { iterations: 3_000, warmup: 500 };

const adapterOnly = (fn) => withAdapterOnly(openAIAgentsAdapter, createHostContext(ROOT), fn);

const governed = (fn) =>
  withGovernance(
    initAssembly,
    { policy: POLICY, store: ":memory:", adapters: [openAIAgentsAdapter], root: ROOT },
    fn,
  );

// A whole SDK turn warms up slowly and is noisy: warm everything once, then bracket the governed
// runs with two bare runs.
await measureAsync(turn, OPTIONS);
const bareBefore = await measureAsync(turn, OPTIONS);
const patchOnly = await adapterOnly(() => measureAsync(turn, OPTIONS));
const memory = await governed(() => measureAsync(turn, OPTIONS));
const bareAfter = await measureAsync(turn, OPTIONS);
const bare = { p50: (bareBefore.p50 + bareAfter.p50) / 2, p99: (bareBefore.p99 + bareAfter.p99) / 2 };
// The adapter's own work per call, without the SDK turn around it: the SDK's approval check and
// input-guardrail step on the tool, ungoverned vs governed with a pass-through interceptor.
const toolCallFor = (callId) => ({ type: "function_call", name: "add", callId, arguments: '{"a":1,"b":2}' });
const sdkSteps = async (callId) => {
  await add.needsApproval(undefined, { a: 1, b: 2 }, callId);
  for (const guardrail of add.inputGuardrails) await guardrail.run({ toolCall: toolCallFor(callId) });
};
const STEPS = { iterations: 50_000, warmup: 5_000 };
let stepCalls = 0;
const stepsBare = await measureAsync(() => sdkSteps(`s-${++stepCalls}`), STEPS);
const stepsGoverned = await adapterOnly(async () => {
  await new Agent({ name: "adder", tools: [add] }).getAllTools(undefined);
  return measureAsync(() => sdkSteps(`s-${++stepCalls}`), STEPS);
});

const row = (name, s, base) => ({
  case: name,
  p50: us(s.p50),
  p99: us(s.p99),
  "added p50": base ? us(s.p50 - base.p50) : "",
  "ratio p50": base ? (s.p50 / base.p50).toFixed(2) : "1.00",
});
table([
  row("bare agent turn (before)", bareBefore),
  row("bare agent turn (after)", bareAfter),
  row("bare agent turn (mean of both)", bare),
  row("adapter only (pass-through interceptor)", patchOnly, bare),
  row("governed, embedded gate (:memory:)", memory, bare),
  row("SDK approval + guardrail steps, ungoverned", stepsBare),
  row("same steps, governed (pass-through interceptor)", stepsGoverned, stepsBare),
]);

// Overhead of the Vercel AI adapter on a generateText run with one tool call (two model steps,
// MockLanguageModelV4): bare, with the adapter's patch and a pass-through interceptor, and governed by
// the embedded gate (:memory:). Ratios are measured in one run. `pnpm bench vercel-ai`.
await import("../dist/register.js"); // before `ai` is imported (as `node --import` would)
const { createHostContext, initAssembly } = await import("@aa/core");
const { generateText, stepCountIs, tool } = await import("ai");
const { MockLanguageModelV4 } = await import("ai/test");
const { z } = await import("zod");
const { createVercelAiAdapter } = await import("../dist/index.js");
const { measureAsync, table, us } = await import("../../../scripts/bench-util.mjs");

const ROOT = new URL("..", import.meta.url).pathname;
const usage = {
  inputTokens: { total: 1, noCache: 1, cacheRead: 0, cacheWrite: 0 },
  outputTokens: { total: 1, text: 1, reasoning: 0 },
};
const toolTurn = {
  content: [{ type: "tool-call", toolCallId: "c1", toolName: "lookup", input: '{"q":"x"}' }],
  finishReason: { unified: "tool-calls", raw: "tool_calls" },
  usage,
  warnings: [],
};
const textTurn = {
  content: [{ type: "text", text: "done" }],
  finishReason: { unified: "stop", raw: "stop" },
  usage,
  warnings: [],
};
let step = 0;
const model = new MockLanguageModelV4({ doGenerate: async () => (step++ % 2 === 0 ? toolTurn : textTurn) });
const lookup = tool({ inputSchema: z.object({ q: z.string() }), execute: async ({ q }) => q });
const run = () => generateText({ model, tools: { lookup }, prompt: "go", stopWhen: stepCountIs(3) });
const options = { iterations: 500, warmup: 200 };
const ROUNDS = 6;

// The three cases take turns, round after round, so JIT warm-up and GC drift hit them alike; each
// figure is the median over the rounds of that round's p50 / p99.
const adapter = createVercelAiAdapter();
const passThrough = { intercept: (_call, invoke) => Promise.resolve(invoke()) };
const context = createHostContext(ROOT);
const governedAdapter = createVercelAiAdapter();
const cases = {
  bare: { setUp: async () => {}, tearDown: async () => {} },
  patched: {
    setUp: () => adapter.registerHooks(passThrough, context),
    tearDown: () => adapter.unregisterHooks(),
  },
  governed: {
    assembly: undefined,
    async setUp() {
      this.assembly = await initAssembly({
        mode: "sdk-only",
        agent: { id: "bench" },
        policy: {
          version: 1,
          default: "deny",
          policies: [{ name: "lookups", action: "lookup", effect: "allow" }],
        },
        store: ":memory:",
        adapters: [governedAdapter],
        root: ROOT,
      });
    },
    async tearDown() {
      await this.assembly.shutdown();
    },
  },
};
const results = { bare: [], patched: [], governed: [] };
for (let round = 0; round < ROUNDS; round++) {
  // rotate which case goes first: the first one of a round pays for the previous teardown
  const order = Object.entries(cases);
  for (const [name, phase] of [...order.slice(round % 3), ...order.slice(0, round % 3)]) {
    await phase.setUp();
    results[name].push(await measureAsync(run, options));
    await phase.tearDown();
  }
}
const median = (values) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)];
const figure = (name) => ({
  p50: median(results[name].map((s) => s.p50)),
  p99: median(results[name].map((s) => s.p99)),
});
const bare = figure("bare");
const patched = figure("patched");
const governed = figure("governed");

const row = (name, s) => ({
  case: name,
  p50: us(s.p50),
  p99: us(s.p99),
  "p50 vs bare": `${(s.p50 / bare.p50).toFixed(2)}x`,
  "+p50": us(s.p50 - bare.p50),
});
table([
  row("bare generateText (1 tool call)", bare),
  row("adapter patch, pass-through", patched),
  row("governed, :memory:", governed),
]);

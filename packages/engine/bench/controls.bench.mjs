// @aa/engine benchmark: what the operator controls (kill switch, circuit breaker, budgets) add to decide().
// Memory store (the cheapest decide, so the controls' share is the largest it gets); all figures
// from this one run, as ratios to an engine where no agent is contained and no failure is counted.
import { compilePolicy, parsePolicy } from "@aa/policy";
import { measureAsync, table, us } from "../../../scripts/bench-util.mjs";
import { openEngine } from "../dist/index.js";

const quick = process.env.AA_BENCH_QUICK === "1";
const policy = compilePolicy(
  parsePolicy(`version: 1
default: deny
policies:
  - name: small-prs
    action: pr.open
    effect: allow
    when: [ { field: metadata.pr_size, op: lt, value: 50 } ]
`),
);
const request = {
  agent: { id: "bench" },
  actionType: "pr.open",
  toolName: "open_pr",
  args: { title: "Fix typo" },
  metadata: { pr_size: 12 },
  delegationChain: ["root", "bench"],
};

async function engineWith(setup, extra = {}) {
  const engine = await openEngine({
    policy,
    store: ":memory:",
    circuitBreaker: { threshold: 1_000_000 },
    ...extra,
  });
  await setup(engine);
  return engine;
}
const configs = {
  "no containment, no failures (baseline)": await engineWith(async () => {}),
  "100 other agents contained (map lookups, delegation walk)": await engineWith(async (engine) => {
    for (let i = 0; i < 100; i++) await engine.contain(`other-${i}`, "ops", "bench");
  }),
  "agent with failures counted (closed breaker entry)": await engineWith(async (engine) => {
    for (let i = 0; i < 50; i++) await engine.decide({ ...request, metadata: { pr_size: 500 } });
  }),
  "calls, tokens and cost budgets configured (under the limit)": await engineWith(async () => {}, {
    budgets: {
      calls: { limit: Number.MAX_SAFE_INTEGER, windowMs: 3_600_000 },
      tokens: { limit: 1_000_000, windowMs: 3_600_000 },
      cost: { limit: 100, windowMs: 3_600_000 },
    },
  }),
};
const decide = (engine) => () => engine.decide(request);
const p50s = Object.fromEntries(Object.keys(configs).map((k) => [k, []]));
// Interleaved rounds (the machine is shared); medians of the round p50s.
for (let round = 0; round < (quick ? 3 : 7); round++) {
  for (const [name, engine] of Object.entries(configs)) {
    const s = await measureAsync(decide(engine), { iterations: quick ? 5_000 : 20_000, warmup: 2_000 });
    p50s[name].push(s.p50);
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const base = median(p50s["no containment, no failures (baseline)"]);
table(
  Object.entries(p50s).map(([name, xs]) => ({
    "decide() on memory": name,
    p50: us(median(xs)),
    "× baseline": (median(xs) / base).toFixed(2),
  })),
);
for (const engine of Object.values(configs)) await engine.close();

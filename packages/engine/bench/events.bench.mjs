// @aa/engine benchmark: what realtime-event subscribers add to decide() (memory store, the cheapest
// decide, so the subscribers' share is the largest it gets). Each sample is 100 decides followed by
// one event-loop turn, in which subscribers are woken and read what was appended; the figure is per
// decide, as a ratio to an engine without subscribers, all from this one run.
import { compilePolicy, parsePolicy } from "@aa/policy";
import { measureAsync, table, us } from "../../../scripts/bench-util.mjs";
import { openEngine } from "../dist/index.js";

const quick = process.env.AA_BENCH_QUICK === "1";
const policy = compilePolicy(
  parsePolicy(`version: 1
default: deny
policies:
  - { name: reads, action: "read.*", effect: allow }
`),
);
const request = { agent: { id: "bench" }, actionType: "read.file", args: { path: "README.md" } };
const PER_SAMPLE = 100;

async function engineWith(subscribe) {
  const engine = await openEngine({ policy, store: ":memory:" });
  await subscribe(engine);
  return engine;
}
let delivered = 0;
const configs = {
  "no subscriber (baseline)": await engineWith(async () => {}),
  "one subscriber, every event": await engineWith((engine) => engine.subscribe(() => void delivered++)),
  "one subscriber, another agent only (filtered out)": await engineWith((engine) =>
    engine.subscribe(() => void delivered++, { agentFilter: "someone-else" }),
  ),
  "three subscribers, every event": await engineWith(async (engine) => {
    for (let i = 0; i < 3; i++) await engine.subscribe(() => void delivered++);
  }),
};
const sample = (engine) => async () => {
  for (let i = 0; i < PER_SAMPLE; i++) await engine.decide(request);
  await new Promise((resolve) => setImmediate(resolve));
};
const p50s = Object.fromEntries(Object.keys(configs).map((k) => [k, []]));
// Interleaved rounds (the machine is shared); medians of the round p50s.
for (let round = 0; round < (quick ? 3 : 7); round++) {
  for (const [name, engine] of Object.entries(configs)) {
    const s = await measureAsync(sample(engine), { iterations: quick ? 50 : 200, warmup: 20 });
    p50s[name].push(s.p50 / PER_SAMPLE);
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const base = median(p50s["no subscriber (baseline)"]);
table(
  Object.entries(p50s).map(([name, xs]) => ({
    "decide() on memory": name,
    "p50 per decide": us(median(xs)),
    "× baseline": (median(xs) / base).toFixed(2),
  })),
);
if (delivered === 0) throw new Error("no event was delivered: the benchmark measured nothing");
for (const engine of Object.values(configs)) await engine.close();

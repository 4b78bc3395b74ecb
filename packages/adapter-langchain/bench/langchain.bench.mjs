// Overhead of governing a LangChain tool, in one run: a bare DynamicStructuredTool.invoke against
// the same tool governed (a) decision only with an in-memory store, (b) with the audit event
// committed to a SQLite file, (c) for a tool doing a loopback HTTP request (SQLite store).
// Figures are medians over interleaved rounds of each round's p50 / p99, and of the process CPU
// time per call (steadier than wall time when the machine is loaded). The memory store seals
// records after the call returns (batched); that work still runs on this thread during the rounds.
// Targets: (a) +<= 2 µs p50 / +<= 5 µs p99, (b) +<= 25 µs p50, (c) +<= 10 %.
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHostContext, initAssembly } from "@aa/core";
import { DynamicStructuredTool } from "@langchain/core/tools";
import { z } from "zod";
import { measureAsync, table, us, withAdapterOnly, withGovernance } from "../../../scripts/bench-util.mjs";
import { langchainAdapter } from "../dist/index.js";

const ROOT = new URL("..", import.meta.url).pathname;
const POLICY = {
  version: 1,
  default: "deny",
  policies: [
    { name: "adds", action: "add", effect: "allow", when: [{ field: "args.a", op: "lt", value: 1000 }] },
    { name: "local-fetch", action: "fetch_local", effect: "allow" },
  ],
};

const add = new DynamicStructuredTool({
  name: "add",
  description: "adds two numbers",
  schema: z.object({ a: z.number(), b: z.number() }),
  func: async ({ a, b }) => String(a + b),
});
const input = { a: 1, b: 2 };

const server = createServer((_req, res) => res.end("ok"));
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const url = `http://127.0.0.1:${server.address().port}/`;
const fetchLocal = new DynamicStructuredTool({
  name: "fetch_local",
  description: "GET a loopback URL",
  schema: z.object({ path: z.string() }),
  func: async () => (await fetch(url)).text(),
});

const quick = process.env.AA_BENCH_QUICK === "1";
const ROUNDS = quick ? 2 : 5;
const FAST = { iterations: quick ? 3_000 : 10_000, warmup: 2_000 };
const HTTP = { iterations: quick ? 500 : 1_000, warmup: 500 };
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
/** Medians, over the rounds, of each round's p50, p99 and CPU per call. */
const medianOfRounds = (stats) => ({
  p50: median(stats.map((s) => s.p50)),
  p99: median(stats.map((s) => s.p99)),
  cpu: median(stats.map((s) => s.cpu)),
});

/** The adapter's own share: the same patch with an interceptor that only runs the tool. */
const adapterOnly = (fn) => withAdapterOnly(langchainAdapter, createHostContext(ROOT), fn);

const governed = (store, fn) =>
  withGovernance(initAssembly, { policy: POLICY, store, adapters: [langchainAdapter], root: ROOT }, fn);

const dir = mkdtempSync(join(tmpdir(), "aa-langchain-bench-"));
try {
  // Rounds interleave the cases (the machine is shared); each figure is a median over rounds.
  const runs = { bare: [], patchOnly: [], memory: [], sqlite: [], bareHttp: [], governedHttp: [] };
  const sqliteFile = join(dir, "a.db");
  const httpFile = join(dir, "b.db");
  for (let round = 0; round < ROUNDS; round++) {
    runs.bare.push(await measureAsync(() => add.invoke(input), FAST));
    runs.patchOnly.push(await adapterOnly(() => measureAsync(() => add.invoke(input), FAST)));
    runs.memory.push(await governed(":memory:", () => measureAsync(() => add.invoke(input), FAST)));
    runs.sqlite.push(await governed(sqliteFile, () => measureAsync(() => add.invoke(input), FAST)));
    // Loopback HTTP is noisy and warms up slowly: bare and governed alternate within the round.
    runs.bareHttp.push(await measureAsync(() => fetchLocal.invoke({ path: "/" }), HTTP));
    runs.governedHttp.push(
      await governed(httpFile, () => measureAsync(() => fetchLocal.invoke({ path: "/" }), HTTP)),
    );
  }
  const bare = medianOfRounds(runs.bare);
  const patchOnly = medianOfRounds(runs.patchOnly);
  const memory = medianOfRounds(runs.memory);
  const sqlite = medianOfRounds(runs.sqlite);
  const bareHttp = medianOfRounds(runs.bareHttp);
  const governedHttp = medianOfRounds(runs.governedHttp);

  const row = (name, s, base, target) => ({
    case: name,
    p50: us(s.p50),
    p99: us(s.p99),
    "added p50": base ? us(s.p50 - base.p50) : "",
    "added p99": base ? us(s.p99 - base.p99) : "",
    "ratio p50": base ? (s.p50 / base.p50).toFixed(2) : "1.00",
    "CPU/call": us(s.cpu),
    "added CPU": base ? us(s.cpu - base.cpu) : "",
    target: target ?? "",
  });
  table([
    row("bare DynamicStructuredTool.invoke", bare),
    row("adapter only (pass-through interceptor)", patchOnly, bare, "(the adapter's share of (a))"),
    row("(a) governed, decision only (:memory:)", memory, bare, "+<= 2 µs p50, +<= 5 µs p99"),
    row("(b) governed, audit committed to SQLite", sqlite, bare, "+<= 25 µs p50"),
    row("bare loopback HTTP tool", bareHttp),
    row("(c) governed loopback HTTP tool (SQLite)", governedHttp, bareHttp, "+<= 10 %"),
  ]);
} finally {
  server.close();
  rmSync(dir, { recursive: true, force: true });
}

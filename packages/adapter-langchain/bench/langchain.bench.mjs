// Overhead of governing a LangChain tool, in one run: a bare DynamicStructuredTool.invoke against
// the same tool governed (a) decision only with an in-memory store, (b) with the audit event
// committed to a SQLite file, (c) for a tool doing a loopback HTTP request (SQLite store).
// The machine is shared and its load drifts by the second, so every governed case is paired with a
// bare twin (the same tool with LangChain's unpatched `call`): inside each session the two alternate
// in blocks of 20 calls (which goes first flips every block), on the same heap, load and, for (c),
// keep-alive connection. Per round: p50 / p99 of each side and CPU time per call (steadier than wall
// time on a loaded machine); figures are medians over interleaved rounds of the per-round values and
// differences. The memory store seals records in batches (inline once 512 wait, in a loop of awaited
// calls): that work lands in the governed calls. (c) is broken down by the same pairing with the
// adapter alone and with the memory store, and by the time the tool's own fetch takes inside the call.
// Its floor row needs no engine: the bare tool itself commits one row to SQLite (same table and
// index, a record of the same size, WAL, synchronous=NORMAL) before its fetch, which is the least
// any "durable before the tool runs" design costs on the event-loop thread.
// Targets: (a) +<= 2 µs p50 / +<= 5 µs p99, (b) +<= 25 µs p50, (c) +<= 10 %.
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { createHostContext, initAssembly } from "@aa/core";
import { DynamicStructuredTool, StructuredTool } from "@langchain/core/tools";
import { z } from "zod";
import { summarize, table, us, withAdapterOnly, withGovernance } from "../../../scripts/bench-util.mjs";
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

// Captured before anything patches it: the bare twins call LangChain's own `call`.
const unpatchedCall = StructuredTool.prototype.call;
const bareAdd = new DynamicStructuredTool({
  name: "add",
  description: "adds two numbers",
  schema: z.object({ a: z.number(), b: z.number() }),
  func: async ({ a, b }) => String(a + b),
});
Object.defineProperty(bareAdd, "call", { value: unpatchedCall });

const server = createServer((_req, res) => res.end("ok"));
// A loaded machine can stall the loop for seconds: never let the server drop the idle connection.
server.keepAliveTimeout = 60_000;
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const url = `http://127.0.0.1:${server.address().port}/`;
/** ns the last `fetch` took inside the tool (what governance may slow down from the outside). */
let fetchNs = 0;
const fetchTool = () =>
  new DynamicStructuredTool({
    name: "fetch_local",
    description: "GET a loopback URL",
    schema: z.object({ path: z.string() }),
    func: async () => {
      const t0 = process.hrtime.bigint();
      const text = await (await fetch(url)).text();
      fetchNs = Number(process.hrtime.bigint() - t0);
      return text;
    },
  });
const fetchLocal = fetchTool();
const bareFetchLocal = fetchTool();
Object.defineProperty(bareFetchLocal, "call", { value: unpatchedCall });

/**
 * The (c) floor: one bare SQLite commit (the audit table's shape, a ~770-byte record like the
 * engine's, WAL, synchronous=NORMAL, checkpoints as rare as the engine's) made by the bare tool
 * itself right before its fetch. No engine, no policy, no hashing.
 */
function floorTool(file) {
  const db = new DatabaseSync(file);
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("PRAGMA synchronous = NORMAL");
  db.exec("PRAGMA wal_autocheckpoint = 10000");
  db.exec(`CREATE TABLE audit_events (org TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL,
    hash TEXT NOT NULL, agent TEXT NOT NULL, action_type TEXT NOT NULL, record TEXT NOT NULL);
    CREATE UNIQUE INDEX audit_events_org_seq ON audit_events (org, seq);`);
  const begin = db.prepare("BEGIN IMMEDIATE");
  const insert = db.prepare(
    "INSERT INTO audit_events (org, seq, id, hash, agent, action_type, record) VALUES (?, ?, ?, ?, ?, ?, ?)",
  );
  const commit = db.prepare("COMMIT");
  const record = JSON.stringify({ args: { path: "/" }, pad: "x".repeat(720) });
  let seq = 0;
  const tool = new DynamicStructuredTool({
    name: "fetch_local",
    description: "GET a loopback URL",
    schema: z.object({ path: z.string() }),
    func: async () => {
      begin.get();
      insert.get("default", ++seq, randomUUID(), "0".repeat(64), "bench", "fetch_local", record);
      commit.get();
      const t0 = process.hrtime.bigint();
      const text = await (await fetch(url)).text();
      fetchNs = Number(process.hrtime.bigint() - t0);
      return text;
    },
  });
  Object.defineProperty(tool, "call", { value: unpatchedCall });
  return { tool, close: () => db.close() };
}

const quick = process.env.AA_BENCH_QUICK === "1";
const ROUNDS = quick ? 2 : 5;
const FAST = { iterations: quick ? 3_000 : 10_000, warmup: 2_000, block: 20 };
const HTTP = { iterations: quick ? 400 : 1_000, warmup: 200, block: 20 };
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Governed and bare twin alternate in blocks (the first of each pair flips every block); per side:
 * p50/p99 of the call, CPU per call, and p50 of the fetch inside the tool.
 */
async function alternate(governedTool, bareTool, input, { iterations, warmup, block }) {
  for (let i = 0; i < warmup; i++) {
    await governedTool.invoke(input);
    await bareTool.invoke(input);
  }
  const side = () => ({ samples: [], inner: [], cpu: 0 });
  const g = side();
  const b = side();
  for (let done = 0; done < iterations; done += block) {
    for (const [tool, out] of (done / block) % 2
      ? [
          [bareTool, b],
          [governedTool, g],
        ]
      : [
          [governedTool, g],
          [bareTool, b],
        ]) {
      const cpu0 = process.cpuUsage();
      for (let j = 0; j < block; j++) {
        const t0 = process.hrtime.bigint();
        await tool.invoke(input);
        out.samples.push(Number(process.hrtime.bigint() - t0));
        out.inner.push(fetchNs);
      }
      const used = process.cpuUsage(cpu0);
      out.cpu += (used.user + used.system) * 1000;
    }
  }
  const stats = (s) => ({
    ...summarize(s.samples),
    cpu: s.cpu / s.samples.length,
    inner: summarize(s.inner).p50,
  });
  return { governed: stats(g), bare: stats(b) };
}

/** The adapter's own share: the same patch with an interceptor that only runs the tool. */
const adapterOnly = (fn) => withAdapterOnly(langchainAdapter, createHostContext(ROOT), fn);

const governed = (store, fn) =>
  withGovernance(initAssembly, { policy: POLICY, store, adapters: [langchainAdapter], root: ROOT }, fn);

const dir = mkdtempSync(join(tmpdir(), "aa-langchain-bench-"));
try {
  // Rounds interleave the cases (the machine is shared); each figure is a median over rounds.
  const runs = {
    patchOnly: [],
    memory: [],
    sqlite: [],
    httpPatch: [],
    httpMemory: [],
    httpSqlite: [],
    httpFloor: [],
  };
  const sqliteFile = join(dir, "a.db");
  const httpFile = join(dir, "b.db");
  const floor = floorTool(join(dir, "c.db"));
  const fast = () => alternate(add, bareAdd, input, FAST);
  const http = () => alternate(fetchLocal, bareFetchLocal, { path: "/" }, HTTP);
  for (let round = 0; round < ROUNDS; round++) {
    runs.patchOnly.push(await adapterOnly(fast));
    runs.memory.push(await governed(":memory:", fast));
    runs.sqlite.push(await governed(sqliteFile, fast));
    runs.httpPatch.push(await adapterOnly(http));
    runs.httpMemory.push(await governed(":memory:", http));
    runs.httpSqlite.push(await governed(httpFile, http));
    runs.httpFloor.push(await alternate(floor.tool, bareFetchLocal, { path: "/" }, HTTP));
  }
  floor.close();

  /** One row: the governed side against its bare twin of the same rounds (medians over rounds). */
  const pairRow = (label, name, pairs, target, withFetch = false) => {
    const m = (pick) => median(pairs.map(pick));
    return {
      [label]: name,
      "bare p50": us(m((p) => p.bare.p50)),
      "governed p50": us(m((p) => p.governed.p50)),
      "added p50": us(m((p) => p.governed.p50 - p.bare.p50)),
      "added p99": us(m((p) => p.governed.p99 - p.bare.p99)),
      "ratio p50": m((p) => p.governed.p50 / p.bare.p50).toFixed(2),
      "added CPU": us(m((p) => p.governed.cpu - p.bare.cpu)),
      ...(withFetch
        ? {
            "fetch inside, bare": us(m((p) => p.bare.inner)),
            "fetch inside, governed": us(m((p) => p.governed.inner)),
          }
        : { "bare CPU": us(m((p) => p.bare.cpu)) }),
      target: target ?? "",
    };
  };
  const TOOL = "DynamicStructuredTool.invoke";
  table([
    pairRow(TOOL, "adapter only (pass-through interceptor)", runs.patchOnly, "(the adapter's share of (a))"),
    pairRow(TOOL, "(a) governed, decision only (:memory:)", runs.memory, "+<= 2 µs p50, +<= 5 µs p99"),
    pairRow(TOOL, "(b) governed, audit committed to SQLite", runs.sqlite, "+<= 25 µs p50"),
  ]);
  const HTTP_TOOL = "loopback HTTP tool";
  table([
    pairRow(HTTP_TOOL, "adapter only (pass-through interceptor)", runs.httpPatch, "", true),
    pairRow(HTTP_TOOL, "governed, :memory: (decision, no commit)", runs.httpMemory, "", true),
    pairRow(HTTP_TOOL, "(c) governed, audit committed to SQLite", runs.httpSqlite, "+<= 10 %", true),
    pairRow(
      HTTP_TOOL,
      "floor: the bare tool commits 1 SQLite row first",
      runs.httpFloor,
      "(no engine)",
      true,
    ),
  ]);
} finally {
  server.close();
  rmSync(dir, { recursive: true, force: true });
}

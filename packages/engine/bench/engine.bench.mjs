// @aa/engine benchmark: durable audit appends, decide() latency, verify speed (PostgreSQL: postgres.bench.mjs).
// All figures come from this one run; ratios compare against a bare SQLite insert measured here too.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compilePolicy, parsePolicy } from "@aa/policy";
import { measure, measureAsync, table, us } from "../../../scripts/bench-util.mjs";
import { uuidv7 } from "../dist/ids.js";
import { openEngine, SQLITE_MIGRATIONS } from "../dist/index.js";

const quick = process.env.AA_BENCH_QUICK === "1";
const VERIFY_ROWS = quick ? 100_000 : 1_000_000;
const dir = mkdtempSync(join(tmpdir(), "aa-engine-bench-"));
const policy = compilePolicy(
  parsePolicy(`version: 1
default: deny
policies:
  - name: small-prs
    action: pr.open
    effect: allow
    when: [ { field: metadata.pr_size, op: lt, value: 50 } ]
redact: [ { path: "$.card", mode: mask } ]
`),
);
const request = {
  agent: { id: "bench" },
  actionType: "pr.open",
  toolName: "open_pr",
  framework: "langchain",
  args: { title: "Fix typo", branch: "fix/typo" },
  metadata: { pr_size: 12 },
};
const rows = [];

// 1. Bare SQLite insert, one row per transaction (WAL, synchronous=NORMAL), into the same table
// shape (our schema, all migrations applied) with a real ~900-byte record text, so the ratios show our
// overhead rather than a difference in row size.
const { DatabaseSync } = await import("node:sqlite");
const bare = new DatabaseSync(join(dir, "bare.db"));
bare.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
// Every migration, so the bare table has exactly the indexes our hot table has.
for (const migration of SQLITE_MIGRATIONS) bare.exec(migration);
const insert = bare.prepare(
  "INSERT INTO audit_events (org, seq, id, hash, agent, action_type, record) VALUES (?, ?, ?, ?, ?, ?, ?)",
);
const sample = await openEngine({ policy, store: ":memory:" });
await sample.decide(request);
const sampleEvent = (await sample.audit()).items[0];
await sample.close();
const { hash: _hash, ...sampleRecord } = sampleEvent;
const text = JSON.stringify(sampleRecord);
let seq = 0;
const t0Bare = process.hrtime.bigint();
const BATCHES = quick ? 100 : 400;
for (let b = 0; b < BATCHES; b++) {
  bare.exec("BEGIN");
  for (let i = 0; i < 256; i++) insert.run("o", ++seq, uuidv7(), sampleEvent.hash, "bench", "pr.open", text);
  bare.exec("COMMIT");
}
const bareBatchedRate = (BATCHES * 256) / (Number(process.hrtime.bigint() - t0Bare) / 1e9);
bare.close();
rows.push({ measure: "bare SQLite insert, 256 rows/txn (ceiling)", "events/s": Math.round(bareBatchedRate) });

// 2. decide() on SQLite: a lone caller, each allowed decision committed before it resolves.
// Interleaved with the bare insert in rounds (the machine is shared), medians of the round p50s.
const engine = await openEngine({ policy, store: join(dir, "engine.db") });
const bare1 = new DatabaseSync(join(dir, "bare.db"));
bare1.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"); // synchronous is per connection
const insert1 = bare1.prepare(
  "INSERT INTO audit_events (org, seq, id, hash, agent, action_type, record) VALUES (?, ?, ?, ?, ?, ?, ?)",
);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const barePerRound = [];
const decidePerRound = [];
const bareP99 = [];
const decideP99 = [];
for (let round = 0; round < (quick ? 3 : 7); round++) {
  const b = measure(
    () => {
      bare1.exec("BEGIN");
      insert1.run("o", ++seq, uuidv7(), sampleEvent.hash, "bench", "pr.open", text);
      bare1.exec("COMMIT");
    },
    { iterations: 3_000, warmup: 500 },
  );
  const d = await measureAsync(() => engine.decide(request), { iterations: 3_000, warmup: 500 });
  barePerRound.push(b.p50);
  bareP99.push(b.p99);
  decidePerRound.push(d.p50);
  decideP99.push(d.p99);
}
bare1.close();
const bareStats = { p50: median(barePerRound), p99: median(bareP99) };
const decideStats = { p50: median(decidePerRound), p99: median(decideP99) };
rows.unshift({
  measure: `bare SQLite insert, 1 row/txn (${text.length} B record, same table)`,
  p50: us(bareStats.p50),
  p99: us(bareStats.p99),
  "events/s": Math.round(1e9 / bareStats.p50),
});
rows.push({
  measure: "decide() allowed + durable commit (lone caller)",
  p50: us(decideStats.p50),
  p99: us(decideStats.p99),
  "events/s": Math.round(1e9 / decideStats.p50),
  "vs bare insert": `${(decideStats.p50 / bareStats.p50).toFixed(2)}x (+${us(decideStats.p50 - bareStats.p50)})`,
});

// 3. Group commit: many concurrent decide() calls share one transaction per flush.
async function concurrentRate(eng, concurrency, total) {
  const t0 = process.hrtime.bigint();
  for (let done = 0; done < total; done += concurrency) {
    const batch = [];
    for (let i = 0; i < concurrency; i++) batch.push(eng.decide(request));
    await Promise.all(batch);
  }
  return total / (Number(process.hrtime.bigint() - t0) / 1e9);
}
await concurrentRate(engine, 256, 20_000);
const groupRate = await concurrentRate(engine, 256, quick ? 50_000 : 200_000);
rows.push({
  measure: "decide() durable, group commit (256 concurrent)",
  "events/s": Math.round(groupRate),
  "vs bare insert": `${(groupRate / (1e9 / bareStats.p50)).toFixed(1)}x (${(groupRate / bareBatchedRate).toFixed(2)}x of batched ceiling)`,
});

// decide on the memory store, for the decision path alone. The memory store seals records
// (encoding, hashing, linking) in batches after decide() resolves, so its latency leaves that
// work out; the sustained rate below includes it (the last batch is sealed inside the timing).
const mem = await openEngine({ policy, store: ":memory:" });
const memStats = await measureAsync(() => mem.decide(request), { iterations: 20_000, warmup: 5_000 });
rows.push({
  measure: "decide() memory store (no I/O; sealing deferred)",
  p50: us(memStats.p50),
  p99: us(memStats.p99),
});
const memRates = [];
for (let round = 0; round < 5; round++) {
  const calls = quick ? 20_000 : 50_000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) await mem.decide(request);
  await mem.checkpoint(); // reads the head, which seals everything pending
  memRates.push(calls / (Number(process.hrtime.bigint() - t0) / 1e9));
}
rows.push({
  measure: "decide() memory store, sustained incl. deferred sealing",
  "events/s": Math.round(median(memRates)),
});
await mem.close();
await engine.close();

// 4. Verify over a large chain.
const big = await openEngine({ policy, store: join(dir, "big.db"), checkpointInterval: 100_000 });
for (let n = 0; n < VERIFY_ROWS; n += 1000) {
  const batch = [];
  for (let i = 0; i < 1000; i++) batch.push(big.decide(request));
  await Promise.all(batch);
}
const v0 = process.hrtime.bigint();
const verified = await big.verify();
const verifyRate = verified.checked / (Number(process.hrtime.bigint() - v0) / 1e9);
if (!verified.chainValid || verified.checked !== VERIFY_ROWS)
  throw new Error(`verify failed: ${JSON.stringify(verified)}`);
rows.push({
  measure: `verify() over ${VERIFY_ROWS.toLocaleString("en")} records`,
  "events/s": Math.round(verifyRate),
});
await big.close();

table(rows);
console.log(
  `targets: decide+commit p50 <= 25 µs (${us(decideStats.p50)}); group commit >= 100k/s (${Math.round(groupRate)}); verify >= 500k rows/s (${Math.round(verifyRate)}); PostgreSQL: see postgres.bench.mjs`,
);
rmSync(dir, { recursive: true, force: true });

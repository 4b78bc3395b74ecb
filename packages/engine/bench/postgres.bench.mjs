// @aa/engine PostgreSQL benchmark: several gateway replicas (separate engines, each with its own
// pool) appending to ONE org chain, verified afterwards, against a bare single-session batched
// INSERT of the same rows into the same table shape, measured in the same run (the machine is shared,
// so only the ratio is comparable between runs).
//
// Env: AA_BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test), AA_BENCH_QUICK=1,
// AA_BENCH_PG_WRITERS (4), AA_BENCH_PG_INFLIGHT (concurrent callers per writer, 64),
// AA_BENCH_PG_TOTAL (events in the measured phase, 40000).
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { compilePolicy, parsePolicy } from "@aa/policy";
import { table } from "../../../scripts/bench-util.mjs";
import { uuidv7 } from "../dist/ids.js";
import { openEngine } from "../dist/index.js";

const quick = process.env.AA_BENCH_QUICK === "1";
const WRITERS = Number(process.env.AA_BENCH_PG_WRITERS ?? 4);
const IN_FLIGHT = Number(process.env.AA_BENCH_PG_INFLIGHT ?? 64);
const TOTAL = Number(process.env.AA_BENCH_PG_TOTAL ?? (quick ? 10_000 : 40_000));
const ROUNDS = quick ? 1 : 3;
const pgUrl = process.env.AA_BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const schema = `aa_pgbench_${process.pid}`;
const bareSchema = `${schema}_bare`;
const pg = (await import("pg")).default;

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

/** CPU seconds used so far by every process named `postgres` (the server's backends and helpers). */
function serverCpuSeconds() {
  let ticks = 0;
  for (const pid of readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      if (!stat.includes("(postgres)")) continue;
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime
    } catch {}
  }
  return ticks / 100;
}
const cpuNow = () => ({
  node: process.cpuUsage(),
  server: existsSync("/proc/self/stat") ? serverCpuSeconds() : Number.NaN,
});
/** CPU µs per event in this process and in the server since `start`. */
function cpuPerEvent(start, events) {
  const node = process.cpuUsage(start.node);
  return {
    node: (node.user + node.system) / events,
    server: ((cpuNow().server - start.server) * 1e6) / events,
  };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const seconds = (t0) => Number(process.hrtime.bigint() - t0) / 1e9;

/** `total` decide() calls spread over the writers, each kept `inFlight` calls busy. */
async function drive(writers, total, inFlight) {
  let issued = 0;
  const caller = async (engine) => {
    while (issued < total) {
      issued++;
      const decision = await engine.decide(request);
      if (decision.status !== "executed") throw new Error(`unexpected decision ${decision.status}`);
    }
  };
  const t0 = process.hrtime.bigint();
  await Promise.all(writers.flatMap((w) => Array.from({ length: inFlight }, () => caller(w))));
  return total / seconds(t0);
}

/** One session, one transaction per 256 rows, one multi-row INSERT (unnest) per transaction. */
async function bareBatchedRate(client, text, hash, rows) {
  const BATCH = 256;
  let seq = 0;
  const t0 = process.hrtime.bigint();
  for (let done = 0; done < rows; done += BATCH) {
    const seqs = [];
    const ids = [];
    for (let i = 0; i < BATCH; i++) {
      seqs.push(++seq);
      ids.push(uuidv7());
    }
    await client.query("BEGIN");
    await client.query(
      `INSERT INTO ${bareSchema}.audit_events (org, seq, id, hash, agent, action_type, record)
       SELECT 'o', * FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])`,
      [seqs, ids, ids.map(() => hash), ids.map(() => "bench"), ids.map(() => "pr.open"), ids.map(() => text)],
    );
    await client.query("COMMIT");
  }
  const rate = rows / seconds(t0);
  await client.query(`TRUNCATE ${bareSchema}.audit_events`);
  return rate;
}

const admin = new pg.Client({ connectionString: pgUrl });
try {
  await admin.connect();
} catch (error) {
  console.log(`PostgreSQL unavailable at ${pgUrl}: ${error.message}`);
  process.exit(1);
}
const rows = [];
try {
  const storeUrl = `${pgUrl}?schema=${schema}`;
  // Two sets of replicas, each on a chain of its own: the default (head lock held through the
  // commit's WAL flush) and the opt-in early_lock_release=on. Rounds interleave bare, default, early.
  // The third set adds the counters replicas share (migration 6): the calls budget and agent and
  // tenant rate limits, never reached, so every decision checks and counts three shared counters
  // (one store round trip per replica per tick) on top of the default set's work.
  const HIGH = { limit: 1e12, windowMs: 3_600_000 };
  const variants = [
    { name: "default", url: storeUrl },
    { name: "early_lock_release=on", url: `${storeUrl}&early_lock_release=on` },
    {
      name: "default + shared rate limits and calls budget",
      url: storeUrl,
      options: { rateLimits: { agent: HIGH, tenant: HIGH }, budgets: { calls: HIGH } },
    },
  ];
  for (const variant of variants) {
    variant.writers = await Promise.all(
      Array.from({ length: WRITERS }, () =>
        openEngine({ policy, store: variant.url, orgId: variant.name, ...variant.options }),
      ),
    );
    await drive(variant.writers, 4_000, IN_FLIGHT); // warm-up: connections, plans
    variant.rates = [];
    variant.cpu = [];
  }
  const sample = (await variants[0].writers[0].audit({ limit: 1 })).items[0];
  const { hash: sampleHash, ...sampleRecord } = sample;
  const text = JSON.stringify(sampleRecord);
  // The bare table: the store's own audit_events shape, in a schema of its own.
  await admin.query(
    `CREATE SCHEMA ${bareSchema}; CREATE TABLE ${bareSchema}.audit_events (LIKE ${schema}.audit_events INCLUDING ALL)`,
  );
  await bareBatchedRate(admin, text, sampleHash, 4_096);

  const bareRates = [];
  const bareCpu = [];
  for (let round = 0; round < ROUNDS; round++) {
    let start = cpuNow();
    bareRates.push(await bareBatchedRate(admin, text, sampleHash, TOTAL));
    bareCpu.push(cpuPerEvent(start, TOTAL));
    for (const variant of variants) {
      start = cpuNow();
      variant.rates.push(await drive(variant.writers, TOTAL, IN_FLIGHT));
      variant.cpu.push(cpuPerEvent(start, TOTAL));
    }
  }
  const bare = median(bareRates);
  rows.push({
    measure: `bare INSERT, 1 session, 256 rows/txn (${text.length} B record, same table)`,
    "events/s": Math.round(bare),
    rounds: bareRates.map(Math.round).join(" "),
    "node CPU µs/event": median(bareCpu.map((c) => c.node)).toFixed(1),
    "server CPU µs/event": median(bareCpu.map((c) => c.server)).toFixed(1),
  });
  for (const variant of variants) {
    const verified = await variant.writers[0].verify();
    const expected = 4_000 + ROUNDS * TOTAL;
    if (!verified.chainValid || verified.checked !== expected)
      throw new Error(
        `PostgreSQL chain (${variant.name}) did not verify: ${JSON.stringify(verified)} (expected ${expected})`,
      );
    variant.median = median(variant.rates);
    rows.push({
      measure: `${WRITERS} writers x ${IN_FLIGHT} in flight, one chain, ${variant.name} (verified ${verified.checked})`,
      "events/s": Math.round(variant.median),
      rounds: variant.rates.map(Math.round).join(" "),
      "vs bare": `${(variant.median / bare).toFixed(2)}x`,
      "vs default": `${(variant.median / variants[0].median).toFixed(2)}x`,
      "node CPU µs/event": median(variant.cpu.map((c) => c.node)).toFixed(1),
      "server CPU µs/event": median(variant.cpu.map((c) => c.server)).toFixed(1),
    });
    await Promise.all(variant.writers.map((w) => w.close()));
  }
  table(rows);
  console.log(
    `target: >= 30k events/s with 4 writers on one chain (default: median ${Math.round(variants[0].median)}, early_lock_release=on: ${Math.round(variants[1].median)})`,
  );
  const perDecision = (1 / variants[2].median - 1 / variants[0].median) * 1e6;
  console.log(
    `shared counters: ${perDecision.toFixed(1)} µs more wall time per decision at this concurrency (medians), ${(
      Number(rows.at(-1)["node CPU µs/event"]) - Number(rows[1]["node CPU µs/event"])
    ).toFixed(
      1,
    )} µs more Node CPU, ${(Number(rows.at(-1)["server CPU µs/event"]) - Number(rows[1]["server CPU µs/event"])).toFixed(1)} µs more server CPU`,
  );
} finally {
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE; DROP SCHEMA IF EXISTS ${bareSchema} CASCADE`);
  await admin.end();
}

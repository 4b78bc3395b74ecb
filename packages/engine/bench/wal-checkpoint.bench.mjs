// @aa/engine benchmark: event-loop stalls from SQLite WAL checkpoints, checkpoint worker (new) vs
// wal_autocheckpoint on the writer connection (old), alternating in one process (A/B/A/B).
// Each run appends RECORDS decisions, CONCURRENCY at a time, letting the event loop turn between
// batches as a server would; it reports event-loop delay (max, p99), the slowest batch, how many
// batches took over 20 ms and how many of those were the last batch before a WAL restart (the WAL
// header's checkpoint sequence number, bytes 12..15, changes when the WAL starts over).
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { compilePolicy, parsePolicy } from "@aa/policy";
import { openEngine } from "../dist/index.js";
import { checkpointTuning } from "../dist/store/sqlite-checkpointer.js";

const quick = process.env.AA_BENCH_QUICK === "1";
const RECORDS = quick ? 100_000 : 300_000;
const CONCURRENCY = 64;
const ROUNDS = quick ? 2 : 3;
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(", ");
const policy = compilePolicy(
  parsePolicy("version: 1\ndefault: deny\npolicies:\n  - { name: p, action: pr.open, effect: allow }\n"),
);
const request = (i) => ({
  agent: { id: "bench" },
  actionType: "pr.open",
  toolName: "open_pr",
  args: { title: `Fix typo ${i}`, branch: "fix/typo" },
  metadata: { pr_size: 12 },
});
const dir = mkdtempSync(join(tmpdir(), "aa-wal-bench-"));
const header = Buffer.alloc(16);
function walSequence(file) {
  try {
    const fd = openSync(`${file}-wal`, "r");
    readSync(fd, header, 0, 16, 0);
    closeSync(fd);
    return header.readUInt32BE(12);
  } catch {
    return -1;
  }
}
const walBytes = (file) => {
  try {
    return statSync(`${file}-wal`).size;
  } catch {
    return 0;
  }
};

async function run(worker, n) {
  checkpointTuning.enabled = worker;
  const file = join(dir, `${worker ? "new" : "old"}-${n}.db`);
  const engine = await openEngine({ policy, store: file });
  for (let i = 0; i < 2000; i += CONCURRENCY) {
    await Promise.all(Array.from({ length: CONCURRENCY }, (_, j) => engine.decide(request(i + j))));
  }
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const batches = [];
  const stallAt = [];
  const restartAt = new Set();
  let sequence = walSequence(file);
  let maxWal = 0;
  const start = performance.now();
  for (let i = 0; i < RECORDS; i += CONCURRENCY) {
    const t = performance.now();
    await Promise.all(Array.from({ length: CONCURRENCY }, (_, j) => engine.decide(request(i + j))));
    const ms = performance.now() - t;
    batches.push(ms);
    await new Promise(setImmediate);
    const now = walSequence(file);
    if (now !== sequence) restartAt.add(batches.length - 1);
    sequence = now;
    if (ms > 20) stallAt.push(batches.length - 1);
    maxWal = Math.max(maxWal, walBytes(file));
  }
  const seconds = (performance.now() - start) / 1000;
  delay.disable();
  await engine.close();
  batches.sort((a, b) => a - b);
  return {
    perSec: RECORDS / seconds,
    loopMax: delay.max / 1e6,
    loopP99: delay.percentile(99) / 1e6,
    batchMax: batches.at(-1),
    batchP99: batches[Math.floor(batches.length * 0.99)],
    stalls: stallAt.length,
    // A checkpoint inside a commit is that batch's stall; the WAL restarts in the same or next batch.
    stallsBeforeRestart: stallAt.filter((b) => restartAt.has(b) || restartAt.has(b + 1)).length,
    restarts: restartAt.size,
    maxWalMB: maxWal / 2 ** 20,
    load: load(),
  };
}

console.log(
  `load average at start: ${load()}; ${RECORDS} decisions, ${CONCURRENCY} concurrent, ${ROUNDS} rounds`,
);
const results = { old: [], new: [] };
for (let round = 0; round < ROUNDS; round++) {
  // Alternate which goes first, so drift in the machine's load does not favour one side.
  const order = round % 2 === 0 ? [false, true] : [true, false];
  for (const worker of order) {
    const r = await run(worker, round);
    results[worker ? "new" : "old"].push(r);
    console.log(
      `${worker ? "worker    " : "autockpt  "} ${Math.round(r.perSec)}/s  loop max ${r.loopMax.toFixed(1)} ms p99 ${r.loopP99.toFixed(2)} ms  batch max ${r.batchMax.toFixed(1)} ms p99 ${r.batchP99.toFixed(2)} ms  >20ms: ${r.stalls} (${r.stallsBeforeRestart} at WAL restarts, ${r.restarts} restarts)  WAL max ${r.maxWalMB.toFixed(1)} MB  load ${r.load}`,
    );
  }
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const rows = ["perSec", "loopMax", "loopP99", "batchMax", "batchP99", "stalls", "maxWalMB"].map((k) => {
  const o = median(results.old.map((r) => r[k]));
  const n = median(results.new.map((r) => r[k]));
  return {
    measure: k,
    "autocheckpoint (old)": +o.toFixed(2),
    "worker (new)": +n.toFixed(2),
    "new/old": +(n / o).toFixed(2),
  };
});
console.table(rows);
console.log(`load average at end: ${load()}`);
rmSync(dir, { recursive: true, force: true });

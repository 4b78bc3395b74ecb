/**
 * `aa bench` embedded mode: what governance costs in an agent's own process, with the operator's
 * policy, on this machine. Everything is written to a temporary directory that is removed at the
 * end: the operator's real store (`.aa/assembly.db`) is never opened.
 *
 * Every figure has a baseline measured in the same run, interleaved round by round (a shared
 * machine's load drifts; neighbouring measurements drift less than two ends of a run), and the
 * report takes the median over rounds.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ActionResult, DecisionRequest } from "@aa/engine";
import type { CompiledPolicy } from "@aa/policy";
import { median, nowNs, round, type Summary, summarize } from "./stats.js";

/** How much work one embedded run does. */
export interface EmbeddedBenchSize {
  rounds: number;
  /** Timed calls per round for the decision path and its bare-call baseline. */
  latencyIterations: number;
  /** Timed calls per round for the committed decision and the bare 1-row insert. */
  durableIterations: number;
  /** Decisions per round for group commit (and rows per round for its bare baseline). */
  groupTotal: number;
}

export const EMBEDDED_SIZES: Record<"quick" | "full", EmbeddedBenchSize> = {
  quick: { rounds: 3, latencyIterations: 1_000, durableIterations: 300, groupTotal: 3_000 },
  full: { rounds: 5, latencyIterations: 10_000, durableIterations: 3_000, groupTotal: 50_000 },
};

export interface EmbeddedBenchOptions {
  policy: CompiledPolicy;
  /** The call every governed decision makes (`agent` is set by the bench). */
  call: Omit<DecisionRequest, "agent">;
  /** Concurrent callers for group commit (and rows per transaction of its bare baseline). */
  concurrency: number;
  size: EmbeddedBenchSize;
  /** Where the temporary directory goes (default the OS temp dir). */
  tempRoot?: string;
  /** Called with a short description as each stage starts (for progress on stderr). */
  onStage?: (stage: string) => void;
}

/** Latency percentiles in microseconds (medians over rounds of each round's percentile). */
export interface LatencyFigures {
  p50Us: number;
  p99Us: number;
  /** Timed calls per round (after warm-up). */
  samplesPerRound: number;
}

/** The `--json` report of an embedded run. Times in µs; every ratio is computed from the figures next to it. */
export interface EmbeddedBenchReport {
  mode: "embedded";
  rounds: number;
  agentId: string;
  call: {
    actionType: string;
    /** The decision the policy gives this call (the path that was measured). */
    status: ActionResult["status"];
    denialReason?: string;
    policyName?: string;
    /** Decisions per status over the whole run: more than one key means the path changed mid-run (budgets, rate limits). */
    statuses: Record<string, number>;
  };
  /** Decision path alone (memory store: no I/O) against calling a bare async function. */
  decision: {
    bareCall: LatencyFigures;
    governed: LatencyFigures;
    /** governed.p50Us - bareCall.p50Us */
    addedP50Us: number;
    /** governed.p99Us - bareCall.p99Us */
    addedP99Us: number;
  };
  /** A lone caller whose audit record is committed (temporary SQLite file, WAL) before it is answered. */
  durable: {
    /** A bare SQLite insert of one row of the same size per transaction, into the same table. */
    bareInsert: LatencyFigures;
    governed: LatencyFigures;
    recordBytes: number;
    /** governed.p50Us / bareInsert.p50Us */
    ratioP50: number;
  };
  /** `concurrency` callers in a closed loop; records committed together (group commit). */
  groupCommit: {
    concurrency: number;
    decisionsPerSecond: number;
    /** Bare inserts of the same row, `concurrency` rows per transaction: the disk's ceiling. */
    bareBatchedInsertRowsPerSecond: number;
    /** decisionsPerSecond / bareBatchedInsertRowsPerSecond */
    ratio: number;
  };
  /** `verify()` over the whole temporary chain (every record the run committed). */
  verify: { rows: number; rowsPerSecond: number; chainValid: boolean };
}

const AGENT_ID = "aa-bench";

/**
 * One turn of the event loop between measurements. The timed loops run on microtasks alone, and a
 * signal (Ctrl-C) is only handled when the loop turns: without this, an interrupt waits for the end.
 */
const breathe = () => new Promise<void>((resolve) => setImmediate(resolve));

type Engine = Awaited<ReturnType<typeof import("@aa/engine")["openEngine"]>>;

/** Timed calls of `fn` after `warmup` untimed ones; percentiles in ns. */
async function timeAsync(fn: () => Promise<unknown>, iterations: number, warmup: number): Promise<Summary> {
  for (let i = 0; i < warmup; i++) await fn();
  const samples = new Float64Array(iterations);
  for (let i = 0; i < iterations; i++) {
    const t0 = nowNs();
    await fn();
    samples[i] = nowNs() - t0;
  }
  return summarize(samples);
}

function timeSync(fn: () => void, iterations: number, warmup: number): Summary {
  for (let i = 0; i < warmup; i++) fn();
  const samples = new Float64Array(iterations);
  for (let i = 0; i < iterations; i++) {
    const t0 = nowNs();
    fn();
    samples[i] = nowNs() - t0;
  }
  return summarize(samples);
}

/** Median over rounds of each round's p50 and p99, in µs. */
function latency(runs: Summary[]): LatencyFigures {
  return {
    p50Us: round(median(runs.map((r) => r.p50)) / 1000),
    p99Us: round(median(runs.map((r) => r.p99)) / 1000),
    samplesPerRound: runs[0]!.n,
  };
}

// The store's own settings (WAL, synchronous=NORMAL), so the bare insert is durable the same way.
const BARE_PRAGMAS =
  "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 10000; PRAGMA journal_size_limit = 67108864;";

/** Run the embedded benchmark; the temporary directory is removed whatever happens. */
export async function runEmbeddedBench(options: EmbeddedBenchOptions): Promise<EmbeddedBenchReport> {
  const dir = mkdtempSync(join(options.tempRoot ?? tmpdir(), "aa-bench-"));
  const opened: Array<{ close(): unknown }> = [];
  // Interrupted (Ctrl-C, a CI timeout): the directory still goes; 128 + signal number, as a shell reports it.
  const interrupted = (signal: NodeJS.Signals) => {
    rmSync(dir, { recursive: true, force: true });
    process.exit(signal === "SIGINT" ? 130 : 143);
  };
  process.once("SIGINT", interrupted);
  process.once("SIGTERM", interrupted);
  try {
    return await run(options, dir, opened);
  } finally {
    process.off("SIGINT", interrupted);
    process.off("SIGTERM", interrupted);
    for (const resource of opened.reverse()) {
      try {
        await resource.close();
      } catch {
        // Closing is best effort: the directory goes next anyway.
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

async function run(
  options: EmbeddedBenchOptions,
  dir: string,
  opened: Array<{ close(): unknown }>,
): Promise<EmbeddedBenchReport> {
  const { size, concurrency, policy } = options;
  const stage = options.onStage ?? (() => {});
  const { openEngine, SQLITE_MIGRATIONS } = await import("@aa/engine");
  const request: DecisionRequest = { ...options.call, agent: { id: AGENT_ID } };
  const statuses: Record<string, number> = {};
  // The circuit breaker is off: with a policy that denies the bench call it would open after 10
  // denials and every later call would skip the policy, measuring the breaker instead of the policy.
  const engineOptions = { policy, circuitBreaker: { threshold: 0 } };
  const open = async (store: string): Promise<Engine> => {
    const engine = await openEngine({ ...engineOptions, store });
    opened.push(engine);
    return engine;
  };
  const governed = (engine: Engine) => async () => {
    const result = await engine.decide(request);
    statuses[result.status] = (statuses[result.status] ?? 0) + 1;
  };

  stage("opening a temporary store");
  const memory = await open(":memory:");
  const durable = await open(join(dir, "bench.db"));
  const first = await durable.decide(request);
  statuses[first.status] = 1;
  const sample = (await durable.audit({ limit: 1 })).items[0];
  if (sample === undefined) throw new Error("the bench decision left no audit record");
  const { hash: sampleHash, ...sampleRecord } = sample;
  const recordText = JSON.stringify(sampleRecord);

  // Imported after the engine opened a SQLite store: the engine loads node:sqlite without Node's
  // ExperimentalWarning for it, and a loaded module does not warn again.
  const { DatabaseSync } = await import("node:sqlite");
  // The bare baseline: the same table (every migration, so the same indexes) in its own file.
  const bare = new DatabaseSync(join(dir, "bare.db"));
  opened.push(bare);
  bare.exec(BARE_PRAGMAS);
  for (const migration of SQLITE_MIGRATIONS) bare.exec(migration);
  const insert = bare.prepare(
    "INSERT INTO audit_events (org, seq, id, hash, agent, action_type, record) VALUES (?, ?, ?, ?, ?, ?, ?)",
  );
  let bareSeq = 0;
  const insertRow = () =>
    insert.run("bench", ++bareSeq, randomUUID(), sampleHash, AGENT_ID, request.actionType, recordText);
  const bareInsertOne = () => {
    bare.exec("BEGIN");
    insertRow();
    bare.exec("COMMIT");
  };
  /** `total` rows, `concurrency` per transaction; rows per second. */
  const bareBatched = (total: number) => {
    const t0 = nowNs();
    for (let done = 0; done < total; done += concurrency) {
      bare.exec("BEGIN");
      for (let i = 0; i < concurrency && done + i < total; i++) insertRow();
      bare.exec("COMMIT");
    }
    return total / ((nowNs() - t0) / 1e9);
  };
  /** `concurrency` callers, each calling again as soon as its decision resolved; decisions per second. */
  const groupDecide = async (total: number) => {
    let issued = 0;
    const decide = governed(durable);
    const caller = async () => {
      while (issued < total) {
        issued++;
        await decide();
      }
    };
    const t0 = nowNs();
    await Promise.all(Array.from({ length: concurrency }, caller));
    return total / ((nowNs() - t0) / 1e9);
  };
  const bareCall = async (args: unknown) => ({ ok: true, args });

  const runs = {
    bareCall: [] as Summary[],
    decision: [] as Summary[],
    bareInsert: [] as Summary[],
    durable: [] as Summary[],
    bareBatched: [] as number[],
    group: [] as number[],
  };
  const warmLatency = Math.ceil(size.latencyIterations / 5);
  const warmDurable = Math.ceil(size.durableIterations / 5);
  // One untimed pass of the group runs first: JIT, the store's batch path, table depth.
  bareBatched(Math.ceil(size.groupTotal / 5));
  await groupDecide(Math.ceil(size.groupTotal / 5));
  for (let r = 0; r < size.rounds; r++) {
    stage(`round ${r + 1}/${size.rounds}`);
    runs.bareCall.push(await timeAsync(() => bareCall(request.args), size.latencyIterations, warmLatency));
    await breathe();
    runs.decision.push(await timeAsync(governed(memory), size.latencyIterations, warmLatency));
    await breathe();
    runs.bareInsert.push(timeSync(bareInsertOne, size.durableIterations, warmDurable));
    await breathe();
    runs.durable.push(await timeAsync(governed(durable), size.durableIterations, warmDurable));
    await breathe();
    runs.bareBatched.push(bareBatched(size.groupTotal));
    await breathe();
    runs.group.push(await groupDecide(size.groupTotal));
    await breathe();
  }

  stage("verifying the temporary chain");
  const verifyRuns: Array<{ rows: number; rate: number; chainValid: boolean }> = [];
  for (let r = 0; r < size.rounds; r++) {
    const t0 = nowNs();
    const result = await durable.verify();
    verifyRuns.push({
      rows: result.checked,
      rate: result.checked / ((nowNs() - t0) / 1e9),
      chainValid: result.chainValid,
    });
  }

  const decisionBare = latency(runs.bareCall);
  const decisionGoverned = latency(runs.decision);
  const bareInsert = latency(runs.bareInsert);
  const durableGoverned = latency(runs.durable);
  const decisionsPerSecond = Math.round(median(runs.group));
  const bareRowsPerSecond = Math.round(median(runs.bareBatched));
  const verifyRate = Math.round(median(verifyRuns.map((v) => v.rate)));
  return {
    mode: "embedded",
    rounds: size.rounds,
    agentId: AGENT_ID,
    call: {
      actionType: request.actionType,
      status: first.status,
      ...(first.denialReason !== undefined ? { denialReason: first.denialReason } : {}),
      ...(first.policyName !== undefined ? { policyName: first.policyName } : {}),
      statuses,
    },
    decision: {
      bareCall: decisionBare,
      governed: decisionGoverned,
      addedP50Us: round(decisionGoverned.p50Us - decisionBare.p50Us),
      addedP99Us: round(decisionGoverned.p99Us - decisionBare.p99Us),
    },
    durable: {
      bareInsert,
      governed: durableGoverned,
      recordBytes: Buffer.byteLength(recordText),
      ratioP50: round(durableGoverned.p50Us / bareInsert.p50Us),
    },
    groupCommit: {
      concurrency,
      decisionsPerSecond,
      bareBatchedInsertRowsPerSecond: bareRowsPerSecond,
      ratio: round(decisionsPerSecond / bareRowsPerSecond),
    },
    verify: {
      rows: verifyRuns[0]!.rows,
      rowsPerSecond: verifyRate,
      chainValid: verifyRuns.every((v) => v.chainValid),
    },
  };
}

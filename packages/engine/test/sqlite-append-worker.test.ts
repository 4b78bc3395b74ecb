/**
 * Group commit on the SQLite append worker (large batches are sealed and committed on a worker
 * thread with its own connection). Uses the built package: worker threads load compiled JavaScript.
 */
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
// Compiled output on purpose: the append worker runs compiled JavaScript.
import { openEngine } from "../dist/index.js";
import { AppendWorker, appendWorkerTuning } from "../dist/store/sqlite-append.js";
import { agent, policy, tempDir } from "./helpers.js";

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const dir = tempDir();
const defaultMinBatch = appendWorkerTuning.minBatch;
const realAppend = AppendWorker.prototype.append;
/** Rounds of calls until the worker (which starts in the background) has committed some: bounded. */
const MAX_ROUNDS = 300;
const pause = () => new Promise((resolve) => setTimeout(resolve, 100));
/** Worker start-up takes seconds when the machine is busy. */
const SLOW = 120_000;

afterEach(() => {
  appendWorkerTuning.minBatch = defaultMinBatch;
  AppendWorker.prototype.append = realAppend;
});

/** Counts the records the engine hands to the append worker. */
function countWorkerRecords(): { records: number } {
  const counter = { records: 0 };
  AppendWorker.prototype.append = function (this: AppendWorker, org, items) {
    counter.records += items.length;
    return realAppend.call(this, org, items);
  };
  return counter;
}

describe("SQLite append worker", () => {
  it("commits concurrent batches in call order, with approvals and idempotency keys among them", {
    timeout: SLOW,
  }, async () => {
    appendWorkerTuning.minBatch = 8;
    const counter = countWorkerRecords();
    const engine = await openEngine({ policy, store: join(dir, "worker.db"), appendWorker: true });
    const all: { status: string; auditEventId: string; approvalId?: string }[] = [];
    const args: unknown[] = [];
    for (let round = 0; round < MAX_ROUNDS && (round < 3 || counter.records === 0); round++) {
      const calls = [];
      for (let i = 0; i < 200; i++) {
        args.push({ round, i });
        calls.push(
          i % 50 === 7
            ? engine.decide({ agent, actionType: "pr.merge", args: { round, i } })
            : i % 50 === 9
              ? engine.decide({
                  agent,
                  actionType: "read.file",
                  args: { round, i },
                  eventId: `k-${round}-${i}`,
                })
              : engine.decide({ agent, actionType: "read.file", args: { round, i } }),
        );
      }
      all.push(...(await Promise.all(calls)));
      await pause(); // the worker starts in the background (seconds on a loaded machine)
    }
    expect(counter.records).toBeGreaterThan(0);
    const seen: { id: string; seq: number; args: unknown }[] = [];
    let cursor: string | undefined;
    do {
      const page = await engine.audit({ limit: 1000, ...(cursor ? { cursor } : {}) });
      seen.push(...page.items.map((e) => ({ id: e.id, seq: e.seq, args: e.args })));
      cursor = page.nextCursor;
    } while (cursor);
    // Every record once, seq without gaps; calls without an idempotency key in call order (a keyed
    // call first looks its key up, so it joins a later batch).
    expect(seen.map((e) => e.seq)).toEqual(all.map((_r, i) => i + 1));
    expect(new Set(seen.map((e) => e.id))).toEqual(new Set(all.map((r) => r.auditEventId)));
    const unkeyed = (_: unknown, i: number) => i % 50 !== 9;
    const byId = new Map(seen.map((e) => [e.id, e]));
    expect(all.filter(unkeyed).map((r) => byId.get(r.auditEventId)!.seq)).toEqual(
      seen.filter((e) => (e.args as { i: number }).i % 50 !== 9).map((e) => e.seq),
    );
    expect(all.map((r) => byId.get(r.auditEventId)!.args)).toEqual(args);
    const held = all.filter((r) => r.status === "requested");
    expect(held.length).toBe(all.length / 50);
    for (const r of held) expect((await engine.getApproval(r.approvalId!))?.state).toBe("pending");
    // An idempotent retry returns the stored decision and writes nothing.
    const again = await engine.decide({
      agent,
      actionType: "read.file",
      args: { round: 0, i: 9 },
      eventId: "k-0-9",
    });
    expect(again.auditEventId).toBe(all[9]!.auditEventId);
    expect(await engine.verify()).toEqual({
      chainValid: true,
      checked: all.length,
      firstBrokenAtRowId: null,
    });
    await engine.close();
  });

  it("shares one chain with another engine on the same file committing at the same time", {
    timeout: SLOW,
  }, async () => {
    appendWorkerTuning.minBatch = 8;
    const counter = countWorkerRecords();
    const file = join(dir, "shared.db");
    const [a, b] = await Promise.all([
      openEngine({ policy, store: file, appendWorker: true }),
      openEngine({ policy, store: file, appendWorker: true }),
    ]);
    let total = 0;
    for (let round = 0; round < MAX_ROUNDS && (round < 3 || counter.records === 0); round++) {
      await Promise.all(
        [a, b].flatMap((engine) =>
          Array.from({ length: 100 }, (_, i) =>
            engine.decide({ agent, actionType: "read.file", args: { i } }),
          ),
        ),
      );
      total += 200;
      await pause();
    }
    expect(counter.records).toBeGreaterThan(0);
    expect(await a.verify()).toEqual({ chainValid: true, checked: total, firstBrokenAtRowId: null });
    await Promise.all([a.close(), b.close()]);
  });

  it("a batch committed by the worker is in the file before decide() resolves (survives SIGKILL)", {
    timeout: SLOW,
  }, async () => {
    const file = join(dir, "durable-batch.db");
    const child = spawn(process.execPath, [fixture("decide-batch-and-wait.mjs"), file, "wait"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.setEncoding("utf8");
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (chunk: string) => {
        out += chunk;
        if (out.includes("\n")) {
          child.kill("SIGKILL");
          resolve();
        }
      });
      child.once("exit", (code) => reject(new Error(`child exited early (${code})`)));
    });
    await once(child, "exit");
    const { usedWorker, ids } = JSON.parse(out) as { usedWorker: boolean; ids: string[] };
    expect(usedWorker).toBe(true);
    expect(ids).toHaveLength(300);
    const db = new DatabaseSync(file);
    const found = db
      .prepare("SELECT COUNT(*) AS n FROM audit_events WHERE id IN (SELECT value FROM json_each(?))")
      .get(JSON.stringify(ids)) as { n: number };
    db.close();
    expect(found.n).toBe(300);
  });

  it("is off unless asked for", async () => {
    appendWorkerTuning.minBatch = 8;
    const counter = countWorkerRecords();
    const engine = await openEngine({ policy, store: join(dir, "default.db") });
    for (let round = 0; round < 3; round++) {
      await Promise.all(
        Array.from({ length: 100 }, (_, i) => engine.decide({ agent, actionType: "read.file", args: { i } })),
      );
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(counter.records).toBe(0);
    expect(await engine.verify()).toMatchObject({ chainValid: true, checked: 300 });
    await engine.close();
  });

  it("rejects a non-boolean appendWorker option", async () => {
    await expect(
      openEngine({ policy, store: join(dir, "bad.db"), appendWorker: "yes" as unknown as boolean }),
    ).rejects.toMatchObject({ code: "INVALID_OPTIONS" });
  });

  it("does not keep a process alive that never closes its engine", { timeout: SLOW }, () => {
    const file = join(dir, "no-close.db");
    const run = spawnSync(process.execPath, [fixture("decide-batch-and-wait.mjs"), file, "exit"], {
      encoding: "utf8",
      timeout: SLOW - 10_000,
    });
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ usedWorker: true });
    expect(run.stderr).not.toMatch(/SQLite is an experimental feature/);
  });
});

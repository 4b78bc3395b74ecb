/**
 * Several engines in separate processes on one store (gateway replicas on PostgreSQL, or several
 * processes on one SQLite file): one dense chain per org, and on PostgreSQL a decision or a record
 * made by one replica reaches another replica's waiters and subscribers by push (LISTEN/NOTIFY),
 * not by its poll: these tests set the polls far beyond their own time limits.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { compilePolicy, parsePolicy } from "@aa/policy";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
// From dist, as the replica processes do: a long chain is verified on worker threads, whose
// scripts exist only as built .js files.
import { openEngine } from "../dist/index.js";
import { openStore } from "../dist/store/open.js";
import type { DecisionEngine, EngineEvent } from "../src/index.js";
import type { StoredEvent } from "../src/store/types.js";
import { policy, tempDir } from "./helpers.js";
import { PG_URL, pgSchemaUrl } from "./pg.js";

const replicaScript = fileURLToPath(new URL("./fixtures/replica.mjs", import.meta.url));
const dir = tempDir("aa-engine-replicas-");
const pgUrl = pgSchemaUrl();
/** A schema only the reconnect test's two engines listen on. */
const reconnectUrl = pgSchemaUrl();
const freshOrg = () => `org-${Math.random().toString(36).slice(2)}`;
/**
 * Far beyond every test's time limit: a wait can only end in time by a pushed notification
 * (without one, the test fails on its own timeout).
 */
const NO_POLL_MS = 600_000;

interface ReplicaLine {
  org?: string;
  denialReason?: string | null;
  auditEventId?: string;
  status?: string;
  id?: string;
  state?: string;
}

/** Runs one replica process to completion; resolves with the JSON lines it printed. */
function runReplica(options: Record<string, unknown>): Promise<ReplicaLine[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [replicaScript, JSON.stringify(options)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      out += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      err += chunk;
    });
    child.once("error", reject);
    child.once("exit", (code) => {
      const lines = out.split("\n").filter((line) => line !== "");
      if (code !== 0 || lines.at(-1) !== "done") {
        reject(new Error(`replica exited with ${code}: ${err.slice(-2000)}`));
        return;
      }
      resolve(lines.slice(0, -1).map((line) => JSON.parse(line) as ReplicaLine));
    });
  });
}

async function readChain(store: string, org: string): Promise<StoredEvent[]> {
  const opened = await openStore(store);
  try {
    const all: StoredEvent[] = [];
    for (;;) {
      const page = await opened.readEvents(org, all.at(-1)?.seq ?? 0, 1000);
      if (page.length === 0) return all;
      all.push(...page);
    }
  } finally {
    await opened.close();
  }
}

/** Waits (up to 20 s) until `ready()` holds; fails with what was seen otherwise. */
async function until(ready: () => boolean | Promise<boolean>, seen: () => unknown): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await ready())) {
    if (Date.now() > deadline) throw new Error(`condition not met; saw ${JSON.stringify(seen())}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe.each([
  ["PostgreSQL", () => pgUrl()],
  ["SQLite", () => join(dir, `replicas-${Math.random().toString(36).slice(2)}.db`)],
])("two replica processes appending concurrently on %s", (_kind, storeOf) => {
  it("keep one dense chain per org: every committed decision exactly once, no fork, verify passes", async () => {
    const store = storeOf();
    const orgs = [freshOrg(), freshOrg()];
    const replica = (name: string) =>
      runReplica({ mode: "append", store, orgs, durationMs: 3000, concurrency: 8, name });
    const [a, b] = await Promise.all([replica("a"), replica("b")]);
    const committed = [...a, ...b];
    // Both replicas really wrote to both orgs at the same time.
    for (const lines of [a, b]) {
      for (const org of orgs) expect(lines.filter((line) => line.org === org).length).toBeGreaterThan(10);
    }
    for (const org of orgs) {
      const told = committed.filter((line) => line.org === org).map((line) => line.auditEventId!);
      const chain = await readChain(store, org);
      expect(chain.map((row) => row.seq)).toEqual(chain.map((_, i) => i + 1));
      expect(new Set(chain.map((row) => row.id)).size).toBe(chain.length);
      expect(chain.map((row) => row.id).sort()).toEqual([...told].sort());
      // Opened to read only: its policy (not the replicas') is not recorded as a change.
      const engine = await openEngine({ policy, store, orgId: org, policyChangeAtOpen: "none" });
      try {
        expect(await engine.verify()).toMatchObject({ chainValid: true, checked: told.length });
      } finally {
        await engine.close();
      }
    }
    expect(new Set(committed.map((line) => line.status))).toEqual(
      new Set(["executed", "denied", "requested"]),
    );
  }, 60_000);
});

describe("two replica processes on PostgreSQL share rate limits", () => {
  it("parallel fan-outs in both processes never pass an agent's limit together", async () => {
    const store = pgUrl();
    const org = freshOrg();
    const fanout = () =>
      runReplica({
        mode: "fanout",
        store,
        orgs: [org],
        count: 30,
        rateLimits: { agent: { limit: 20, windowMs: 3_600_000 } },
      });
    const lines = (await Promise.all([fanout(), fanout()])).flat();
    expect(lines).toHaveLength(60);
    expect(lines.filter((line) => line.status === "executed")).toHaveLength(20);
    expect(lines.filter((line) => line.denialReason === "RATE_LIMITED")).toHaveLength(40);
  }, 60_000);
});

describe("processes on one SQLite file", () => {
  it("a subscriber here receives another process's records by polling, in chain order", async () => {
    const file = join(dir, `events-${Math.random().toString(36).slice(2)}.db`);
    const here = await openEngine({ policy, store: file });
    try {
      const seen: EngineEvent[] = [];
      await here.subscribe((event) => {
        seen.push(event);
      });
      const written = await runReplica({ mode: "decide", store: file, orgs: ["default"], count: 30 });
      await until(
        () => seen.length >= written.length,
        () => seen.map((e) => e.seq),
      );
      expect(seen.map((e) => e.id)).toEqual(written.map((line) => line.auditEventId));
      expect(seen.map((e) => e.seq)).toEqual(written.map((_, i) => i + 1));
    } finally {
      await here.close();
    }
  }, 30_000);
});

describe("PostgreSQL replicas push changes to each other (LISTEN/NOTIFY)", () => {
  const opened: DecisionEngine[] = [];
  afterAll(async () => {
    for (const engine of opened) await engine.close();
  });
  async function replicaHere(orgId: string, url = pgUrl()): Promise<DecisionEngine> {
    const engine = await openEngine({ policy, store: url, orgId, eventsPollMs: NO_POLL_MS });
    opened.push(engine);
    return engine;
  }

  it("an approval decided on another replica releases a wait here without polling", async () => {
    const orgId = freshOrg();
    const here = await replicaHere(orgId);
    const held = await here.decide({ agent: { id: "bot" }, actionType: "pr.merge" });
    const waiting = here.awaitApproval(held.approvalId!, {
      timeoutMs: NO_POLL_MS,
      pollIntervalMs: NO_POLL_MS,
    });
    const [approved] = await runReplica({
      mode: "approve",
      store: pgUrl(),
      orgs: [orgId],
      approvalId: held.approvalId,
    });
    expect(approved).toMatchObject({ id: held.approvalId, state: "approved" });
    expect(await waiting).toMatchObject({ state: "approved", decidedBy: "operator" });
    expect((await here.releaseApproval(held.approvalId!, "bot")).status).toBe("executed");
  }, 30_000);

  it("a subscriber here receives another replica's records in chain order, and resumes exactly", async () => {
    const orgId = freshOrg();
    const here = await replicaHere(orgId);
    const seen: EngineEvent[] = [];
    await here.subscribe((event) => {
      seen.push(event);
    });
    const written = await runReplica({ mode: "decide", store: pgUrl(), orgs: [orgId], count: 30 });
    await until(
      () => seen.length >= written.length,
      () => seen.map((e) => e.seq),
    );
    expect(seen.map((e) => e.id)).toEqual(written.map((line) => line.auditEventId));
    expect(seen.map((e) => e.seq)).toEqual(written.map((_, i) => i + 1));
    expect(new Set(seen.map((e) => e.type))).toEqual(new Set(["action.executed"]));
    // Resuming after seq 12 delivers exactly 13..30 from the store.
    const resumed: EngineEvent[] = [];
    await here.subscribe(
      (event) => {
        resumed.push(event);
      },
      { after: 12 },
    );
    await until(
      () => resumed.length >= 18,
      () => resumed.map((e) => e.seq),
    );
    expect(resumed.map((e) => e.seq)).toEqual(written.slice(12).map((_, i) => i + 13));
  }, 30_000);

  it("a dropped LISTEN connection reconnects; what was missed meanwhile is re-read", async () => {
    const orgId = freshOrg();
    const url = reconnectUrl();
    const here = await replicaHere(orgId, url);
    const other = await openEngine({ policy, store: url, orgId });
    opened.push(other);
    const schema = new URL(url).searchParams.get("schema")!;
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    try {
      const listeners = async () =>
        (
          await admin.query<{ pid: number }>(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%'",
            [`aa-listener aa_changes_${schema}`],
          )
        ).rows.map((row) => row.pid);
      // Once open, both engines listen on this schema's channel, through one shared connection.
      const before = await listeners();
      expect(before).toHaveLength(1);
      const held = await here.decide({ agent: { id: "bot" }, actionType: "pr.merge" });
      const waiting = here.awaitApproval(held.approvalId!, {
        timeoutMs: NO_POLL_MS,
        pollIntervalMs: NO_POLL_MS,
      });
      await admin.query("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", [before]);
      // Decided while the listeners may be down: the reconnect's resync (or the notification,
      // if already back) releases the wait.
      await other.approve(held.approvalId!, "operator", "while reconnecting");
      expect(await waiting).toMatchObject({ state: "approved", reason: "while reconnecting" });
      await until(
        async () => {
          const now = await listeners();
          return now.length === 1 && !before.includes(now[0]!);
        },
        () => "a new listener",
      );
      // After the reconnect, notifications flow again.
      const second = await here.decide({ agent: { id: "bot" }, actionType: "pr.merge" });
      const waitingAgain = here.awaitApproval(second.approvalId!, {
        timeoutMs: NO_POLL_MS,
        pollIntervalMs: NO_POLL_MS,
      });
      await other.deny(second.approvalId!, "operator", "after reconnecting");
      expect(await waitingAgain).toMatchObject({ state: "denied", reason: "after reconnecting" });
    } finally {
      await admin.end();
    }
  }, 60_000);

  it("a containment on another replica is enforced here at once", async () => {
    const orgId = freshOrg();
    const url = pgUrl();
    const here = await openEngine({ policy, store: url, orgId, controlsRefreshMs: NO_POLL_MS });
    opened.push(here);
    const other = await openEngine({ policy, store: url, orgId });
    opened.push(other);
    expect((await here.decide({ agent: { id: "rogue" }, actionType: "read.file" })).status).toBe("executed");
    await other.contain("rogue", "ops", "runaway");
    await until(
      () => here.agentState("rogue").contained,
      () => here.agentState("rogue"),
    );
    expect(await here.decide({ agent: { id: "rogue" }, actionType: "read.file" })).toMatchObject({
      status: "denied",
      denialReason: "CIRCUIT_OPEN",
    });
  }, 30_000);

  it("a policy recorded by another replica is adopted without a second record, never one the chain does not show", async () => {
    const orgId = freshOrg();
    const url = pgUrl();
    const here = await replicaHere(orgId, url);
    const other = await openEngine({ policy, store: url, orgId });
    opened.push(other);
    const withDeploys = (extra: string) =>
      compilePolicy(
        parsePolicy(
          `version: 1\ndefault: deny\npolicies:\n  - { name: deploys, action: deploy.run, effect: allow${extra} }\n`,
        ),
      );
    const recorded = withDeploys("");
    const unrecorded = withDeploys(", description: never recorded");
    await other.setPolicy(recorded, "admin");
    expect(await here.adoptRecordedPolicy(unrecorded)).toBe(false);
    expect(here.policyHash).toBe(policy.hash);
    expect(await here.adoptRecordedPolicy(recorded)).toBe(true);
    expect(here.policyHash).toBe(recorded.hash);
    expect(await here.decide({ agent: { id: "bot" }, actionType: "deploy.run" })).toMatchObject({
      status: "executed",
      policyName: "deploys",
    });
    // A newer change supersedes it: the older policy is no longer adoptable.
    await other.setPolicy(policy, "admin");
    expect(await here.adoptRecordedPolicy(recorded)).toBe(false);
    expect(await here.adoptRecordedPolicy(unrecorded)).toBe(false);
    expect(here.policyHash).toBe(recorded.hash);
    expect(await here.adoptRecordedPolicy(policy)).toBe(true);
    expect(here.policyHash).toBe(policy.hash);
    const changes = (await here.audit({ actionType: "policy.change" })).items;
    expect(changes.map((r) => [r.kind, r.policy_hash])).toEqual([
      ["policy.changed", recorded.hash],
      ["policy.changed", policy.hash],
    ]);
  }, 30_000);

  it("when hints never arrive, the polls still release a wait and deliver events", async () => {
    const orgId = freshOrg();
    const url = pgUrl();
    const schema = new URL(url).searchParams.get("schema")!;
    const here = await openEngine({ policy, store: url, orgId, eventsPollMs: 50 });
    opened.push(here);
    // Same tables, reached through search_path instead of ?schema=: this engine's hints go to
    // another channel, so the engine here never hears of its commits and must poll.
    const silent = await openEngine({
      policy,
      store: `${PG_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`,
      orgId,
    });
    opened.push(silent);
    const seen: EngineEvent[] = [];
    await here.subscribe((event) => {
      seen.push(event);
    });
    const held = await here.decide({ agent: { id: "bot" }, actionType: "pr.merge" });
    const waiting = here.awaitApproval(held.approvalId!, { timeoutMs: NO_POLL_MS, pollIntervalMs: 50 });
    await silent.approve(held.approvalId!, "operator", "unheard");
    expect(await waiting).toMatchObject({ state: "approved", reason: "unheard" });
    const done = await silent.decide({ agent: { id: "bot" }, actionType: "read.file" });
    await until(
      () => seen.some((e) => e.id === done.auditEventId),
      () => seen.map((e) => e.type),
    );
    expect(seen.map((e) => e.type)).toEqual(["approval.requested", "approval.resolved", "action.executed"]);
  }, 30_000);
});

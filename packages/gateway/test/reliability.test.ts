/**
 * Reliability of the gateway as real processes over loopback HTTP: kill -9 while clients make
 * concurrent decisions (SQLite and PostgreSQL), and two replicas on one PostgreSQL database.
 * Bounded: a few seconds of load each, every wait with its own limit.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AuditEvent, openEngine } from "@aa/engine";
import { compilePolicy, parsePolicy } from "@aa/policy";
import { afterAll, describe, expect, it } from "vitest";
import { pgSchemas } from "./pg.js";
import {
  type CallLog,
  decideWithRetries,
  freePort,
  GatewayProcess,
  keysFor,
  readEvents,
  send,
} from "./processes.js";

const dir = mkdtempSync(join(tmpdir(), "aa-gateway-reliability-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const pgUrl = pgSchemas();
const policy = compilePolicy(parsePolicy("version: 1\ndefault: deny\npolicies: []\n"));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits (up to 20 s) until `ready()` holds, running `step` before each look; fails with what was seen otherwise. */
async function until(ready: () => boolean, seen: () => unknown, step?: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    await step?.();
    if (ready()) return;
    if (Date.now() > deadline) throw new Error(`condition not met; saw ${JSON.stringify(seen())}`);
    await sleep(20);
  }
}

/** Every record of an org's chain, read after the gateways are gone. */
async function chainOf(database: string, orgId: string) {
  const store = database.startsWith("sqlite:") ? database.slice("sqlite:".length) : database;
  // Opened to read the chain only: its policy is not recorded as a change.
  const engine = await openEngine({ policy, store, orgId, policyChangeAtOpen: "none" });
  try {
    const records: AuditEvent[] = [];
    let cursor: string | undefined;
    do {
      const page = await engine.audit({ limit: 1000, ...(cursor ? { cursor } : {}) });
      records.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor);
    return { records, verify: await engine.verify() };
  } finally {
    await engine.close();
  }
}

/** Runs `clients` loops of decisions until `stop()` says so; returns every call's log. */
function runClients(
  clients: number,
  url: (client: number) => string,
  key: string,
  stop: () => boolean,
): { logs: CallLog[]; done: Promise<void> } {
  const logs: CallLog[] = [];
  const done = Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      for (let n = 0; !stop(); n++) {
        const log: CallLog = { eventId: randomUUID(), args: { client, n }, failedAttempts: 0 };
        logs.push(log);
        // Allowed and denied decisions alike carry an idempotency key and must be recorded once.
        const actionType = n % 4 === 3 ? "write.file" : "read.file";
        await decideWithRetries(
          () => url(client),
          key,
          { actionType, args: log.args, eventId: log.eventId },
          log,
          Date.now() + 30_000,
        );
      }
    }),
  ).then(() => undefined);
  return { logs, done };
}

describe.each([
  ["SQLite", () => `sqlite:${join(dir, `kill-${randomUUID()}.db`)}`],
  ["PostgreSQL", () => pgUrl()],
])("kill -9 of a gateway on %s while clients decide", (_kind, databaseOf) => {
  it("loses no committed decision, records each call exactly once, and the chain verifies", async () => {
    const database = databaseOf();
    const orgId = "org-kill";
    const keys = await keysFor(database, orgId, "worker");
    const port = await freePort();
    let gateway = await GatewayProcess.start(database, port);
    let stopping = false;
    const { logs, done } = runClients(
      6,
      () => gateway.url,
      keys.agent,
      () => stopping,
    );
    let kills = 0;
    try {
      for (; kills < 5; kills++) {
        await sleep(1500 + Math.floor(Math.random() * 1000));
        await gateway.kill();
        gateway = await GatewayProcess.start(database, port);
      }
      await sleep(1000);
    } finally {
      stopping = true;
      await done;
    }
    // Every call was answered in the end (the gateway always came back), never with an error.
    const unanswered = logs.filter((log) => log.answer === undefined);
    expect(unanswered).toEqual([]);
    const answers = logs.map((log) => log.answer!);
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    // Some calls really were cut by a kill and retried with their idempotency key.
    expect(logs.some((log) => log.failedAttempts > 0)).toBe(true);

    // A retry with the same eventId, now or long after, returns the first decision.
    const retried = logs.filter((log) => log.failedAttempts > 0).concat(logs.slice(0, 50));
    for (const log of retried) {
      const again = await send(gateway.url, keys.agent, "POST", "/actions", {
        actionType: log.args.n % 4 === 3 ? "write.file" : "read.file",
        args: log.args,
        eventId: log.eventId,
      });
      expect(again?.body.auditEventId).toBe(log.answer!.body.auditEventId);
      expect(again?.body.status).toBe(log.answer!.body.status);
    }
    await gateway.stop();

    const { records, verify } = await chainOf(database, orgId);
    expect(verify).toMatchObject({ chainValid: true, checked: logs.length });
    // One record per call: nothing the clients were told is missing, nothing is there twice.
    expect(records.map((r) => r.seq)).toEqual(records.map((_, i) => i + 1));
    expect(records.map((r) => r.id).sort()).toEqual(answers.map((a) => a.body.auditEventId as string).sort());
    const calls = records.map((r) => JSON.stringify(r.args));
    expect(new Set(calls).size).toBe(records.length);
    expect(new Set(answers.map((a) => a.body.status))).toEqual(new Set(["executed", "denied"]));
  }, 120_000);
});

describe("two gateway replicas on one PostgreSQL database", () => {
  it("append concurrently to one chain that verifies, and an approval on A releases a wait on B", async () => {
    const database = pgUrl();
    const orgId = "org-replicas";
    const keys = await keysFor(database, orgId, "worker");
    // Another agent for the pairs: the workers' denials open their circuit breaker.
    const pairKeys = await keysFor(database, orgId, "pairs");
    const [a, b] = await Promise.all([
      GatewayProcess.start(database, await freePort()),
      GatewayProcess.start(database, await freePort()),
    ]);
    // An operator's event stream on B, from the start of the chain.
    const stream = readEvents(b.url, keys.operator, "/events?after=0");
    try {
      // Half the clients on each replica, for 3 s.
      const loadEnds = Date.now() + 3000;
      const { logs, done } = runClients(
        6,
        (client) => (client % 2 === 0 ? a.url : b.url),
        keys.agent,
        () => Date.now() > loadEnds,
      );
      // Meanwhile: held on B, long-polled on B, approved on A.
      const held = await send(b.url, keys.agent, "POST", "/actions", { actionType: "pr.merge" });
      expect(held).toMatchObject({ status: 200, body: { status: "requested" } });
      const approvalId = held!.body.approvalId as string;
      const waiting = send(
        b.url,
        keys.agent,
        "GET",
        `/approvals/${approvalId}/wait?timeoutMs=30000`,
        undefined,
        35_000,
      );
      await sleep(200);
      const approved = await send(a.url, keys.operator, "POST", `/approvals/${approvalId}/approve`, {
        reason: "ok on A",
      });
      expect(approved).toMatchObject({ status: 200, body: { state: "approved" } });
      expect(await waiting).toMatchObject({
        status: 200,
        body: { id: approvalId, state: "approved", reason: "ok on A" },
      });
      const released = await send(b.url, keys.agent, "POST", `/approvals/${approvalId}/release`);
      expect(released).toMatchObject({ status: 200, body: { status: "executed", approvalId } });
      // One idempotency key sent to both replicas at once: one decision, the same answer twice.
      const pairs = 10;
      for (let n = 0; n < pairs; n++) {
        const request = { actionType: "read.file", args: { pair: n }, eventId: randomUUID() };
        const [onA, onB] = await Promise.all([
          send(a.url, pairKeys.agent, "POST", "/actions", request),
          send(b.url, pairKeys.agent, "POST", "/actions", request),
        ]);
        expect(onA).toMatchObject({ status: 200, body: { status: "executed" } });
        expect(onB?.body.auditEventId).toBe(onA!.body.auditEventId);
      }
      // A policy replaced through A is enforced by B too, recorded once (by A).
      const replaced = await send(a.url, keys.admin, "PUT", "/policies", {
        policy: {
          version: 1,
          default: "deny",
          policies: [
            { name: "reads", action: "read.*", effect: "allow" },
            { name: "merges", action: "pr.merge", effect: "require_approval" },
            { name: "deploys", action: "deploy.run", effect: "allow" },
          ],
        },
      });
      expect(replaced).toMatchObject({ status: 200, body: { policyHash: expect.any(String) } });
      const policyHash = replaced!.body.policyHash;
      let seenOnB: unknown;
      await until(
        () => seenOnB === policyHash,
        () => seenOnB,
        async () => {
          seenOnB = (await send(b.url, pairKeys.agent, "GET", "/whoami"))?.body.policyHash;
        },
      );
      const deployed = await send(b.url, pairKeys.agent, "POST", "/actions", { actionType: "deploy.run" });
      expect(deployed).toMatchObject({ status: 200, body: { status: "executed", policyName: "deploys" } });
      await done;
      expect(logs.filter((log) => log.answer?.status !== 200)).toEqual([]);
      for (const replica of [0, 1]) {
        expect(logs.filter((log) => log.args.client % 2 === replica).length).toBeGreaterThan(10);
      }
      // The clients' calls, the held call, its approval and its release, one per pair, the policy
      // change and the deploy.
      const total = logs.length + 3 + pairs + 2;
      // B streamed every record, A's included, in chain order (a record yields one event, or two
      // for a denial by the circuit breaker: action.denied and enforcement.triggered).
      await until(
        () => new Set(stream.ids).size >= total,
        () => stream.ids.length,
      );
      expect(stream.ids.every((id, i) => i === 0 || id >= stream.ids[i - 1]!)).toBe(true);
      expect([...new Set(stream.ids)]).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      stream.close();
      await Promise.all([a.stop(), b.stop()]);

      const { records, verify } = await chainOf(database, orgId);
      expect(verify).toMatchObject({ chainValid: true, checked: total });
      expect(records.map((r) => r.seq)).toEqual(records.map((_, i) => i + 1));
      const told = new Set(logs.map((log) => log.answer!.body.auditEventId as string));
      expect(records.filter((r) => told.has(r.id))).toHaveLength(logs.length);
      expect(records.filter((r) => r.kind === "policy.changed")).toMatchObject([{ policy_hash: policyHash }]);
    } finally {
      stream.close();
      await Promise.allSettled([a.kill(), b.kill()]);
    }
  }, 60_000);
});

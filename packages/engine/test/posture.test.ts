/** The posture score: its four components computed from the real chain and approvals, on memory and SQLite. */
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { compilePolicy, parsePolicy } from "@aa/policy";
import { describe, expect, it } from "vitest";
import { computePosture, STALE_APPROVAL_MS } from "../src/controls/posture.js";
import { openEngine } from "../src/index.js";
import type { ApprovalRow } from "../src/store/types.js";
import { tempDir } from "./helpers.js";
import { pgSchemaUrl } from "./pg.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const dir = tempDir("aa-engine-posture-");
const policy = compilePolicy(
  parsePolicy(`version: 1
policies:
  - { name: reads, action: "read.*", effect: allow }
  - { name: merges, action: pr.merge, effect: require_approval, approval: { timeout: 8h } }
  - { name: deploys, action: deploy, effect: require_approval, approval: { timeout: 20ms } }
`),
);
const bot = { id: "bot" };

// Each test writes its own org's chain, so tests sharing a PostgreSQL schema do not see each other.
const freshOrg = () => `org-${Math.random().toString(36).slice(2)}`;
const pgUrl = pgSchemaUrl();

async function scenario(store: string) {
  const engine = await openEngine({ policy, store, orgId: freshOrg() });
  for (let i = 0; i < 6; i++) await engine.decide({ agent: bot, actionType: "read.file", args: { i } });
  for (let i = 0; i < 2; i++) await engine.decide({ agent: bot, actionType: "unknown.thing" });
  const merge = await engine.decide({ agent: bot, actionType: "pr.merge" });
  await engine.approve(merge.approvalId!, "reviewer");
  await engine.decide({ agent: bot, actionType: "deploy" });
  await engine.contain("rogue", "ops", "test");
  expect(await engine.decide({ agent: { id: "rogue" }, actionType: "read.file" })).toMatchObject({
    denialReason: "CIRCUIT_OPEN",
  });
  await sleep(30); // the deploy approval expires undecided
  return engine;
}

describe.each([
  ["memory", () => ":memory:"],
  ["sqlite", () => join(dir, `posture-${Math.random()}.db`)],
  ["postgres", () => pgUrl()],
])("posture on the %s store", (_kind, store) => {
  it("is 100 for an empty chain, with a detail per component", async () => {
    const engine = await openEngine({ policy, store: store(), orgId: freshOrg() });
    const posture = await engine.posture();
    expect(posture.score).toBe(100);
    expect(posture.window).toEqual({ records: 0 });
    expect(posture.components.policyCoverage).toEqual({
      score: 25,
      detail: "no evaluated actions in the window",
    });
    expect(posture.components.chainIntegrity.detail).toContain("verified");
    await engine.close();
  });

  it("scores coverage, approval hygiene, anomalies and chain integrity from the records", async () => {
    const engine = await scenario(store());
    const posture = await engine.posture();
    // 10 evaluated actions (the CIRCUIT_OPEN one is not evaluated), 8 matched a named policy.
    expect(posture.components.policyCoverage.score).toBe(20);
    expect(posture.components.policyCoverage.detail).toContain("8 of 10");
    // One approval decided by a reviewer, one expired.
    expect(posture.components.approvalHygiene.score).toBe(12.5);
    expect(posture.components.approvalHygiene.detail).toContain("1 expired");
    // 11 actions, 3 denied (2 no matching policy, 1 kill switch).
    expect(posture.components.anomalyRate.score).toBe(18.2);
    expect(posture.components.anomalyRate.detail).toContain("3 of 11 actions denied (27%), 1 of them");
    expect(posture.components.chainIntegrity.score).toBe(25);
    expect(posture.score).toBe(76);
    expect(posture.window.records).toBe(13);
    await engine.close();
  });
});

describe("posture (chain integrity, stale approvals, window)", () => {
  it("chain integrity drops to 0 when a record was edited behind the engine's back", async () => {
    const file = join(dir, "tampered.db");
    const written = await scenario(file);
    const orgId = written.orgId;
    await written.close();
    const db = new DatabaseSync(file);
    db.exec(`UPDATE audit_events SET record = replace(record, '"i":3', '"i":7') WHERE seq = 4`);
    db.close();
    const engine = await openEngine({ policy, store: file, orgId });
    const posture = await engine.posture();
    expect(posture.components.chainIntegrity.score).toBe(0);
    expect(posture.components.chainIntegrity.detail).toContain("chain broken at record");
    expect(posture.score).toBeLessThanOrEqual(75);
    await engine.close();
  });

  it("counts approvals pending for over an hour against hygiene and ignores approvals older than the window", () => {
    const now = Date.parse("2026-01-01T12:00:00Z");
    const at = (msAgo: number) => new Date(now - msAgo).toISOString();
    const approval = (state: ApprovalRow["state"], createdMsAgo: number, expiresInMs: number) =>
      ({ state, createdAt: at(createdMsAgo), expiresAt: at(-expiresInMs) }) as ApprovalRow;
    const records = [
      {
        kind: "action",
        time: at(3 * STALE_APPROVAL_MS),
        status: "requested",
        denial_reason: null,
        policy_name: "p",
        mode: "enforce",
      },
    ];
    const valid = { chainValid: true, checked: 1, firstBrokenAtRowId: null };
    const posture = computePosture(
      records,
      [
        approval("approved", STALE_APPROVAL_MS, 1000),
        approval("pending", 2 * STALE_APPROVAL_MS, 1000), // stale
        approval("pending", 1000, 1000), // too young to judge
        approval("denied", 4 * STALE_APPROVAL_MS, 1000), // before the window
      ],
      valid,
      now,
    );
    expect(posture.components.approvalHygiene).toMatchObject({ score: 12.5 });
    expect(posture.components.approvalHygiene.detail).toContain("1 pending for over 60 min");
  });
});

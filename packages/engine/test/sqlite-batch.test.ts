import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openEngine } from "../src/index.js";
import { agent, policy, tempDir } from "./helpers.js";

describe("SQLite group commit", () => {
  it("writes a large concurrent batch (plain records and approvals mixed) in call order", async () => {
    const engine = await openEngine({ policy, store: join(tempDir(), "batch.db") });
    const calls = [];
    for (let i = 0; i < 300; i++) {
      calls.push(
        i === 5 || i === 150 || i === 298
          ? engine.decide({ agent, actionType: "pr.merge", args: { i } })
          : engine.decide({ agent, actionType: "read.file", args: { i } }),
      );
    }
    const results = await Promise.all(calls);
    expect(results.filter((r) => r.status === "requested")).toHaveLength(3);
    const seen: { id: string; seq: number; args: unknown }[] = [];
    let cursor: string | undefined;
    do {
      const page = await engine.audit({ limit: 128, ...(cursor ? { cursor } : {}) });
      seen.push(...page.items.map((e) => ({ id: e.id, seq: e.seq, args: e.args })));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen.map((e) => e.id)).toEqual(results.map((r) => r.auditEventId));
    expect(seen.map((e) => e.seq)).toEqual(results.map((_r, i) => i + 1));
    expect(seen.map((e) => e.args)).toEqual(results.map((_r, i) => ({ i })));
    for (const held of results.filter((r) => r.status === "requested")) {
      expect((await engine.getApproval(held.approvalId!))?.state).toBe("pending");
    }
    expect(await engine.verify()).toEqual({ chainValid: true, checked: 300, firstBrokenAtRowId: null });
    await engine.close();
  });
});

describe("SQLite event lookup by id", () => {
  it("finds records whose ids are copied to the id table and records in the uncopied tail", async () => {
    const file = join(tempDir(), "ids.db");
    const engine = await openEngine({ policy, store: file });
    const ids: string[] = [];
    for (let i = 0; i < 300; i++)
      ids.push((await engine.decide({ agent, actionType: "read.file", args: { i } })).auditEventId);
    for (const at of [0, 127, 128, 200, 255, 256, 299]) {
      await engine.report(ids[at]!, { status: "success", message: `call ${at}` }, agent.id);
      const receipt = await engine.receipt(ids[at]!);
      expect(receipt).toContain(".");
    }
    const { DatabaseSync } = await import("node:sqlite");
    const db = new DatabaseSync(file);
    const copied = db.prepare("SELECT COUNT(*) AS n FROM audit_event_ids").get() as { n: number };
    db.close();
    expect(copied.n).toBeGreaterThanOrEqual(128);
    expect(copied.n).toBeLessThan(300);
    const outcomes = (await engine.audit({ limit: 1000 })).items.filter((e) => e.outcome);
    expect(outcomes.map((e) => e.id)).toEqual([0, 127, 128, 200, 255, 256, 299].map((at) => ids[at]));
    await engine.close();
  });

  it("migrates a version-1 file: ids of existing records are copied and still found", async () => {
    const file = join(tempDir(), "v1.db");
    const first = await openEngine({ policy, store: file });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++)
      ids.push((await first.decide({ agent, actionType: "read.file", args: { i } })).auditEventId);
    await first.close();
    const { DatabaseSync } = await import("node:sqlite");
    const db = new DatabaseSync(file);
    // Turn the file back into the version-1 layout (id index on the hot table, no id table).
    db.exec(`DROP TABLE audit_event_ids; DROP TABLE audit_event_id_marks;
      CREATE UNIQUE INDEX audit_events_id ON audit_events (id); DELETE FROM schema_version WHERE version > 1;`);
    db.close();

    const engine = await openEngine({ policy, store: file });
    await engine.report(ids[2]!, { status: "success" }, agent.id);
    expect((await engine.audit()).items.find((e) => e.id === ids[2])?.outcome?.status).toBe("success");
    const check = new DatabaseSync(file);
    expect(check.prepare("SELECT COUNT(*) AS n FROM audit_event_ids").get()).toEqual({ n: 5 });
    expect(
      check.prepare("SELECT name FROM sqlite_master WHERE name = 'audit_events_id'").get(),
    ).toBeUndefined();
    check.close();
    expect(await engine.verify()).toMatchObject({ chainValid: true, checked: 5 });
    await engine.close();
  });

  it("still finds a record whose row was renumbered after its id was copied", async () => {
    const file = join(tempDir(), "renumbered.db");
    const engine = await openEngine({ policy, store: file });
    const ids: string[] = [];
    for (let i = 0; i < 130; i++)
      ids.push((await engine.decide({ agent, actionType: "read.file", args: { i } })).auditEventId);
    await engine.close();
    const { DatabaseSync } = await import("node:sqlite");
    const db = new DatabaseSync(file);
    db.exec("UPDATE audit_events SET seq = seq + 1000 WHERE seq = 3");
    db.close();
    const reopened = await openEngine({ policy, store: file });
    await reopened.report(ids[2]!, { status: "failure" }, agent.id);
    expect((await reopened.verify()).chainValid).toBe(false);
    await reopened.close();
  });
});

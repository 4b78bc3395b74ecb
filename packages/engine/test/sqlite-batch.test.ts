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

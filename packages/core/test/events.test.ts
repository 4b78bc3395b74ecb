/** Realtime events through the governance client (embedded gate, SQLite store). */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openEngine } from "@aa/engine";
import { compilePolicy, validatePolicy } from "@aa/policy";
import { afterAll, describe, expect, it } from "vitest";
import { type EngineEvent, initAssembly } from "../src/index.js";

const fixtureRoot = new URL("./fixtures/host-app/", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "aa-core-events-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const policy = {
  version: 1,
  default: "deny",
  policies: [
    { name: "reads", action: "read_*", effect: "allow" },
    { name: "merges", action: "merge_pr", effect: "require_approval", approval: { timeout: "1h" } },
  ],
};

async function until(ready: () => boolean, seen: () => unknown): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`condition not met; saw ${JSON.stringify(seen())}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe("subscribe through the governance client", () => {
  it("delivers execute/gate events in order, filters, resumes, and sees another process's appends", async () => {
    const store = join(dir, "events.db");
    const context = await initAssembly({
      agent: { id: "bot" },
      root: fixtureRoot,
      policy,
      store,
      adapters: [],
    });
    try {
      const events: EngineEvent[] = [];
      const types = () => events.map((e) => e.type);
      const subscription = await context.subscribe((event) => {
        events.push(event);
      });
      const denials: EngineEvent[] = [];
      await context.subscribe("default", (event) => void denials.push(event), {
        events: ["action.denied"],
        agentFilter: "bot",
      });

      await context.execute("read_file");
      await context.execute("delete_repo");
      const gated = context.gate("merge_pr");
      await until(() => types().includes("approval.requested"), types);
      const approvalId = events.find((e) => e.type === "approval.requested")!.data.approvalId as string;
      await context.approve(approvalId, "reviewer", "fine");
      await expect(gated).resolves.toMatchObject({ status: "executed" });
      await until(() => events.length >= 5, types);
      expect(types()).toEqual([
        "action.executed",
        "action.denied",
        "approval.requested",
        "approval.resolved",
        "action.executed",
      ]);
      expect(denials.map((e) => e.actionType)).toEqual(["delete_repo"]);

      // Resume: another process (a second engine on the same file) appends while we are away.
      const resumeAfter = subscription.lastSeq;
      subscription.unsubscribe();
      // The same policy (validated as initAssembly does, so the same hash): opening records no change.
      const other = await openEngine({ policy: compilePolicy(validatePolicy(policy)), store });
      await other.decide({ agent: { id: "other-bot" }, actionType: "read_notes" });
      await other.decide({ agent: { id: "other-bot" }, actionType: "drop_table" });
      const resumed: EngineEvent[] = [];
      await context.subscribe((event) => void resumed.push(event), { after: resumeAfter });
      await until(
        () => resumed.length >= 2,
        () => resumed.map((e) => e.type),
      );
      expect(resumed.map((e) => [e.type, e.agentId, e.actionType])).toEqual([
        ["action.executed", "other-bot", "read_notes"],
        ["action.denied", "other-bot", "drop_table"],
      ]);
      // A live subscription sees the other process's next append through the store poll.
      await other.decide({ agent: { id: "other-bot" }, actionType: "read_more" });
      await until(
        () => resumed.length >= 3,
        () => resumed.map((e) => e.type),
      );
      expect(resumed[2]).toMatchObject({ type: "action.executed", actionType: "read_more" });
      await other.close();
      expect(events).toHaveLength(5);
    } finally {
      await context.shutdown();
    }
  });

  it("rejects another org and bad options with AssemblyErrors", async () => {
    const context = await initAssembly({
      agent: { id: "bot" },
      root: fixtureRoot,
      policy,
      store: join(dir, "errors.db"),
      adapters: [],
    });
    try {
      await expect(context.subscribe("acme", () => {})).rejects.toMatchObject({
        name: "AssemblyError",
        code: "ORG_MISMATCH",
      });
      await expect(context.subscribe(() => {}, { events: ["nope" as never] })).rejects.toMatchObject({
        code: "INVALID_REQUEST",
      });
    } finally {
      await context.shutdown();
    }
  });
});

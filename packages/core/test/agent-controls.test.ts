/**
 * The governance client and the operator's controls: `whoami().cbState` / `contained` follow a
 * containment written by another process's engine (as `aa agents contain` does), and `gate()`
 * waits for a decision made elsewhere, re-reading the store every `gatePollIntervalMs`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openEngine } from "@aa/engine";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { type AssemblyContext, AssemblyDeniedError, initAssembly } from "../src/index.js";

const fixtureRoot = new URL("./fixtures/host-app/", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "aa-core-controls-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

const policy = {
  version: 1,
  default: "deny",
  policies: [
    { name: "reads", action: "read_*", effect: "allow" },
    { name: "merges", action: "pr.merge", effect: "require_approval" },
  ],
};

let context: AssemblyContext | undefined;
afterEach(async () => {
  await context?.shutdown().catch(() => {});
  context = undefined;
});

async function setup() {
  const store = join(dir, `controls-${n++}.db`);
  context = await initAssembly({ agent: { id: "bot" }, root: fixtureRoot, policy, store, adapters: [] });
  // Another process's view of the same store: the operator (the CLI opens one just like this).
  const operator = await openEngine({ policy: policy as never, store });
  return { ctx: context, operator };
}

describe("operator controls through the governance client", () => {
  it("whoami reports the circuit state and a containment made by another engine; calls are denied CIRCUIT_OPEN", async () => {
    const { ctx, operator } = await setup();
    expect(await ctx.whoami()).toMatchObject({ agentId: "bot", cbState: "closed", contained: false });
    await operator.contain("bot", "ops-carol", "incident 7");
    // The agent's engine re-reads containment on its own timer, off the decision path.
    while (!(await ctx.whoami()).contained) await new Promise((r) => setTimeout(r, 20));
    expect(await ctx.whoami()).toMatchObject({ cbState: "open", contained: true });
    expect(await ctx.execute("read_file")).toMatchObject({ status: "denied", denialReason: "CIRCUIT_OPEN" });
    const error = await ctx.gate("read_file").catch((e) => e);
    expect(error).toBeInstanceOf(AssemblyDeniedError);
    expect(error.reason).toBe("CIRCUIT_OPEN");
    expect(error.message).toContain("ops-carol");
    await operator.release("bot", "ops-dave", "resolved");
    while ((await ctx.whoami()).contained) await new Promise((r) => setTimeout(r, 20));
    expect(await ctx.execute("read_file")).toMatchObject({ status: "executed" });
    await operator.close();
  });

  it("gate() with gatePollIntervalMs sees an approval decided by another process and releases the call once", async () => {
    const { ctx, operator } = await setup();
    const waiting = ctx.gate("pr.merge", { gatePollIntervalMs: 20, gatePollTimeoutMs: 30_000 });
    let pending = await operator.listApprovals({ state: "pending" });
    while (pending.length === 0) {
      await new Promise((r) => setTimeout(r, 20));
      pending = await operator.listApprovals({ state: "pending" });
    }
    await operator.approve(pending[0]!.id, "alice", "ok");
    expect(await waiting).toMatchObject({ status: "executed", approvalId: pending[0]!.id });
    await expect(operator.releaseApproval(pending[0]!.id, "bot")).rejects.toMatchObject({
      code: "APPROVAL_ALREADY_USED",
    });
    await operator.close();
  });

  it("rejects a gatePollIntervalMs below 10 ms with a typed error naming it", async () => {
    const { ctx, operator } = await setup();
    const error = await ctx.gate("pr.merge", { gatePollIntervalMs: 0 }).catch((e) => e);
    expect(String(error.message)).toContain("pollIntervalMs");
    await operator.close();
  });
});

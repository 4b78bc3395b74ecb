/**
 * Delegation through the governance client (embedded gate on SQLite): child clients with the full
 * surface, `await using` and the callback form revoking whatever happens, `parallel` fan-out that
 * cleans every child up even when a task throws, `delegations()` and `revoke()`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  type AssemblyContext,
  AssemblyDeniedError,
  type DelegatedClient,
  initAssembly,
} from "../src/index.js";

const fixtureRoot = new URL("./fixtures/host-app/", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "aa-core-delegation-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

const policy = {
  version: 1,
  default: "deny",
  policies: [
    { name: "reads", action: "read.*", effect: "allow" },
    { name: "search", action: "search.*", effect: "allow" },
    { name: "merges", action: "pr.merge", effect: "require_approval" },
  ],
};

let context: AssemblyContext | undefined;
afterEach(async () => {
  await context?.shutdown().catch(() => {});
  context = undefined;
});

async function setup(): Promise<AssemblyContext> {
  context = await initAssembly({
    agent: { id: "lead" },
    root: fixtureRoot,
    policy,
    store: join(dir, `delegation-${n++}.db`),
    adapters: [],
  });
  return context;
}

const states = async (assembly: AssemblyContext) =>
  Object.fromEntries((await assembly.delegations({ role: "ancestor" })).map((d) => [d.agentId, d.state]));

describe("delegation through the governance client", () => {
  it("a child client acts as the child within its capabilities; `await using` revokes it", async () => {
    const assembly = await setup();
    let kept: DelegatedClient;
    {
      await using child = await assembly.delegate("researcher", { capabilities: ["read.*"], ttl: 600 });
      kept = child;
      expect(child.agentId).toBe("lead/researcher");
      expect(child.delegation).toMatchObject({
        chain: ["lead", "lead/researcher"],
        capabilities: ["read.*"],
      });
      expect(await child.whoami()).toMatchObject({
        agentId: "lead/researcher",
        delegation: { parentAgentId: "lead", chain: ["lead", "lead/researcher"], capabilities: ["read.*"] },
      });
      expect(await child.execute("read.docs")).toMatchObject({ status: "executed" });
      expect(await child.canI("search.web")).toMatchObject({ allowed: false, denialReason: "NOT_DELEGATED" });
      const denied = await child.gate("search.web").catch((error: unknown) => error);
      expect(denied).toBeInstanceOf(AssemblyDeniedError);
      expect((denied as AssemblyDeniedError).reason).toBe("NOT_DELEGATED");
      // The child reports the outcome of its own call; another agent may not.
      const own = await child.execute("read.other");
      await child.report(own.auditEventId, { status: "success" });
      await expect(assembly.report(own.auditEventId, { status: "failure" })).rejects.toMatchObject({
        code: "FORBIDDEN",
      });
      // The root itself is not limited by its child's capabilities.
      expect(await assembly.execute("search.web")).toMatchObject({ status: "executed" });
      expect(await states(assembly)).toEqual({ "lead/researcher": "active" });
    }
    expect(await states(assembly)).toEqual({ "lead/researcher": "revoked" });
    expect(await kept.execute("read.docs")).toMatchObject({
      status: "denied",
      denialReason: "DELEGATION_REVOKED",
    });
    await kept.close(); // idempotent
    const records = (await assembly.audit({ limit: 100 })).items.filter((e) => e.kind === "action");
    expect(records.map((e) => [e.agent, e.delegation, e.status])).toEqual([
      ["lead/researcher", ["lead", "lead/researcher"], "executed"],
      ["lead/researcher", ["lead", "lead/researcher"], "denied"],
      ["lead/researcher", ["lead", "lead/researcher"], "executed"],
      ["lead", ["lead"], "executed"],
      ["lead/researcher", ["lead", "lead/researcher"], "denied"],
    ]);
  });

  it("the callback form revokes the child whether the callback returns or throws", async () => {
    const assembly = await setup();
    const result = await assembly.delegate("a", { capabilities: ["read.*"] }, async (child) => {
      expect((await child.execute("read.x")).status).toBe("executed");
      return child.delegation.id;
    });
    expect(result).toMatch(/^dlg_/);
    const failure = new Error("task failed");
    await expect(
      assembly.delegate("b", { capabilities: ["read.*"] }, async (child) => {
        await child.execute("read.x");
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(await states(assembly)).toEqual({ "lead/a": "revoked", "lead/b": "revoked" });
  });

  it("children delegate further, narrower only; revoking a child revokes its descendants", async () => {
    const assembly = await setup();
    await using child = await assembly.delegate("team", { capabilities: ["read.*", "search.*"] });
    await expect(child.delegate("wider", { capabilities: ["pr.*"] })).rejects.toMatchObject({
      code: "CAPABILITY_ESCALATION",
    });
    await expect(child.delegate("long", { capabilities: ["read.*"], ttl: 90_000 })).rejects.toMatchObject({
      code: "DELEGATION_TTL_EXCEEDED",
    });
    const grandchild = await child.delegate("reader", { capabilities: ["read.*"] });
    expect(grandchild.agentId).toBe("lead/team/reader");
    expect(await grandchild.execute("read.x")).toMatchObject({ status: "executed" });
    expect((await child.delegations()).map((d) => d.agentId)).toEqual(["lead/team/reader"]);
    expect((await grandchild.delegations({ role: "child" })).map((d) => d.agentId)).toEqual([
      "lead/team/reader",
    ]);
    // A grandchild may not revoke its parent; the root may revoke anything below it.
    await expect(grandchild.revoke(child.delegation.id)).rejects.toMatchObject({ code: "FORBIDDEN" });
    await assembly.revoke(child.delegation.id);
    expect(await grandchild.execute("read.x")).toMatchObject({
      status: "denied",
      denialReason: "DELEGATION_REVOKED",
    });
    expect(await states(assembly)).toEqual({ "lead/team": "revoked", "lead/team/reader": "revoked" });
  });

  it("parallel fans out, runs each task as its child, and revokes every child even when one task throws", async () => {
    const assembly = await setup();
    const specs = [
      { name: "w1", capabilities: ["read.*"] },
      { name: "w2", capabilities: ["search.*"] },
      { name: "w3", capabilities: ["read.a"] },
    ];
    const results = await assembly.parallel(specs, async (child, spec) => {
      const decision = await child.execute(spec.name === "w2" ? "search.web" : "read.a");
      return `${child.agentId}:${decision.status}`;
    });
    expect(results).toEqual(["lead/w1:executed", "lead/w2:executed", "lead/w3:executed"]);
    const boom = new Error("w2 failed");
    await expect(
      assembly.parallel(specs, async (child) => {
        if (child.agentId === "lead/w2") throw boom;
        await new Promise((resolve) => setTimeout(resolve, 20));
        return child.agentId;
      }),
    ).rejects.toBe(boom);
    // One child that cannot be created (wider than the root? no: a bad name) leaves no other child behind.
    await expect(
      assembly.parallel(
        [
          { name: "ok", capabilities: ["read.*"] },
          { name: "bad name", capabilities: ["read.*"] },
        ],
        () => 1,
      ),
    ).rejects.toMatchObject({ code: "INVALID_REQUEST" });
    expect(await assembly.delegations({ activeOnly: true })).toEqual([]);
    expect((await assembly.delegations()).map((d) => d.state)).toEqual(Array(7).fill("revoked"));
  });

  it("an approval a child requested can be decided neither by the child nor by its parent", async () => {
    const assembly = await setup();
    await using child = await assembly.delegate("merger", { capabilities: ["pr.merge"] });
    const held = await child.execute("pr.merge");
    expect(held).toMatchObject({ status: "requested" });
    for (const reviewer of ["lead/merger", "lead"]) {
      await expect(assembly.approve(held.approvalId!, reviewer)).rejects.toMatchObject({
        code: "SELF_APPROVAL_FORBIDDEN",
      });
    }
    const waiting = child.gate("pr.merge", { gatePollIntervalMs: 20, gatePollTimeoutMs: 20_000 });
    const pending = await (async () => {
      for (;;) {
        const list = await assembly.listApprovals({ state: "pending" });
        if (list.length === 2) return list;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    await assembly.approve(pending[1]!.id, "ops-alice");
    expect(await waiting).toMatchObject({ status: "executed" });
  });
});

/**
 * Delegation through a real gateway process: the same client surface as the embedded gate.
 * Children created over `POST /v1/delegations` act with their token (`AA-Delegation`) on their
 * own calls, on LangChain tool calls made inside `child.run()`, on their held calls' release and
 * on their own `delegate()`; they are limited to their capabilities (NOT_DELEGATED), list and
 * revoke as themselves over the wire (the token on `GET`/`DELETE /v1/delegations`), and are
 * denied once revoked.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { langchainAdapter } from "@aa/adapter-langchain";
import { AssemblyDeniedError, GatewayClient, initAssembly } from "@aa/core";
import { expect, it } from "vitest";
import { startGatewayProcess } from "../dist/run.js";
import { mergeRelease, ran, readChanges } from "../dist/tools.js";

const root = new URL("..", import.meta.url).pathname;
const FAST = { retryDelaysMs: [20, 20], requestTimeoutMs: 5000 };

it("delegates over the gateway: attributed, limited to its capabilities, listed, revoked", {
  timeout: 120_000,
}, async () => {
  const gateway = await startGatewayProcess(join(mkdtempSync(join(tmpdir(), "aa-gw-delegation-")), "g.db"));
  const assembly = await initAssembly({
    mode: "sdk-only",
    root,
    gatewayUrl: gateway.url,
    apiKey: gateway.agentKey,
    adapters: [langchainAdapter],
    gatewayClient: FAST,
  });
  const operator = new GatewayClient({ url: gateway.url, apiKey: gateway.operatorKey, ...FAST });
  try {
    await using reviewer = await assembly.delegate("reviewer", {
      capabilities: ["read_*", "open_pr"],
      ttl: 600,
    });
    expect(reviewer.agentId).toBe("release-bot/reviewer");
    expect(reviewer.delegation).toMatchObject({
      parentAgentId: "release-bot",
      chain: ["release-bot", "release-bot/reviewer"],
      state: "active",
    });
    expect((await reviewer.whoami()).delegation?.chain).toEqual(["release-bot", "release-bot/reviewer"]);

    // The child's own calls, inside and outside its capabilities.
    expect((await reviewer.execute("read_changes")).status).toBe("executed");
    expect(await reviewer.execute("merge_release")).toMatchObject({
      status: "denied",
      denialReason: "NOT_DELEGATED",
    });
    // LangChain tool calls inside run() are the child's; outside it, the root agent's again.
    ran.length = 0;
    await reviewer.run(async () => {
      expect(await readChanges.invoke({})).toContain("api");
      const denied = await mergeRelease.invoke({ version: "v1" }).catch((error: unknown) => error);
      expect(denied).toBeInstanceOf(AssemblyDeniedError);
      expect((denied as AssemblyDeniedError).reason).toBe("NOT_DELEGATED");
    });
    expect(await readChanges.invoke({})).toContain("api");
    expect(ran).toEqual(["read_changes", "read_changes"]);

    // A child delegates further with its token, narrower only.
    const reader = await reviewer.delegate("reader", { capabilities: ["read_*"] });
    expect(reader.delegation.chain).toEqual([
      "release-bot",
      "release-bot/reviewer",
      "release-bot/reviewer/reader",
    ]);
    await expect(reviewer.delegate("shipper", { capabilities: ["merge_release"] })).rejects.toMatchObject({
      code: "CAPABILITY_ESCALATION",
    });
    expect((await reader.execute("read_changes")).status).toBe("executed");

    // Listing, relative to each client as in the embedded gate.
    expect((await assembly.delegations()).map((d) => d.agentId)).toEqual(["release-bot/reviewer"]);
    expect((await assembly.delegations({ role: "ancestor" })).map((d) => d.agentId).sort()).toEqual([
      "release-bot/reviewer",
      "release-bot/reviewer/reader",
    ]);
    expect((await reviewer.delegations()).map((d) => d.agentId)).toEqual(["release-bot/reviewer/reader"]);
    expect((await reader.delegations({ role: "child" })).map((d) => d.id)).toEqual([reader.delegation.id]);
    // A descendant may not revoke its parent's delegation.
    await expect(reader.revoke(reviewer.delegation.id)).rejects.toMatchObject({ code: "FORBIDDEN" });
    // A child revokes as itself (its token in AA-Delegation): recorded with the child as revokedBy.
    const scratch = await reviewer.delegate("scratch", { capabilities: ["read_*"] });
    expect(await reviewer.revoke(scratch.delegation.id)).toMatchObject({
      state: "revoked",
      revokedBy: "release-bot/reviewer",
    });
    expect(await scratch.execute("read_changes")).toMatchObject({ denialReason: "DELEGATION_REVOKED" });
    await scratch.close();
    // A child may revoke its own delegation; a retry (first answer lost) finds its token revoked
    // and gets the same answer (revocation is idempotent).
    const temp = await reviewer.delegate("temp", { capabilities: ["read_*"] });
    const own = { state: "revoked", revokedBy: "release-bot/reviewer/temp" };
    expect(await temp.revoke(temp.delegation.id)).toMatchObject(own);
    expect(await temp.revoke(temp.delegation.id)).toMatchObject(own);
    await temp.close();

    // A child's held call: long-polled, approved by an operator, released with the child's token.
    const shipper = await assembly.delegate("shipper", { capabilities: ["merge_release"] });
    const shipped = shipper.gate("merge_release", { args: { version: "v2" } });
    let pending: Awaited<ReturnType<GatewayClient["listApprovals"]>> = [];
    for (let i = 0; i < 200 && pending.length === 0; i++) {
      pending = await operator.listApprovals({ state: "pending" });
      if (pending.length === 0) await new Promise((r) => setTimeout(r, 50));
    }
    expect(pending.map((a) => a.agentId)).toEqual(["release-bot/shipper"]);
    await operator.approve(pending[0]!.id, "checked");
    expect((await shipped).status).toBe("executed");
    await shipper.close();

    // Callback form and parallel(): tool calls inside are each child's; all revoked afterwards.
    const callbackId = await assembly.delegate("once", { capabilities: ["read_*"] }, async (child) => {
      await readChanges.invoke({});
      return child.delegation.id;
    });
    const fanned = await assembly.parallel(
      [
        { name: "w1", capabilities: ["read_changes"] },
        { name: "w2", capabilities: ["read_changes"] },
      ],
      async (child) => {
        await readChanges.invoke({});
        return child.agentId;
      },
    );
    expect(fanned).toEqual(["release-bot/w1", "release-bot/w2"]);
    const states = Object.fromEntries((await assembly.delegations()).map((d) => [d.agentId, d.state]));
    expect(states).toMatchObject({
      "release-bot/once": "revoked",
      "release-bot/w1": "revoked",
      "release-bot/w2": "revoked",
      "release-bot/shipper": "revoked",
      "release-bot/reviewer": "active",
    });
    expect((await assembly.delegations()).find((d) => d.agentId === "release-bot/once")?.id).toBe(callbackId);

    // Revoking cascades; the child and its child are denied afterwards, inside run() too.
    expect((await assembly.revoke(reviewer.delegation.id)).state).toBe("revoked");
    expect(await reviewer.execute("read_changes")).toMatchObject({
      status: "denied",
      denialReason: "DELEGATION_REVOKED",
    });
    expect(await reader.execute("read_changes")).toMatchObject({
      status: "denied",
      denialReason: "DELEGATION_REVOKED",
    });
    const afterRevoke = await reviewer
      .run(() => readChanges.invoke({}))
      .catch((error: unknown) => error as AssemblyDeniedError);
    expect((afterRevoke as AssemblyDeniedError).reason).toBe("DELEGATION_REVOKED");

    // The audit trail names each child as the agent, with its chain.
    const actions = (await operator.audit({ limit: 200 })).items.filter((e) => e.kind === "action");
    const seen = actions.map((e) => [e.agent, e.delegation.length, e.action_type, e.status, e.denial_reason]);
    expect(seen).toContainEqual(["release-bot/reviewer", 2, "read_changes", "executed", null]);
    expect(seen).toContainEqual(["release-bot/reviewer", 2, "merge_release", "denied", "NOT_DELEGATED"]);
    expect(seen).toContainEqual(["release-bot/reviewer/reader", 3, "read_changes", "executed", null]);
    expect(seen).toContainEqual(["release-bot/once", 2, "read_changes", "executed", null]);
    expect(seen).toContainEqual(["release-bot/w2", 2, "read_changes", "executed", null]);
    expect(seen).toContainEqual(["release-bot", 1, "read_changes", "executed", null]);
    expect(seen).toContainEqual([
      "release-bot/reviewer/reader",
      3,
      "read_changes",
      "denied",
      "DELEGATION_REVOKED",
    ]);
    expect(actions.some((e) => e.agent === "release-bot/shipper" && e.action_type === "merge_release")).toBe(
      true,
    );
  } finally {
    await assembly.shutdown();
    await gateway.stop();
  }
});

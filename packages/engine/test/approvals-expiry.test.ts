import { compilePolicy, parsePolicy } from "@aa/policy";
import { describe, expect, it } from "vitest";
import { openEngine } from "../src/index.js";

const policy = compilePolicy(
  parsePolicy(
    "version: 1\ndefault: deny\npolicies:\n  - { name: quick, action: deploy, effect: require_approval, approval: { timeout: 1s } }\n",
  ),
);

describe("approval expiry", () => {
  it("expires into an APPROVAL_TIMEOUT denial, audited once, and then cannot be approved", async () => {
    const engine = await openEngine({ policy, store: ":memory:" });
    const held = await engine.decide({ agent: { id: "bot" }, actionType: "deploy" });
    const settled = await engine.awaitApproval(held.approvalId!);
    expect(settled.state).toBe("expired");
    await expect(engine.approve(held.approvalId!, "alice")).rejects.toMatchObject({
      code: "APPROVAL_NOT_PENDING",
    });
    const kinds = (await engine.audit()).items.map((e) => [e.kind, e.status, e.denial_reason]);
    expect(kinds).toEqual([
      ["action", "requested", null],
      ["approval.expired", "denied", "APPROVAL_TIMEOUT"],
    ]);
    await engine.close();
  });

  it("awaitApproval honours its own timeout and abort signal", async () => {
    const long = compilePolicy(
      parsePolicy(
        "version: 1\ndefault: deny\npolicies:\n  - { name: m, action: m, effect: require_approval }\n",
      ),
    );
    const engine = await openEngine({ policy: long, store: ":memory:" });
    const held = await engine.decide({ agent: { id: "bot" }, actionType: "m" });
    await expect(engine.awaitApproval(held.approvalId!, { timeoutMs: 50 })).rejects.toMatchObject({
      code: "APPROVAL_WAIT_TIMEOUT",
    });
    const controller = new AbortController();
    const waiting = engine.awaitApproval(held.approvalId!, { signal: controller.signal });
    controller.abort();
    await expect(waiting).rejects.toMatchObject({ code: "APPROVAL_WAIT_ABORTED" });
    await expect(engine.getApproval("missing")).resolves.toBeUndefined();
    await engine.close();
  });

  it("setPolicy records policy.changed with both hashes", async () => {
    const engine = await openEngine({ policy, store: ":memory:" });
    const next = compilePolicy(parsePolicy("version: 1\ndefault: deny\npolicies: []\n"));
    await engine.setPolicy(next, "ops");
    expect(engine.policyHash).toBe(next.hash);
    const [event] = (await engine.audit()).items;
    expect(event).toMatchObject({ kind: "policy.changed", agent: "ops", policy_hash: next.hash });
    expect(event!.reason).toContain(policy.hash);
    await engine.close();
  });
});

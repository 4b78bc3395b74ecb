/**
 * POLICY_TAMPERED in the engine: the tampered state (every decision denied, audited, evented,
 * shown in posture, ended by a recorded change), the frozen compiled policy (a caller's reference
 * cannot change what is enforced), and the policy change recorded when an engine opens a chain
 * whose last recorded policy is another one (a restart with an edited file).
 */
import { join } from "node:path";
import { compilePolicy, type PolicyDocument, parsePolicy } from "@aa/policy";
import { describe, expect, it } from "vitest";
import { EngineError, type EngineEvent, openEngine } from "../src/index.js";
import { agent, policy, tempDir } from "./helpers.js";
import { pgSchemaUrl } from "./pg.js";

const dir = tempDir("aa-engine-integrity-");
const pgUrl = pgSchemaUrl();
const freshOrg = () => `org-${Math.random().toString(36).slice(2)}`;
const finding = {
  storedHash: "f".repeat(64),
  recordedHash: policy.hash,
  message: "The policy stored for org test was edited behind the audit's back; replace it to fix this.",
  detectedBy: "test",
};

describe.each([
  ["memory", () => ":memory:"],
  ["SQLite", () => join(dir, `tampered-${freshOrg()}.db`)],
  ["PostgreSQL", () => pgUrl()],
])("a tampered policy on %s", (_name, storeFor) => {
  it("denies every decision POLICY_TAMPERED until a policy change is recorded, audited and evented", async () => {
    const engine = await openEngine({ policy, store: storeFor(), orgId: freshOrg() });
    try {
      const events: EngineEvent[] = [];
      await engine.subscribe((event) => {
        events.push(event);
      });
      const held = await engine.decide({ agent, actionType: "pr.merge" });
      await engine.approve(held.approvalId!, "reviewer");
      expect(engine.policyIntegrity).toEqual({ state: "intact", policyHash: policy.hash });

      await engine.markPolicyTampered(finding);
      expect(engine.policyIntegrity).toMatchObject({
        state: "tampered",
        policyHash: policy.hash,
        storedHash: finding.storedHash,
        recordedHash: policy.hash,
        message: finding.message,
      });
      // The same finding again appends nothing.
      await engine.markPolicyTampered(finding);

      const allowedBefore = await engine.decide({ agent, actionType: "read.file", args: { card: "4111" } });
      expect(allowedBefore).toMatchObject({
        status: "denied",
        denialReason: "POLICY_TAMPERED",
        message: finding.message,
        conditionsEvaluated: [],
      });
      // Observe mode lets calls run; a tampered policy is not one to observe under.
      expect(
        await engine.decide({ agent, actionType: "read.file", enforcementMode: "observe" }),
      ).toMatchObject({ status: "denied", denialReason: "POLICY_TAMPERED" });
      expect(await engine.decide({ agent, actionType: "read.file", dryRun: true })).toMatchObject({
        status: "denied",
        denialReason: "POLICY_TAMPERED",
      });
      // A call held before the tampering is not released while it lasts.
      await expect(engine.releaseApproval(held.approvalId!, agent.id)).rejects.toMatchObject({
        code: "POLICY_TAMPERED",
        status: 403,
      });

      const posture = await engine.posture();
      expect(posture.policyIntegrity).toMatchObject({ state: "tampered", storedHash: finding.storedHash });
      expect(posture.components.chainIntegrity.score).toBe(0);
      expect(posture.components.chainIntegrity.detail).toContain("policy is tampered");

      // The fix: a recorded policy change.
      await engine.setPolicy(policy, "admin");
      expect(engine.policyIntegrity.state).toBe("intact");
      expect(await engine.decide({ agent, actionType: "read.file" })).toMatchObject({ status: "executed" });
      expect((await engine.releaseApproval(held.approvalId!, agent.id)).status).toBe("executed");
      expect((await engine.posture()).components.chainIntegrity.score).toBe(25);

      const records = (await engine.audit({ limit: 1000 })).items;
      expect(records.map((r) => [r.kind, r.status, r.denial_reason])).toEqual([
        ["action", "requested", null],
        ["approval.approved", null, null],
        ["policy.tampered", null, null],
        ["action", "denied", "POLICY_TAMPERED"],
        ["action", "denied", "POLICY_TAMPERED"],
        ["policy.changed", null, null],
        ["action", "executed", null],
        ["approval.released", "executed", null],
      ]);
      const tampered = records.find((r) => r.kind === "policy.tampered")!;
      expect(tampered).toMatchObject({
        agent: "test",
        reason: finding.message,
        metadata: { storedHash: finding.storedHash, recordedHash: policy.hash },
      });
      // The denial's arguments were redacted by the policy in force, as any record's.
      expect(records[3]!.args).toEqual({ card: "[REDACTED]" });
      expect(await engine.verify()).toMatchObject({ chainValid: true, checked: records.length });

      await new Promise((resolve) => setTimeout(resolve, 400));
      expect(events.filter((e) => e.type === "anomaly.detected")).toEqual([
        expect.objectContaining({
          actionType: "policy.tamper",
          data: expect.objectContaining({
            trigger: "POLICY_TAMPERED",
            storedHash: finding.storedHash,
            recordedHash: policy.hash,
          }),
        }),
      ]);
      expect(events.filter((e) => e.type === "enforcement.triggered").map((e) => e.data.trigger)).toEqual([
        "POLICY_TAMPERED",
        "POLICY_TAMPERED",
      ]);
    } finally {
      await engine.close();
    }
  });
});

describe("the tampered state", () => {
  it("leaves disabled mode (no evaluation) alone and is ended by adopting the newest recorded policy", async () => {
    const engine = await openEngine({ policy, store: ":memory:" });
    try {
      await engine.markPolicyTampered(finding);
      expect(
        await engine.decide({ agent, actionType: "read.file", enforcementMode: "disabled", failOpen: true }),
      ).toMatchObject({ status: "executed" });
      // Not the newest recorded policy (none is recorded): nothing changes.
      expect(await engine.adoptRecordedPolicy(policy)).toBe(false);
      expect(engine.policyIntegrity.state).toBe("tampered");
      await engine.setPolicy(policy);
      await engine.markPolicyTampered(finding);
      expect(await engine.adoptRecordedPolicy(policy)).toBe(true);
      expect(engine.policyIntegrity.state).toBe("intact");
    } finally {
      await engine.close();
    }
  });

  it("refuses a malformed finding with a typed error", async () => {
    const engine = await openEngine({ policy, store: ":memory:" });
    try {
      await expect(
        engine.markPolicyTampered({ storedHash: "x", recordedHash: null, message: "" }),
      ).rejects.toMatchObject({ code: "INVALID_REQUEST" });
      expect(engine.policyIntegrity.state).toBe("intact");
    } finally {
      await engine.close();
    }
  });
});

describe("the enforced policy cannot be changed through a reference the caller kept", () => {
  const yaml = `version: 1
default: deny
policies:
  - { name: small, action: pay, effect: allow, when: [{ field: args.amount, op: in, value: [1, 2, 3] }] }
`;

  it("compiles a frozen copy: editing the caller's document changes nothing", async () => {
    const document = JSON.parse(JSON.stringify(parsePolicy(yaml))) as {
      policies: { effect: string; when: { value: number[] }[] }[];
    };
    const engine = await openEngine({ policy: document as unknown as PolicyDocument, store: ":memory:" });
    try {
      const hash = engine.policyHash;
      document.policies[0]!.when[0]!.value.push(1000);
      document.policies[0]!.effect = "deny";
      expect(await engine.decide({ agent, actionType: "pay", args: { amount: 1000 } })).toMatchObject({
        status: "denied",
        denialReason: "CONDITIONS_DENIED",
      });
      expect(await engine.decide({ agent, actionType: "pay", args: { amount: 2 } })).toMatchObject({
        status: "executed",
      });
      expect(engine.policyHash).toBe(hash);
    } finally {
      await engine.close();
    }
  });

  it("freezes a compiled policy, and compiles a hand-made one again from its document", async () => {
    const compiled = compilePolicy(parsePolicy(yaml));
    expect(Object.isFrozen(compiled)).toBe(true);
    expect(Object.isFrozen(compiled.document.policies[0])).toBe(true);
    expect(() => {
      (compiled as { evaluate: unknown }).evaluate = () => ({ effect: "allow" });
    }).toThrow(TypeError);

    const handMade = {
      ...compiled,
      evaluate: () => ({
        effect: "allow" as const,
        conditionsEvaluated: [],
        matchedPolicies: [],
        message: "yes",
      }),
    };
    const engine = await openEngine({ policy: handMade, store: ":memory:" });
    try {
      expect(await engine.decide({ agent, actionType: "pay", args: { amount: 1000 } })).toMatchObject({
        status: "denied",
      });
    } finally {
      await engine.close();
    }
    const lying = { ...compiled, hash: "0".repeat(64) };
    const refused = await openEngine({ policy: lying, store: ":memory:" }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(EngineError);
    expect(refused).toMatchObject({ code: "INVALID_OPTIONS" });
    expect((refused as Error).message).toContain("is not its document's");
  });
});

describe.each([
  ["SQLite", () => join(dir, `reopen-${freshOrg()}.db`)],
  ["PostgreSQL", () => pgUrl()],
])("opening %s with another policy than the chain last recorded", (_name, storeFor) => {
  const edited = compilePolicy(
    parsePolicy(
      "version: 1\ndefault: deny\npolicies:\n  - { name: reads, action: read.file, effect: allow }\n",
    ),
  );

  it("records the change (a restart with an edited file), once, and nothing on an empty chain", async () => {
    const store = storeFor();
    const orgId = freshOrg();
    const changes = async (engine: Awaited<ReturnType<typeof openEngine>>) =>
      (await engine.audit({ actionType: "policy.change" })).items.map((r) => [r.agent, r.policy_hash]);

    const first = await openEngine({ policy, store, orgId });
    expect(await changes(first)).toEqual([]);
    await first.decide({ agent, actionType: "read.file" });
    await first.close();

    const same = await openEngine({ policy, store, orgId });
    expect(await changes(same)).toEqual([]);
    await same.close();

    const restarted = await openEngine({ policy: edited, store, orgId });
    expect(await changes(restarted)).toEqual([["engine.open", edited.hash]]);
    const [record] = (await restarted.audit({ actionType: "policy.change" })).items;
    expect(record!.reason).toBe(
      `policy ${policy.hash} replaced by ${edited.hash} when the engine opened (it was given another policy than the chain last recorded)`,
    );
    await restarted.close();

    // "none": the caller checks the policy itself; nothing is recorded.
    const reader = await openEngine({ policy, store, orgId, policyChangeAtOpen: "none" });
    expect(await changes(reader)).toEqual([["engine.open", edited.hash]]);
    expect((await reader.recordedPolicies()).newest).toMatchObject({ hash: edited.hash, openedWith: true });
    expect(await reader.verify()).toMatchObject({ chainValid: true, checked: 2 });
    await reader.close();

    const back = await openEngine({ policy, store, orgId });
    expect(await changes(back)).toEqual([
      ["engine.open", edited.hash],
      ["engine.open", policy.hash],
    ]);
    await back.close();
  });

  it("refuses an unknown policyChangeAtOpen", async () => {
    await expect(
      openEngine({ policy, store: storeFor(), policyChangeAtOpen: "maybe" as "none" }),
    ).rejects.toMatchObject({ code: "INVALID_OPTIONS" });
  });
});

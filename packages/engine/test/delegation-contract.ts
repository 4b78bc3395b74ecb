/**
 * Delegation, run against every store (memory, SQLite, PostgreSQL): registry, tokens, capability
 * and ttl rules, cascade revocation, expiry, attribution in the audit chain, approvals and events.
 */
import { randomUUID } from "node:crypto";
import { compilePolicy, parsePolicy } from "@aa/policy";
import { describe, expect, it } from "vitest";
import { type EngineEvent, openEngine } from "../src/index.js";

export const DELEGATION_POLICY = compilePolicy(
  parsePolicy(
    `
version: 1
default: deny
policies:
  - name: reads
    action: "read.**"
    effect: allow
  - name: search
    action: "search.*"
    effect: allow
  - name: shallow-writes
    action: "write.*"
    effect: allow
    when:
      - { field: agent.depth, op: lt, value: 2 }
    otherwise: deny
  - name: parent-named
    action: "notes.add"
    effect: allow
    when:
      - { field: agent.parent, op: eq, value: root }
  - name: merges
    action: pr.merge
    effect: require_approval
`,
    { source: "delegation-test" },
  ),
);

const root = { id: "root" };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function delegationContract(name: string, storeFor: () => string): void {
  describe(`delegation contract: ${name}`, () => {
    const open = (orgId = `org-${randomUUID()}`, store = storeFor()) =>
      openEngine({ policy: DELEGATION_POLICY, store, orgId });

    it("a child acts within its capabilities; each record carries the chain root → child", async () => {
      const engine = await open();
      const { delegation, token } = await engine.delegate({ agentId: "root" }, "researcher", {
        capabilities: ["read.**", "write.*", "notes.add"],
        ttlSeconds: 600,
      });
      expect(delegation).toMatchObject({
        id: expect.stringMatching(/^dlg_[A-Za-z0-9_-]{22}$/),
        name: "researcher",
        agentId: "root/researcher",
        parentAgentId: "root",
        parentDelegationId: null,
        capabilities: ["read.**", "write.*", "notes.add"],
        state: "active",
        chain: ["root", "root/researcher"],
        depth: 1,
      });
      expect(Date.parse(delegation.expiresAt) - Date.parse(delegation.issuedAt)).toBe(600_000);
      const ok = await engine.decide({ agent: root, actionType: "read.docs.a", delegationToken: token });
      expect(ok).toMatchObject({ status: "executed", policyName: "reads" });
      // The child itself may present its token too; policies see agent.depth and agent.parent.
      const child = { id: "root/researcher" };
      expect(
        await engine.decide({ agent: child, actionType: "write.x", delegationToken: token }),
      ).toMatchObject({
        status: "executed",
        policyName: "shallow-writes",
      });
      expect(
        await engine.decide({ agent: child, actionType: "notes.add", delegationToken: token }),
      ).toMatchObject({
        status: "executed",
        policyName: "parent-named",
      });
      const records = (await engine.audit()).items.filter((e) => e.kind === "action");
      expect(records.map((e) => [e.agent, e.delegation])).toEqual([
        ["root/researcher", ["root", "root/researcher"]],
        ["root/researcher", ["root", "root/researcher"]],
        ["root/researcher", ["root", "root/researcher"]],
      ]);
      const created = (await engine.audit()).items.find((e) => e.kind === "delegation.created")!;
      expect(created).toMatchObject({
        agent: "root/researcher",
        delegation: ["root", "root/researcher"],
        action_type: "delegation.create",
        metadata: { delegationId: delegation.id, capabilities: ["read.**", "write.*", "notes.add"] },
      });
      const receipt = await engine.receipt(ok.auditEventId);
      const { verifyReceipt } = await import("../src/index.js");
      expect(await verifyReceipt(receipt, engine.jwks())).toMatchObject({
        valid: true,
        claims: { agentId: "root/researcher", delegationChain: ["root", "root/researcher"] },
      });
      expect(await engine.verifyDelegation(token)).toMatchObject({ id: delegation.id, state: "active" });
      expect(await engine.verify()).toMatchObject({ chainValid: true });
      await engine.close();
    });

    it("outside its capabilities a child is denied NOT_DELEGATED, audited with the chain and the failed check", async () => {
      const engine = await open();
      const { token } = await engine.delegate({ agentId: "root" }, "reader", { capabilities: ["read.*"] });
      const denied = await engine.decide({ agent: root, actionType: "search.web", delegationToken: token });
      expect(denied).toMatchObject({ status: "denied", denialReason: "NOT_DELEGATED" });
      expect(denied.message).toContain("root/reader was not delegated search.web");
      expect(denied.conditionsEvaluated).toEqual([
        {
          policy: "delegation",
          field: "delegation[root/reader].capabilities",
          operator: "matches",
          expected: ["read.*"],
          actual: "search.web",
          result: false,
        },
      ]);
      // `read.*` stays within one segment, as policy globs do.
      expect(
        await engine.decide({ agent: root, actionType: "read.a.b", delegationToken: token }),
      ).toMatchObject({ status: "denied", denialReason: "NOT_DELEGATED" });
      const [first] = (await engine.audit()).items.filter((e) => e.kind === "action");
      expect(first).toMatchObject({
        agent: "root/reader",
        delegation: ["root", "root/reader"],
        status: "denied",
        denial_reason: "NOT_DELEGATED",
      });
      // A dry run (canI) is denied the same way and writes nothing.
      const before = (await engine.audit()).items.length;
      expect(
        await engine.decide({ agent: root, actionType: "search.web", delegationToken: token, dryRun: true }),
      ).toMatchObject({ status: "denied", denialReason: "NOT_DELEGATED", auditEventId: "" });
      expect((await engine.audit()).items).toHaveLength(before);
      await engine.close();
    });

    it("capabilities only narrow: a child cannot grant what it does not hold", async () => {
      const engine = await open();
      const parent = await engine.delegate({ agentId: "root" }, "lead", {
        capabilities: ["read.*", "search.*"],
      });
      await expect(
        engine.delegate({ agentId: "root/lead", delegationToken: parent.token }, "helper", {
          capabilities: ["read.*", "write.*"],
        }),
      ).rejects.toMatchObject({
        code: "CAPABILITY_ESCALATION",
        status: 403,
        details: { notHeld: ["write.*"] },
      });
      await expect(
        engine.delegate({ agentId: "root/lead", delegationToken: parent.token }, "helper", {
          capabilities: ["read.**"],
        }),
      ).rejects.toMatchObject({ code: "CAPABILITY_ESCALATION" });
      const narrowed = await engine.delegate(
        { agentId: "root/lead", delegationToken: parent.token },
        "helper",
        {
          capabilities: ["read.docs", "search.*"],
        },
      );
      expect(narrowed.delegation).toMatchObject({
        agentId: "root/lead/helper",
        parentDelegationId: parent.delegation.id,
        chain: ["root", "root/lead", "root/lead/helper"],
        depth: 2,
      });
      // The grandchild's calls: depth 2 makes the shallow-writes policy inapplicable, but capabilities come first.
      expect(
        await engine.decide({
          agent: { id: "root/lead/helper" },
          actionType: "read.docs",
          delegationToken: narrowed.token,
        }),
      ).toMatchObject({ status: "executed" });
      expect(
        await engine.decide({ agent: root, actionType: "read.other", delegationToken: narrowed.token }),
      ).toMatchObject({ status: "denied", denialReason: "NOT_DELEGATED" });
      // A delegated agent must present its token to delegate: otherwise it would pose as a root.
      await expect(
        engine.delegate({ agentId: "root/lead" }, "sneaky", { capabilities: ["**"] }),
      ).rejects.toMatchObject({ code: "DELEGATION_INVALID", status: 401 });
      // A token is bound to its agent.
      await expect(
        engine.delegate({ agentId: "root", delegationToken: parent.token }, "x", {
          capabilities: ["read.*"],
        }),
      ).rejects.toMatchObject({ code: "DELEGATION_INVALID" });
      await expect(
        engine.delegate({ agentId: "root" }, "bad name", { capabilities: ["read.*"] }),
      ).rejects.toMatchObject({ code: "INVALID_REQUEST", details: { field: "name" } });
      await expect(engine.delegate({ agentId: "root" }, "empty", { capabilities: [] })).rejects.toMatchObject(
        {
          code: "INVALID_REQUEST",
          details: { field: "capabilities" },
        },
      );
      await engine.close();
    });

    it("ttl: at most 86 400 s and never past the parent's expiry", async () => {
      const engine = await open();
      await expect(
        engine.delegate({ agentId: "root" }, "long", { capabilities: ["read.*"], ttlSeconds: 86_401 }),
      ).rejects.toMatchObject({ code: "DELEGATION_TTL_EXCEEDED", status: 400 });
      await expect(
        engine.delegate({ agentId: "root" }, "zero", { capabilities: ["read.*"], ttlSeconds: 0 }),
      ).rejects.toMatchObject({ code: "DELEGATION_TTL_EXCEEDED" });
      const day = await engine.delegate({ agentId: "root" }, "day", {
        capabilities: ["read.*"],
        ttlSeconds: 86_400,
      });
      expect(day.delegation.state).toBe("active");
      const parent = await engine.delegate({ agentId: "root" }, "short", {
        capabilities: ["read.*"],
        ttlSeconds: 60,
      });
      await expect(
        engine.delegate({ agentId: "root/short", delegationToken: parent.token }, "child", {
          capabilities: ["read.*"],
          ttlSeconds: 61,
        }),
      ).rejects.toMatchObject({
        code: "DELEGATION_TTL_EXCEEDED",
        details: { parentExpiresAt: parent.delegation.expiresAt },
      });
      // Without a ttl the child gets an hour, cut to the parent's remaining time.
      const child = await engine.delegate({ agentId: "root/short", delegationToken: parent.token }, "child", {
        capabilities: ["read.*"],
      });
      expect(child.delegation.expiresAt).toBe(parent.delegation.expiresAt);
      await engine.close();
    });

    it("revoke cascades to every descendant; their calls are denied DELEGATION_REVOKED; each revocation is an event", async () => {
      const engine = await open();
      const events: EngineEvent[] = [];
      const subscription = await engine.subscribe((event) => void events.push(event), {
        events: ["delegation.created", "delegation.revoked"],
      });
      const a = await engine.delegate({ agentId: "root" }, "a", { capabilities: ["read.*"] });
      const b = await engine.delegate({ agentId: "root/a", delegationToken: a.token }, "b", {
        capabilities: ["read.*"],
      });
      const c = await engine.delegate({ agentId: "root/a/b", delegationToken: b.token }, "c", {
        capabilities: ["read.x"],
      });
      const sibling = await engine.delegate({ agentId: "root" }, "sibling", { capabilities: ["read.*"] });
      for (const grant of [a, b, c, sibling]) {
        expect(
          await engine.decide({ agent: root, actionType: "read.x", delegationToken: grant.token }),
        ).toMatchObject({
          status: "executed",
        });
      }
      // Only the delegation's own agent, its ancestors or an operator may revoke.
      await expect(
        engine.revokeDelegation(b.delegation.id, "root/sibling", { agentId: "root/sibling" }),
      ).rejects.toMatchObject({
        code: "FORBIDDEN",
      });
      const revoked = await engine.revokeDelegation(b.delegation.id, "root/a", { agentId: "root/a" });
      expect(revoked).toMatchObject({ id: b.delegation.id, state: "revoked", revokedBy: "root/a" });
      for (const grant of [b, c]) {
        const denied = await engine.decide({
          agent: root,
          actionType: "read.x",
          delegationToken: grant.token,
        });
        expect(denied).toMatchObject({ status: "denied", denialReason: "DELEGATION_REVOKED" });
        expect(denied.conditionsEvaluated[0]).toMatchObject({
          field: "delegation[root/a/b].revokedAt",
          result: false,
        });
      }
      for (const grant of [a, sibling]) {
        expect(
          await engine.decide({ agent: root, actionType: "read.x", delegationToken: grant.token }),
        ).toMatchObject({
          status: "executed",
        });
      }
      await expect(engine.verifyDelegation(c.token)).rejects.toMatchObject({
        code: "DELEGATION_REVOKED",
        status: 403,
      });
      await expect(
        engine.delegate({ agentId: "root/a/b", delegationToken: b.token }, "d", { capabilities: ["read.x"] }),
      ).rejects.toMatchObject({ code: "DELEGATION_REVOKED" });
      // Revoking again changes nothing.
      expect(await engine.revokeDelegation(c.delegation.id, "ops")).toMatchObject({
        state: "revoked",
        revokedBy: "root/a",
      });
      await expect(engine.revokeDelegation("dlg_nope", "ops")).rejects.toMatchObject({
        code: "DELEGATION_NOT_FOUND",
        status: 404,
      });
      const states = Object.fromEntries((await engine.listDelegations()).map((d) => [d.agentId, d.state]));
      expect(states).toEqual({
        "root/a": "active",
        "root/a/b": "revoked",
        "root/a/b/c": "revoked",
        "root/sibling": "active",
      });
      while (events.filter((e) => e.type === "delegation.revoked").length < 2) await sleep(5);
      expect(events.map((e) => [e.type, e.agentId])).toEqual([
        ["delegation.created", "root/a"],
        ["delegation.created", "root/a/b"],
        ["delegation.created", "root/a/b/c"],
        ["delegation.created", "root/sibling"],
        ["delegation.revoked", "root/a/b"],
        ["delegation.revoked", "root/a/b/c"],
      ]);
      expect(events.at(-1)!.data).toMatchObject({
        delegationId: c.delegation.id,
        chain: ["root", "root/a", "root/a/b", "root/a/b/c"],
      });
      subscription.unsubscribe();
      expect(await engine.verify()).toMatchObject({ chainValid: true });
      await engine.close();
    });

    it("expiry is enforced (DELEGATION_EXPIRED) and audited once as delegation.expired", async () => {
      const engine = await open();
      const events: EngineEvent[] = [];
      await engine.subscribe((event) => void events.push(event), { events: ["delegation.expired"] });
      const brief = await engine.delegate({ agentId: "root" }, "brief", {
        capabilities: ["read.*"],
        ttlSeconds: 1,
      });
      expect(
        await engine.decide({ agent: root, actionType: "read.x", delegationToken: brief.token }),
      ).toMatchObject({
        status: "executed",
      });
      while (Date.now() < Date.parse(brief.delegation.expiresAt)) await sleep(20);
      const denied = await engine.decide({ agent: root, actionType: "read.x", delegationToken: brief.token });
      expect(denied).toMatchObject({ status: "denied", denialReason: "DELEGATION_EXPIRED" });
      expect(denied.conditionsEvaluated[0]).toMatchObject({
        field: "delegation[root/brief].expiresAt",
        operator: "gt",
        actual: brief.delegation.expiresAt,
        result: false,
      });
      await expect(engine.verifyDelegation(brief.token)).rejects.toMatchObject({
        code: "DELEGATION_EXPIRED",
        status: 401,
      });
      await engine.expireDelegations();
      await engine.expireDelegations();
      while (events.length < 1) await sleep(5);
      expect(events.map((e) => [e.type, e.agentId, e.data.delegationId])).toEqual([
        ["delegation.expired", "root/brief", brief.delegation.id],
      ]);
      expect((await engine.audit()).items.filter((e) => e.kind === "delegation.expired")).toHaveLength(1);
      expect(await engine.listDelegations({ activeOnly: true })).toEqual([]);
      // The name is free again once the delegation expired.
      const again = await engine.delegate({ agentId: "root" }, "brief", { capabilities: ["read.*"] });
      expect(again.delegation.state).toBe("active");
      await engine.close();
    });

    it("one active delegation per child id; listDelegations by role", async () => {
      const engine = await open();
      const a = await engine.delegate({ agentId: "root" }, "a", { capabilities: ["read.*"] });
      await expect(
        engine.delegate({ agentId: "root" }, "a", { capabilities: ["read.*"] }),
      ).rejects.toMatchObject({
        code: "DELEGATION_EXISTS",
        status: 409,
      });
      const b = await engine.delegate({ agentId: "root/a", delegationToken: a.token }, "b", {
        capabilities: ["read.*"],
      });
      await engine.delegate({ agentId: "other" }, "z", { capabilities: ["search.*"] });
      const ids = (list: { agentId: string }[]) => list.map((d) => d.agentId);
      expect(ids(await engine.listDelegations({ agentId: "root", role: "parent" }))).toEqual(["root/a"]);
      expect(ids(await engine.listDelegations({ agentId: "root/a", role: "parent" }))).toEqual(["root/a/b"]);
      expect(ids(await engine.listDelegations({ agentId: "root/a/b", role: "child" }))).toEqual(["root/a/b"]);
      expect(ids(await engine.listDelegations({ agentId: "root", role: "ancestor" }))).toEqual([
        "root/a",
        "root/a/b",
      ]);
      expect(ids(await engine.listDelegations())).toEqual(["root/a", "root/a/b", "other/z"]);
      await engine.revokeDelegation(a.delegation.id, "ops");
      expect(ids(await engine.listDelegations({ activeOnly: true }))).toEqual(["other/z"]);
      expect((await engine.listDelegations({ agentId: "root/a", role: "parent" }))[0]).toMatchObject({
        id: b.delegation.id,
        state: "revoked",
      });
      const reused = await engine.delegate({ agentId: "root" }, "a", { capabilities: ["read.*"] });
      expect(reused.delegation.id).not.toBe(a.delegation.id);
      await expect(engine.listDelegations({ role: "parent" })).rejects.toMatchObject({
        code: "INVALID_REQUEST",
      });
      await engine.close();
    });

    it("bad tokens deny DELEGATION_INVALID: tampered, another org's, unsigned, HS256 with the public key, stolen", async () => {
      const store = storeFor();
      const engine = await open(undefined, store);
      const other = await open(undefined, store);
      const { token } = await engine.delegate({ agentId: "root" }, "a", { capabilities: ["read.*"] });
      const foreign = await other.delegate({ agentId: "root" }, "a", { capabilities: ["read.*"] });
      const [header, payload, signature] = token.split(".") as [string, string, string];
      const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as Record<
        string,
        unknown
      >;
      const widened = Buffer.from(JSON.stringify({ ...claims, aa_cap: ["**"], sub: "root/a" })).toString(
        "base64url",
      );
      const { SignJWT, UnsecuredJWT } = await import("jose");
      const jwk = engine.jwks().keys[0]!;
      const hs256 = await new SignJWT({ ...claims })
        .setProtectedHeader({ alg: "HS256", typ: "aa-delegation+jwt", kid: jwk.kid as string })
        .sign(new TextEncoder().encode(JSON.stringify(jwk)));
      const unsigned = new UnsecuredJWT({ ...claims }).encode();
      const cases: [string, string][] = [
        ["tampered payload", `${header}.${widened}.${signature}`],
        ["tampered signature", `${header}.${payload}.${signature.slice(0, -4)}AAAA`],
        ["another org's token", foreign.token],
        ["alg none", unsigned],
        ["HS256 keyed with the public key", hs256],
        ["not a JWT", "not-a-token"],
      ];
      for (const [what, bad] of cases) {
        const denied = await engine.decide({ agent: root, actionType: "read.x", delegationToken: bad });
        expect(denied, what).toMatchObject({ status: "denied", denialReason: "DELEGATION_INVALID" });
        expect(denied.conditionsEvaluated[0], what).toMatchObject({
          field: "delegation.token",
          result: false,
        });
        await expect(engine.verifyDelegation(bad), what).rejects.toMatchObject({
          code: "DELEGATION_INVALID",
          status: 401,
        });
      }
      // A genuine token presented by an agent outside its chain.
      const stolen = await engine.decide({
        agent: { id: "mallory" },
        actionType: "read.x",
        delegationToken: token,
      });
      expect(stolen).toMatchObject({ status: "denied", denialReason: "DELEGATION_INVALID" });
      const records = (await engine.audit()).items.filter((e) => e.kind === "action");
      expect(records.at(-1)).toMatchObject({ agent: "mallory", delegation: ["mallory"] });
      expect(records[0]).toMatchObject({
        agent: "root",
        delegation: ["root"],
        denial_reason: "DELEGATION_INVALID",
      });
      await other.close();
      await engine.close();
    });

    it("approvals: neither the requesting child nor any ancestor may decide; a revoked child's approved call is not released", async () => {
      const engine = await open();
      const a = await engine.delegate({ agentId: "root" }, "a", { capabilities: ["pr.*"] });
      const b = await engine.delegate({ agentId: "root/a", delegationToken: a.token }, "b", {
        capabilities: ["pr.merge"],
      });
      const held = await engine.decide({ agent: root, actionType: "pr.merge", delegationToken: b.token });
      expect(held).toMatchObject({ status: "requested", approvalId: expect.stringMatching(/^apr_/) });
      for (const reviewer of ["root/a/b", "root/a", "root"]) {
        await expect(engine.approve(held.approvalId!, reviewer)).rejects.toMatchObject({
          code: "SELF_APPROVAL_FORBIDDEN",
          status: 403,
        });
        await expect(engine.deny(held.approvalId!, reviewer, "no")).rejects.toMatchObject({
          code: "SELF_APPROVAL_FORBIDDEN",
        });
      }
      await engine.approve(held.approvalId!, "ops-alice");
      const second = await engine.decide({ agent: root, actionType: "pr.merge", delegationToken: b.token });
      await engine.approve(second.approvalId!, "ops-alice");
      expect(await engine.releaseApproval(held.approvalId!, "root/a/b")).toMatchObject({
        status: "executed",
      });
      await engine.revokeDelegation(a.delegation.id, "ops-bob");
      await expect(engine.releaseApproval(second.approvalId!, "root/a/b")).rejects.toMatchObject({
        code: "DELEGATION_REVOKED",
      });
      await engine.close();
    });

    if (name === "postgres") {
      it("PostgreSQL replicas: a revocation's hint makes another replica re-read the registry at once", async () => {
        const store = storeFor();
        const orgId = `org-${randomUUID()}`;
        // A refresh interval far longer than the test: only the LISTEN/NOTIFY hint can bring the revocation.
        const agentSide = await openEngine({
          policy: DELEGATION_POLICY,
          store,
          orgId,
          controlsRefreshMs: 600_000,
        });
        const operatorSide = await open(orgId, store);
        const a = await agentSide.delegate({ agentId: "root" }, "a", { capabilities: ["read.*"] });
        expect(
          await agentSide.decide({ agent: root, actionType: "read.x", delegationToken: a.token }),
        ).toMatchObject({
          status: "executed",
        });
        await operatorSide.revokeDelegation(a.delegation.id, "ops-carol");
        let last = await agentSide.decide({ agent: root, actionType: "read.x", delegationToken: a.token });
        // Bounded by the test timeout.
        while (last.status === "executed") {
          await sleep(10);
          last = await agentSide.decide({ agent: root, actionType: "read.x", delegationToken: a.token });
        }
        expect(last).toMatchObject({ status: "denied", denialReason: "DELEGATION_REVOKED" });
        await operatorSide.close();
        await agentSide.close();
      });
    }

    if (name !== "memory") {
      it("a revocation by another engine on the same store denies the child within 1 s", async () => {
        const store = storeFor();
        const orgId = `org-${randomUUID()}`;
        const agentSide = await open(orgId, store);
        const operatorSide = await open(orgId, store);
        const a = await agentSide.delegate({ agentId: "root" }, "a", { capabilities: ["read.*"] });
        const b = await agentSide.delegate({ agentId: "root/a", delegationToken: a.token }, "b", {
          capabilities: ["read.*"],
        });
        // A third engine that knew no delegation until the token reached it (e.g. another gateway replica).
        const observer = await open(orgId, store);
        for (const engine of [agentSide, observer]) {
          expect(
            await engine.decide({ agent: root, actionType: "read.x", delegationToken: b.token }),
          ).toMatchObject({
            status: "executed",
          });
        }
        // The operator's engine sees a delegation created elsewhere, and revokes its parent.
        await operatorSide.revokeDelegation(a.delegation.id, "ops-carol");
        const revokedAt = Date.now();
        for (const engine of [agentSide, observer]) {
          let last = await engine.decide({ agent: root, actionType: "read.x", delegationToken: b.token });
          while (last.status === "executed" && Date.now() - revokedAt < 1000) {
            await sleep(20);
            last = await engine.decide({ agent: root, actionType: "read.x", delegationToken: b.token });
          }
          expect(last).toMatchObject({ status: "denied", denialReason: "DELEGATION_REVOKED" });
        }
        expect(await operatorSide.verify()).toMatchObject({ chainValid: true });
        await observer.close();
        await operatorSide.close();
        await agentSide.close();
      });
    }
  });
}

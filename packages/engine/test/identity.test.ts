/**
 * Acting on behalf of people in the engine: the principal reaches the policy (`user.*`,
 * `required_scopes`), every audit record names the user, the tier and the policy hash, and rate
 * limits count per user (across sub-agents), per agent and per tenant. On every store.
 */
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { compilePolicy, parsePolicy } from "@aa/policy";
import { describe, expect, it } from "vitest";
import { EngineError, type EngineEvent, openEngine, verifyExport } from "../src/index.js";
import { tempDir } from "./helpers.js";
import { pgSchemaUrl } from "./pg.js";

const POLICY = `
version: 1
policies:
  - name: book-flights
    action: flights.book
    effect: allow
    required_scopes: [flights:book]
  - name: refunds
    action: payments.refund
    effect: require_approval
    required_scopes: [payments:refund]
  - name: acme-reports
    action: reports.read
    effect: allow
    when:
      - { field: user.tenant, op: eq, value: acme }
  - name: search
    action: flights.search
    effect: allow
`;
const policy = compilePolicy(parsePolicy(POLICY, { source: "identity.yaml" }));
const alice = { userId: "alice", email: "alice@acme.test", tenant: "acme", scopes: ["flights:*"] };
const bob = { userId: "bob", tenant: "acme", scopes: ["payments:refund"] };
const planner = { id: "planner" };

const dir = tempDir("aa-engine-identity-");
const pgUrl = pgSchemaUrl();
const stores = {
  memory: () => ":memory:",
  sqlite: () => join(dir, `identity-${Math.random()}.db`),
  postgres: () => pgUrl(),
};
let orgCounter = 0;
const nextOrg = () => `org-${process.pid}-${++orgCounter}`;

describe.each(Object.entries(stores))("principals on the %s store", (_kind, store) => {
  it("decides with the user's scopes and records user, tier and policy hash on every record", async () => {
    const engine = await openEngine({ policy, store: store(), orgId: nextOrg() });
    const booked = await engine.decide({ agent: planner, actionType: "flights.book", principal: alice });
    expect(booked).toMatchObject({ status: "executed", policyName: "book-flights" });
    const lacking = await engine.decide({ agent: planner, actionType: "flights.book", principal: bob });
    expect(lacking).toMatchObject({ status: "denied", denialReason: "CONDITIONS_DENIED" });
    expect(lacking.conditionsEvaluated).toMatchObject([
      {
        field: "user.scopes",
        operator: "has_scope",
        expected: "flights:book",
        actual: ["payments:refund"],
        result: false,
      },
    ]);
    const anonymous = await engine.decide({ agent: planner, actionType: "flights.book" });
    expect(anonymous).toMatchObject({ status: "denied", denialReason: "UNAUTHENTICATED" });
    expect(anonymous.message).toContain("on behalf of a user");
    // A sub-agent (delegation chain of two) acting for alice.
    const sub = await engine.decide({
      agent: { id: "booker" },
      delegationChain: ["planner", "booker"],
      actionType: "reports.read",
      principal: alice,
    });
    expect(sub.status).toBe("executed");
    const held = await engine.decide({ agent: planner, actionType: "payments.refund", principal: bob });
    expect(held.status).toBe("requested");
    await engine.approve(held.approvalId!, "reviewer-1");
    const released = await engine.releaseApproval(held.approvalId!, planner.id);
    expect(released.status).toBe("executed");

    const records = (await engine.audit()).items;
    expect(records.map((r) => [r.kind, r.status, r.user?.id ?? null, r.tier])).toEqual([
      ["action", "executed", "alice", "agent"],
      ["action", "denied", "bob", "agent"],
      ["action", "denied", null, "agent"],
      ["action", "executed", "alice", "sub-agent"],
      ["action", "requested", "bob", "agent"],
      ["approval.approved", null, "bob", "agent"],
      ["approval.released", "executed", "bob", "agent"],
    ]);
    expect(records[0]!.user).toEqual({ id: "alice", email: "alice@acme.test", tenant: "acme" });
    expect(records[1]!.user).toEqual({ id: "bob", email: null, tenant: "acme" });
    for (const record of records) {
      expect(record.policy_hash).toBe(policy.hash);
      if (record.status === "denied") expect(record.reason ?? record.denial_reason).toBeTruthy();
    }
    expect(records[3]!.delegation).toEqual(["planner", "booker"]);
    expect(await engine.verify()).toMatchObject({ chainValid: true, checked: 7 });
    // The export (with the new keys) verifies offline.
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on("data", (chunk: Buffer) => chunks.push(chunk));
    await engine.exportAudit(out);
    const lines = Buffer.concat(chunks).toString("utf8").split("\n").filter(Boolean);
    expect((await verifyExport(lines)).chainValid).toBe(true);
    await engine.close();
  });

  it("rejects a malformed principal with INVALID_REQUEST naming the field", async () => {
    const engine = await openEngine({ policy, store: store(), orgId: nextOrg() });
    const bad: unknown[] = [
      null,
      { userId: "" },
      { userId: 7 },
      { userId: "u", email: "" },
      { userId: "u", tenant: 3 },
      { userId: "u", scopes: "flights:*" },
      { userId: "u", scopes: [""] },
      { userId: "u", role: "admin" },
    ];
    for (const principal of bad) {
      const error = await engine
        .decide({ agent: planner, actionType: "flights.search", principal: principal as never })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(EngineError);
      expect(error).toMatchObject({
        code: "INVALID_REQUEST",
        message: expect.stringContaining("request.principal"),
      });
    }
    expect((await engine.audit()).items).toHaveLength(0);
    await engine.close();
  });

  it("an idempotency key reused for another user is an error, not the first user's decision", async () => {
    const engine = await openEngine({ policy, store: store(), orgId: nextOrg() });
    const first = await engine.decide({
      agent: planner,
      actionType: "flights.search",
      principal: alice,
      eventId: "k1",
    });
    expect(
      await engine.decide({ agent: planner, actionType: "flights.search", principal: alice, eventId: "k1" }),
    ).toEqual(first);
    await expect(
      engine.decide({ agent: planner, actionType: "flights.search", principal: bob, eventId: "k1" }),
    ).rejects.toMatchObject({ code: "IDEMPOTENCY_KEY_REUSED" });
    await engine.close();
  });

  it("a user's rate limit counts every agent and sub-agent acting for them; RATE_LIMITED names the limit", async () => {
    const engine = await openEngine({
      policy,
      store: store(),
      orgId: nextOrg(),
      rateLimits: { user: { limit: 3, windowMs: 3_600_000 } },
    });
    const search = (agentId: string, principal: typeof alice | typeof bob, chain?: string[]) =>
      engine.decide({
        agent: { id: agentId },
        actionType: "flights.search",
        principal,
        ...(chain ? { delegationChain: chain } : {}),
      });
    expect((await search("planner", alice)).status).toBe("executed");
    expect((await search("worker-1", alice, ["planner", "worker-1"])).status).toBe("executed");
    // Denied calls and dry runs do not count.
    expect((await engine.decide({ agent: planner, actionType: "flights.book", principal: bob })).status).toBe(
      "denied",
    );
    expect(
      (await engine.decide({ agent: planner, actionType: "flights.search", principal: alice, dryRun: true }))
        .status,
    ).toBe("executed");
    expect((await search("worker-2", alice, ["planner", "worker-1", "worker-2"])).status).toBe("executed");
    const over = await search("worker-3", alice, ["planner", "worker-3"]);
    expect(over).toMatchObject({ status: "denied", denialReason: "RATE_LIMITED", conditionsEvaluated: [] });
    expect(over.message).toContain(
      "User alice (tenant acme) reached the user rate limit of 3 calls per 3600000 ms",
    );
    // Dry runs report it; another user, and calls made for no one, have their own (or no) counter.
    expect(
      (await engine.decide({ agent: planner, actionType: "flights.search", principal: alice, dryRun: true }))
        .denialReason,
    ).toBe("RATE_LIMITED");
    expect((await search("planner", bob)).status).toBe("executed");
    expect((await engine.decide({ agent: planner, actionType: "flights.search" })).status).toBe("executed");
    // The same user id in another tenant is another person: a separate counter.
    expect((await search("planner", { ...alice, tenant: "globex" })).status).toBe("executed");
    // Rate-limit denials are not circuit-breaker failures, and are audited.
    expect(engine.agentState("worker-3").cbFailures).toBe(0);
    const reasons = (await engine.audit()).items.map((r) => r.denial_reason).filter(Boolean);
    expect(reasons).toEqual(["CONDITIONS_DENIED", "RATE_LIMITED"]);
    await engine.close();
  });

  it("per-agent and per-tenant limits, and concurrent calls never overshoot", async () => {
    const engine = await openEngine({
      policy,
      store: store(),
      orgId: nextOrg(),
      rateLimits: { agent: { limit: 2, windowMs: 3_600_000 }, tenant: { limit: 5, windowMs: 3_600_000 } },
    });
    const call = (agentId: string, principal?: typeof alice) =>
      engine.decide({
        agent: { id: agentId },
        actionType: "flights.search",
        ...(principal ? { principal } : {}),
      });
    const burst = await Promise.all(Array.from({ length: 6 }, () => call("a1", alice)));
    expect(burst.filter((r) => r.status === "executed")).toHaveLength(2);
    expect(burst.filter((r) => r.denialReason === "RATE_LIMITED")).toHaveLength(4);
    expect(burst.find((r) => r.status === "denied")!.message).toContain(
      "Agent a1 (tenant acme) reached the agent rate limit of 2",
    );
    // Same agent id, another tenant: its own counter.
    expect((await call("a1", { ...alice, tenant: "globex" })).status).toBe("executed");
    // The acme tenant has used 2; three more agents get 3 in total.
    const wide = await Promise.all(["a2", "a3", "a4"].flatMap((id) => [call(id, alice), call(id, alice)]));
    expect(wide.filter((r) => r.status === "executed")).toHaveLength(3);
    const tenantDenial = wide.find((r) => r.message?.includes("tenant rate limit"));
    expect(tenantDenial?.message).toContain("Tenant acme reached the tenant rate limit of 5 calls");
    await engine.close();
  });
});

describe("rate limits from the policy file", () => {
  it("reads rate_limits:, and setPolicy replaces them keeping what was counted", async () => {
    const withLimits = (limit: number) =>
      parsePolicy(`${POLICY}rate_limits:\n  user: { limit: ${limit}, window: 1h }\n`, { source: "p.yaml" });
    const engine = await openEngine({ policy: withLimits(1), store: ":memory:" });
    const call = () => engine.decide({ agent: planner, actionType: "flights.search", principal: alice });
    expect((await call()).status).toBe("executed");
    expect((await call()).denialReason).toBe("RATE_LIMITED");
    await engine.setPolicy(withLimits(2));
    expect((await call()).status).toBe("executed");
    expect((await call()).denialReason).toBe("RATE_LIMITED");
    await engine.setPolicy(policy);
    expect((await call()).status).toBe("executed");
    await engine.close();
  });

  it("bad engine options are INVALID_OPTIONS naming the option", async () => {
    await expect(
      openEngine({ policy, store: ":memory:", rateLimits: { user: { limit: 0, windowMs: 1000 } } }),
    ).rejects.toMatchObject({ code: "INVALID_OPTIONS", details: { option: "rateLimits.user.limit" } });
    await expect(
      openEngine({ policy, store: ":memory:", rateLimits: { tenant: { limit: 1, windowMs: -1 } } }),
    ).rejects.toMatchObject({ code: "INVALID_OPTIONS", details: { option: "rateLimits.tenant.windowMs" } });
  });

  it("events carry the user id, and a rate-limit denial triggers enforcement.triggered", async () => {
    const engine = await openEngine({
      policy,
      store: ":memory:",
      rateLimits: { user: { limit: 1, windowMs: 60_000 } },
    });
    const events: EngineEvent[] = [];
    const subscription = await engine.subscribe((event) => {
      events.push(event);
    });
    await engine.decide({ agent: planner, actionType: "flights.search", principal: alice });
    await engine.decide({ agent: planner, actionType: "flights.search", principal: alice });
    await expect.poll(() => events.length).toBe(3);
    expect(events.map((e) => [e.type, e.data.userId, e.data.trigger ?? null])).toEqual([
      ["action.executed", "alice", null],
      ["action.denied", "alice", null],
      ["enforcement.triggered", "alice", "RATE_LIMITED"],
    ]);
    subscription.unsubscribe();
    await engine.close();
  });
});

describe.each(Object.entries({ sqlite: stores.sqlite, postgres: stores.postgres }))(
  "two tenants (orgs) on one %s store",
  (_kind, store) => {
    it("keep principals, rate limits and audit apart, even with the same agent and user ids", async () => {
      const location = store();
      const [acme, globex] = await Promise.all(
        [nextOrg(), nextOrg()].map((orgId) =>
          openEngine({
            policy,
            store: location,
            orgId,
            rateLimits: { user: { limit: 1, windowMs: 3_600_000 } },
          }),
        ),
      );
      const call = (engine: typeof acme) =>
        engine!.decide({ agent: planner, actionType: "flights.book", principal: alice });
      expect((await call(acme)).status).toBe("executed");
      expect((await call(acme)).denialReason).toBe("RATE_LIMITED");
      // The other org's counter is untouched by acme's calls.
      expect((await call(globex)).status).toBe("executed");
      const acmeRecords = (await acme!.audit()).items;
      const globexRecords = (await globex!.audit()).items;
      expect(acmeRecords.map((r) => [r.org, r.user?.id, r.denial_reason])).toEqual([
        [acme!.orgId, "alice", null],
        [acme!.orgId, "alice", "RATE_LIMITED"],
      ]);
      expect(globexRecords.map((r) => [r.org, r.user?.id, r.denial_reason])).toEqual([
        [globex!.orgId, "alice", null],
      ]);
      expect((await acme!.verify()).chainValid).toBe(true);
      expect((await globex!.verify()).chainValid).toBe(true);
      await Promise.all([acme!.close(), globex!.close()]);
    });
  },
);

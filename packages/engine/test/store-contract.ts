/**
 * One behavioural contract, run against every store (memory, SQLite, PostgreSQL): the engine must
 * behave identically whichever store it writes to.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { openEngine, verifyExport, verifyReceipt } from "../src/index.js";
import { agent, policy } from "./helpers.js";

export function storeContract(name: string, storeFor: () => string): void {
  describe(`store contract: ${name}`, () => {
    it("chains decisions, verifies, and survives reopen", async () => {
      const store = storeFor();
      const orgId = `org-${randomUUID()}`;
      const engine = await openEngine({ policy, store, orgId });
      const a = await engine.decide({ agent, actionType: "pr.open", metadata: { pr_size: 3 } });
      const b = await engine.decide({ agent, actionType: "pr.open", metadata: { pr_size: 300 } });
      expect([a.status, b.status]).toEqual(["executed", "denied"]);
      expect(await engine.verify()).toEqual({ chainValid: true, checked: 2, firstBrokenAtRowId: null });
      const page = await engine.audit();
      expect(page.items.map((e) => [e.seq, e.id, e.org])).toEqual([
        [1, a.auditEventId, orgId],
        [2, b.auditEventId, orgId],
      ]);
      await engine.close();
      if (store !== ":memory:") {
        const again = await openEngine({ policy, store, orgId });
        await again.decide({ agent, actionType: "read.file" });
        expect(await again.verify()).toMatchObject({ chainValid: true, checked: 3 });
        await again.close();
      }
    });

    it("audit({ traceId }) returns only that trace's records, pages through them, and ignores the id inside arguments", async () => {
      const store = storeFor();
      const orgId = `org-${randomUUID()}`;
      const engine = await openEngine({ policy, store, orgId });
      const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
      const other = "00f067aa0ba902b74bf92f3577b34da6";
      const odd = 'trace "with" quotes \\ and ünïcode';
      const mine: string[] = [];
      for (let i = 0; i < 5; i++) {
        mine.push((await engine.decide({ agent, actionType: "read.x", traceId })).auditEventId);
        await engine.decide({ agent, actionType: "read.x", traceId: other });
        // The id inside arguments and metadata (even under a trace_id key) does not match.
        await engine.decide({
          agent,
          actionType: "read.x",
          args: { trace_id: traceId },
          metadata: { note: traceId },
        });
      }
      mine.push(
        (await engine.decide({ agent, actionType: "pr.open", traceId, metadata: { pr_size: 1 } }))
          .auditEventId,
      );
      const oddId = (await engine.decide({ agent, actionType: "read.x", traceId: odd })).auditEventId;

      const all = await engine.audit({ traceId });
      expect(all.items.map((e) => e.id)).toEqual(mine);
      expect(all.items.every((e) => e.trace_id === traceId)).toBe(true);
      expect(all.nextCursor).toBeUndefined();
      // Paging: the cursor continues the filtered scan.
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await engine.audit({ traceId, limit: 2, ...(cursor ? { cursor } : {}) });
        seen.push(...page.items.map((e) => e.id));
        cursor = page.nextCursor;
      } while (cursor !== undefined);
      expect(seen).toEqual(mine);
      // With an action type too.
      expect((await engine.audit({ traceId, actionType: "pr.open" })).items.map((e) => e.id)).toEqual([
        mine[5],
      ]);
      // Any string the engine accepted as a trace id is found exactly.
      expect((await engine.audit({ traceId: odd })).items.map((e) => e.id)).toEqual([oddId]);
      expect((await engine.audit({ traceId: "ffffffffffffffffffffffffffffffff" })).items).toEqual([]);
      await expect(engine.audit({ traceId: "" })).rejects.toMatchObject({ code: "INVALID_REQUEST" });
      await expect(engine.audit({ traceId: "x".repeat(257) })).rejects.toMatchObject({
        code: "INVALID_REQUEST",
      });
      await engine.close();
    });

    it('audit({ order: "desc" }) pages newest first, with the filters, and refuses a cursor of the other order', async () => {
      const store = storeFor();
      const orgId = `org-${randomUUID()}`;
      const engine = await openEngine({ policy, store, orgId });
      expect(await engine.audit({ order: "desc" })).toEqual({ items: [] });
      const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
      const ids: string[] = [];
      const traced: string[] = [];
      for (let i = 0; i < 7; i++) {
        const inTrace = i % 3 === 0;
        const { auditEventId } = await engine.decide({
          agent,
          actionType: i % 2 === 0 ? "read.x" : "pr.open",
          ...(i % 2 === 0 ? {} : { metadata: { pr_size: 1 } }),
          ...(inTrace ? { traceId } : {}),
        });
        ids.push(auditEventId);
        if (inTrace) traced.push(auditEventId);
      }
      const newestFirst = [...ids].reverse();

      const first = await engine.audit({ order: "desc", limit: 3 });
      expect(first.items.map((e) => e.id)).toEqual(newestFirst.slice(0, 3));
      expect(first.items.map((e) => e.seq)).toEqual([7, 6, 5]);
      // Records appended after the first page do not shift the older pages.
      const later = (await engine.decide({ agent, actionType: "read.x" })).auditEventId;
      const seen = first.items.map((e) => e.id);
      let cursor = first.nextCursor;
      while (cursor !== undefined) {
        const page = await engine.audit({ order: "desc", limit: 3, cursor });
        seen.push(...page.items.map((e) => e.id));
        cursor = page.nextCursor;
      }
      expect(seen).toEqual(newestFirst);
      expect((await engine.audit({ order: "desc", limit: 1 })).items.map((e) => e.id)).toEqual([later]);
      // A full page that ends at seq 1 still says whether there is more (there is not).
      expect((await engine.audit({ order: "desc", limit: 8 })).nextCursor).toBeUndefined();

      // Filters combine with the order.
      expect((await engine.audit({ order: "desc", actionType: "pr.open" })).items.map((e) => e.seq)).toEqual([
        6, 4, 2,
      ]);
      expect((await engine.audit({ order: "desc", traceId })).items.map((e) => e.id)).toEqual(
        [...traced].reverse(),
      );
      const tracedPaged: string[] = [];
      cursor = undefined;
      do {
        const page = await engine.audit({ order: "desc", traceId, limit: 1, ...(cursor ? { cursor } : {}) });
        tracedPaged.push(...page.items.map((e) => e.id));
        cursor = page.nextCursor;
      } while (cursor !== undefined);
      expect(tracedPaged).toEqual([...traced].reverse());
      expect(
        (await engine.audit({ order: "desc", traceId, actionType: "read.x" })).items.map((e) => e.seq),
      ).toEqual([7, 1]);

      // The default order is still oldest first; a cursor only continues the order that made it.
      const ascending = await engine.audit({ limit: 2 });
      expect(ascending.items.map((e) => e.seq)).toEqual([1, 2]);
      const descCursor = first.nextCursor as string;
      await expect(engine.audit({ cursor: descCursor })).rejects.toMatchObject({
        code: "INVALID_REQUEST",
        message: expect.stringContaining('order "desc"'),
      });
      await expect(
        engine.audit({ order: "desc", cursor: ascending.nextCursor as string }),
      ).rejects.toMatchObject({ code: "INVALID_REQUEST", message: expect.stringContaining('order "asc"') });
      await expect(engine.audit({ order: "desc", cursor: "nonsense" })).rejects.toMatchObject({
        code: "INVALID_REQUEST",
      });
      await expect(engine.audit({ order: "newest" as unknown as "desc" })).rejects.toMatchObject({
        code: "INVALID_REQUEST",
        message: expect.stringContaining("order"),
      });
      await engine.close();
    });

    it("keeps one total order under concurrent appends from several engines on one chain", async () => {
      const store = storeFor();
      const orgId = `org-${randomUUID()}`;
      const engines = await Promise.all([1, 2, 3].map(() => openEngine({ policy, store, orgId })));
      if (store === ":memory:") engines.splice(1); // separate memory stores are separate chains
      const results = await Promise.all(
        engines.flatMap((engine, e) =>
          Array.from({ length: 60 }, (_, i) =>
            engine.decide({ agent, actionType: "read.x", toolCallId: `${e}-${i}` }),
          ),
        ),
      );
      expect(new Set(results.map((r) => r.auditEventId)).size).toBe(results.length);
      expect(await engines[0]!.verify()).toMatchObject({ chainValid: true, checked: results.length });
      await Promise.all(engines.map((engine) => engine.close()));
    });

    it("isolates orgs: each has its own chain", async () => {
      const store = storeFor();
      const one = await openEngine({ policy, store, orgId: `a-${randomUUID()}` });
      const two = await openEngine({ policy, store, orgId: `b-${randomUUID()}` });
      await one.decide({ agent, actionType: "read.a" });
      await two.decide({ agent, actionType: "read.b" });
      await two.decide({ agent, actionType: "read.b" });
      expect((await one.audit()).items.map((e) => e.action_type)).toEqual(["read.a"]);
      expect((await two.audit()).items.map((e) => e.seq)).toEqual([1, 2]);
      await one.close();
      await two.close();
    });

    it("idempotency: same key and input returns the first result without a second row; different input is refused", async () => {
      const engine = await openEngine({ policy, store: storeFor(), orgId: `org-${randomUUID()}` });
      const request = { agent, actionType: "pay", args: { amount: 5 }, eventId: "evt-1" };
      const first = await engine.decide(request);
      const [again, concurrent] = await Promise.all([engine.decide(request), engine.decide({ ...request })]);
      expect(again).toEqual(first);
      expect(concurrent).toEqual(first);
      await expect(engine.decide({ ...request, args: { amount: 6 } })).rejects.toMatchObject({
        code: "IDEMPOTENCY_KEY_REUSED",
        status: 422,
      });
      expect((await engine.audit()).items).toHaveLength(1);
      await engine.close();
    });

    it("approvals: request, approve by another reviewer, release exactly once; all transitions audited", async () => {
      const engine = await openEngine({ policy, store: storeFor(), orgId: `org-${randomUUID()}` });
      const held = await engine.decide({ agent, actionType: "pr.merge", args: { pr: 7 } });
      expect(held.status).toBe("requested");
      expect(held.approvalId).toMatch(/^apr_/);
      expect(Buffer.from(held.approvalId!.slice(4), "base64url")).toHaveLength(16); // 128 random bits
      expect(Date.parse(held.timeoutAt!) - Date.now()).toBeGreaterThan(7.9 * 3600_000);
      expect(await engine.listApprovals({ state: "pending" })).toHaveLength(1);
      await expect(engine.approve(held.approvalId!, agent.id)).rejects.toMatchObject({
        code: "SELF_APPROVAL_FORBIDDEN",
        status: 403,
      });
      const waiting = engine.awaitApproval(held.approvalId!);
      const approved = await engine.approve(held.approvalId!, "alice", "looks fine");
      expect(approved).toMatchObject({ state: "approved", decidedBy: "alice", reason: "looks fine" });
      expect(await waiting).toMatchObject({ state: "approved" });
      await expect(engine.deny(held.approvalId!, "bob")).rejects.toMatchObject({
        code: "APPROVAL_NOT_PENDING",
      });
      await expect(engine.releaseApproval(held.approvalId!, "someone-else")).rejects.toMatchObject({
        code: "FORBIDDEN",
      });
      const released = await engine.releaseApproval(held.approvalId!, agent.id);
      expect(released).toMatchObject({ status: "executed", approvalId: held.approvalId });
      await expect(engine.releaseApproval(held.approvalId!, agent.id)).rejects.toMatchObject({
        code: "APPROVAL_ALREADY_USED",
      });
      const kinds = (await engine.audit()).items.map((e) => [e.kind, e.status, e.approval_id]);
      expect(kinds).toEqual([
        ["action", "requested", held.approvalId],
        ["approval.approved", null, held.approvalId],
        ["approval.released", "executed", held.approvalId],
      ]);
      expect(await engine.verify()).toMatchObject({ chainValid: true });
      await engine.close();
    });

    it("approvals: 1000 concurrent releases of one approved approval execute exactly once", async () => {
      const engine = await openEngine({ policy, store: storeFor(), orgId: `org-${randomUUID()}` });
      const held = await engine.decide({ agent, actionType: "pr.merge", args: { pr: 9 } });
      await engine.approve(held.approvalId!, "alice");
      const settled = await Promise.allSettled(
        Array.from({ length: 1000 }, () => engine.releaseApproval(held.approvalId!, agent.id)),
      );
      const executed = settled.filter((s) => s.status === "fulfilled");
      const refused = settled.flatMap((s) => (s.status === "rejected" ? [s.reason as { code: string }] : []));
      expect(executed).toHaveLength(1);
      expect(executed[0]).toMatchObject({ value: { status: "executed", approvalId: held.approvalId } });
      expect(refused).toHaveLength(999);
      expect(new Set(refused.map((e) => e.code))).toEqual(new Set(["APPROVAL_ALREADY_USED"]));
      const released = await engine.audit({ actionType: "pr.merge" });
      expect(released.items.filter((e) => e.kind === "approval.released")).toHaveLength(1);
      expect(await engine.verify()).toMatchObject({ chainValid: true, checked: 3 });
      await engine.close();
    });

    it("kill switch: a contained agent is denied CIRCUIT_OPEN, both transitions are audited, and release restores it", async () => {
      const engine = await openEngine({ policy, store: storeFor(), orgId: `org-${randomUUID()}` });
      const held = await engine.decide({ agent, actionType: "pr.merge" });
      await engine.approve(held.approvalId!, "alice");
      const control = await engine.contain(agent.id, "ops-carol", "runaway loop");
      expect(control).toMatchObject({ agentId: agent.id, contained: true, changedBy: "ops-carol" });
      expect(engine.agentState(agent.id)).toMatchObject({ contained: true, containedBy: "ops-carol" });
      const denied = await engine.decide({ agent, actionType: "read.file" });
      expect(denied).toMatchObject({ status: "denied", denialReason: "CIRCUIT_OPEN" });
      expect(denied.message).toContain("contained by operator ops-carol");
      const observed = await engine.decide({ agent, actionType: "read.file", enforcementMode: "observe" });
      expect(observed).toMatchObject({ status: "denied", denialReason: "CIRCUIT_OPEN" });
      const delegated = await engine.decide({
        agent: { id: "sub-agent" },
        actionType: "read.file",
        delegationChain: [agent.id, "sub-agent"],
      });
      expect(delegated).toMatchObject({ status: "denied", denialReason: "CIRCUIT_OPEN" });
      await expect(engine.releaseApproval(held.approvalId!, agent.id)).rejects.toMatchObject({
        code: "AGENT_CONTAINED",
      });
      await expect(engine.release(agent.id, agent.id, "let me out")).rejects.toMatchObject({
        code: "SELF_RELEASE_FORBIDDEN",
        status: 403,
      });
      await expect(engine.contain(agent.id, "ops-carol", " ")).rejects.toMatchObject({
        code: "INVALID_REQUEST",
      });
      await engine.release(agent.id, "ops-dave", "fixed");
      await expect(engine.release(agent.id, "ops-dave", "again")).rejects.toMatchObject({
        code: "AGENT_NOT_CONTAINED",
      });
      expect(engine.agentState(agent.id)).toMatchObject({ contained: false, cbState: "closed" });
      expect(await engine.decide({ agent, actionType: "read.file" })).toMatchObject({ status: "executed" });
      expect(await engine.releaseApproval(held.approvalId!, agent.id)).toMatchObject({ status: "executed" });
      expect(await engine.listAgentControls()).toEqual([
        expect.objectContaining({
          agentId: agent.id,
          contained: false,
          changedBy: "ops-dave",
          reason: "fixed",
        }),
      ]);
      const controls = (await engine.audit()).items.filter((e) => e.kind.startsWith("agent."));
      expect(controls.map((e) => [e.kind, e.agent, e.reason, e.metadata])).toEqual([
        ["agent.contained", agent.id, "runaway loop", { operator: "ops-carol" }],
        ["agent.released", agent.id, "fixed", { operator: "ops-dave" }],
      ]);
      expect(await engine.verify()).toMatchObject({ chainValid: true });
      const chunks: string[] = [];
      const { Writable } = await import("node:stream");
      await engine.exportAudit(
        new Writable({
          write(chunk, _enc, done) {
            chunks.push(String(chunk));
            done();
          },
        }),
      );
      const lines = chunks
        .join("")
        .split("\n")
        .filter((line) => line !== "");
      expect(await verifyExport(lines)).toMatchObject({ chainValid: true, records: 9 });
      await engine.close();
    });

    it("kill switch: a containment written through another engine (the CLI) is enforced by the running one", async () => {
      const store = storeFor();
      const orgId = `org-${randomUUID()}`;
      const agentSide = await openEngine({ policy, store, orgId, controlsRefreshMs: 20 });
      const operatorSide = store === ":memory:" ? agentSide : await openEngine({ policy, store, orgId });
      expect(await agentSide.decide({ agent, actionType: "read.file" })).toMatchObject({
        status: "executed",
      });
      await operatorSide.contain(agent.id, "ops-carol", "incident 42");
      // The running engine re-reads containment on its own timer; wait for it (bounded by the test timeout).
      while (!agentSide.agentState(agent.id).contained) await new Promise((r) => setTimeout(r, 10));
      expect(await agentSide.decide({ agent, actionType: "read.file" })).toMatchObject({
        status: "denied",
        denialReason: "CIRCUIT_OPEN",
      });
      await operatorSide.release(agent.id, "ops-dave", "resolved");
      await agentSide.refreshControls();
      expect(await agentSide.decide({ agent, actionType: "read.file" })).toMatchObject({
        status: "executed",
      });
      if (operatorSide !== agentSide) await operatorSide.close();
      await agentSide.close();
    });

    it("approvals: a decision made through another engine (replica) releases a waiting agent", async () => {
      const store = storeFor();
      const orgId = `org-${randomUUID()}`;
      const agentSide = await openEngine({ policy, store, orgId });
      const operatorSide = store === ":memory:" ? agentSide : await openEngine({ policy, store, orgId });
      const held = await agentSide.decide({ agent, actionType: "pr.merge" });
      const waiting = agentSide.awaitApproval(held.approvalId!, { timeoutMs: 20_000 });
      expect((await operatorSide.listApprovals({ state: "pending" })).map((a) => a.id)).toEqual([
        held.approvalId,
      ]);
      await operatorSide.approve(held.approvalId!, "alice");
      expect(await waiting).toMatchObject({ state: "approved", decidedBy: "alice" });
      expect(await agentSide.releaseApproval(held.approvalId!, agent.id)).toMatchObject({
        status: "executed",
      });
      await expect(operatorSide.releaseApproval(held.approvalId!, agent.id)).rejects.toMatchObject({
        code: "APPROVAL_ALREADY_USED",
      });
      expect(await operatorSide.verify()).toMatchObject({ chainValid: true, checked: 3 });
      if (operatorSide !== agentSide) await operatorSide.close();
      await agentSide.close();
    });

    it("approvals: reviewer denial is a denied record with DENIED_BY_REVIEWER", async () => {
      const engine = await openEngine({ policy, store: storeFor(), orgId: `org-${randomUUID()}` });
      const held = await engine.decide({ agent, actionType: "pr.merge" });
      await engine.deny(held.approvalId!, "carol", "not today");
      await expect(engine.releaseApproval(held.approvalId!, agent.id)).rejects.toMatchObject({
        code: "APPROVAL_NOT_APPROVED",
      });
      const last = (await engine.audit()).items.at(-1)!;
      expect(last).toMatchObject({
        kind: "approval.denied",
        status: "denied",
        denial_reason: "DENIED_BY_REVIEWER",
        reason: "not today",
      });
      await engine.close();
    });

    it("audit pages carry each record's own outcome, in both orders", async () => {
      const engine = await openEngine({ policy, store: storeFor(), orgId: `org-${randomUUID()}` });
      const ids: string[] = [];
      for (let i = 0; i < 5; i++)
        ids.push((await engine.decide({ agent, actionType: "read.file" })).auditEventId);
      await engine.report(ids[1]!, { status: "failure", message: "one" }, agent.id);
      await engine.report(ids[3]!, { status: "partial", message: "three" }, agent.id);
      const expected = ids.map((id, i) =>
        i === 1 ? { id, status: "failure" } : i === 3 ? { id, status: "partial" } : { id, status: undefined },
      );
      const seen = (items: { id: string; outcome?: { status: string } | null }[]) =>
        items.map((e) => ({ id: e.id, status: e.outcome?.status ?? undefined }));
      const first = await engine.audit({ limit: 3 });
      const rest = await engine.audit({ limit: 3, cursor: first.nextCursor! });
      expect(seen([...first.items, ...rest.items])).toEqual(expected);
      expect(seen((await engine.audit({ order: "desc" })).items)).toEqual([...expected].reverse());
      await engine.close();
    });

    it("outcomes: upsert last-write-wins, owner only, typed errors; receipts carry them", async () => {
      const engine = await openEngine({ policy, store: storeFor(), orgId: `org-${randomUUID()}` });
      const done = await engine.decide({ agent, actionType: "read.file" });
      await engine.report(done.auditEventId, { status: "failure", message: "first" }, agent.id);
      await engine.report(
        done.auditEventId,
        { status: "success", message: "second", metadata: { rows: 3 } },
        agent.id,
      );
      const [event] = (await engine.audit()).items;
      expect(event!.outcome).toMatchObject({ status: "success", message: "second", metadata: { rows: 3 } });
      await expect(engine.report("nope", { status: "success" }, agent.id)).rejects.toMatchObject({
        code: "INVALID_AUDIT_EVENT_ID",
        status: 400,
      });
      await expect(
        engine.report(done.auditEventId, { status: "great" as never }, agent.id),
      ).rejects.toMatchObject({
        code: "INVALID_OUTCOME",
        status: 400,
      });
      await expect(engine.report(done.auditEventId, null as never, agent.id)).rejects.toMatchObject({
        code: "INVALID_BODY",
        status: 400,
      });
      await expect(engine.report(randomUUID(), { status: "success" }, agent.id)).rejects.toMatchObject({
        code: "AUDIT_EVENT_NOT_FOUND",
        status: 404,
      });
      await expect(engine.report(done.auditEventId, { status: "success" }, "intruder")).rejects.toMatchObject(
        {
          code: "FORBIDDEN",
          status: 403,
        },
      );
      const receipt = await engine.receipt(done.auditEventId);
      const checked = await verifyReceipt(receipt, engine.jwks());
      expect(checked.valid).toBe(true);
      if (checked.valid) {
        expect(checked.claims).toMatchObject({
          auditEventId: done.auditEventId,
          status: "executed",
          chain: { seq: 1, recordHash: event!.hash },
          outcome: { status: "success" },
        });
      }
      await engine.close();
    });

    it("exports JSONL that verifies offline, including outcomes and checkpoints", async () => {
      const engine = await openEngine({
        policy,
        store: storeFor(),
        orgId: `org-${randomUUID()}`,
        checkpointInterval: 3,
      });
      for (let i = 0; i < 7; i++) {
        const r = await engine.decide({ agent, actionType: "read.file", args: { i } });
        if (i === 2) await engine.report(r.auditEventId, { status: "success" }, agent.id);
      }
      const lines: string[] = [];
      const sink = new (await import("node:stream")).Writable({
        write(chunk, _enc, cb) {
          lines.push(...String(chunk).split("\n").filter(Boolean));
          cb();
        },
      });
      const counts = await engine.exportAudit(sink);
      expect(counts).toMatchObject({ records: 7, outcomes: 1 });
      expect(counts.checkpoints).toBeGreaterThanOrEqual(2);
      const result = await verifyExport(lines, { jwks: engine.jwks() });
      expect(result).toMatchObject({ chainValid: true, checked: 7, outcomes: 1, keySource: "provided" });
      const edited = lines.map((l) => l.replace('"args":{"i":4}', '"args":{"i":5}'));
      expect(await verifyExport(edited)).toMatchObject({ chainValid: false, checked: 4 });
      await engine.close();
    });

    it("rotates the signing key: old checkpoints and receipts still verify, the JWKS keeps the old public key", async () => {
      const store = storeFor();
      const orgId = `org-${randomUUID()}`;
      const engine = await openEngine({ policy, store, orgId, checkpointInterval: 2 });
      const before = await engine.decide({ agent, actionType: "read.file", args: { n: 1 } });
      await engine.decide({ agent, actionType: "read.file", args: { n: 2 } });
      const oldReceipt = await engine.receipt(before.auditEventId);
      const oldKid = engine.jwks().keys[0]!.kid;
      const newKid = await engine.rotateSigningKey();
      expect(newKid).not.toBe(oldKid);
      const kids = engine.jwks().keys.map((k) => k.kid);
      expect(kids).toEqual(expect.arrayContaining([oldKid, newKid]));
      expect(engine.jwks().keys.every((k) => !("d" in k))).toBe(true);
      const after = await engine.decide({ agent, actionType: "read.file", args: { n: 3 } });
      await engine.decide({ agent, actionType: "read.file", args: { n: 4 } });
      const newReceipt = await engine.receipt(after.auditEventId);
      await engine.checkpoint();
      expect(await engine.verify()).toMatchObject({ chainValid: true, checked: 4 });
      for (const [receipt, kid] of [
        [oldReceipt, oldKid],
        [newReceipt, newKid],
      ] as const) {
        const checked = await verifyReceipt(receipt, engine.jwks());
        expect(checked).toMatchObject({ valid: true, kid });
      }
      // A JWKS without the retired key cannot vouch for what it signed.
      const withoutOld = { keys: engine.jwks().keys.filter((k) => k.kid !== oldKid) };
      expect(await verifyReceipt(oldReceipt, withoutOld)).toMatchObject({ valid: false });
      await engine.close();
      if (store !== ":memory:") {
        const reopened = await openEngine({ policy, store, orgId });
        expect(reopened.jwks().keys.map((k) => k.kid)).toEqual(expect.arrayContaining([oldKid, newKid]));
        expect(await reopened.verify()).toMatchObject({ chainValid: true, checked: 4 });
        await reopened.close();
      }
    });
  });
}

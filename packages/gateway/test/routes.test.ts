import { verifyExport } from "@aa/engine";
import { afterEach, describe, expect, it } from "vitest";
import { readEvents, startGateway, type TestGateway } from "./harness.js";

let current: TestGateway | undefined;
afterEach(async () => {
  await current?.gateway.close();
  current = undefined;
});
async function gateway(options?: Parameters<typeof startGateway>[0]) {
  current = await startGateway(options);
  return current;
}

describe("approvals over HTTP", () => {
  it("a long poll returns as soon as an operator decides, and the release runs the call once", async () => {
    const gw = await gateway();
    const held = await gw.call(gw.keys.agent, "POST", "/v1/actions", {
      actionType: "pr.merge",
      args: { pr: 1 },
    });
    expect(held.body).toMatchObject({ status: "requested", approvalId: expect.stringMatching(/^apr_/) });
    const id = held.body.approvalId as string;
    const waiting = gw.call(gw.keys.agent, "GET", `/v1/approvals/${id}/wait?timeoutMs=30000`);
    // The operator decides while the agent's request is open.
    const approved = await gw.call(gw.keys.operator, "POST", `/v1/approvals/${id}/approve`, { reason: "ok" });
    expect(approved.status).toBe(200);
    const woke = await waiting;
    expect(woke.body).toMatchObject({ id, state: "approved", decidedBy: "ops-alice" });
    const released = await gw.call(gw.keys.agent, "POST", `/v1/approvals/${id}/release`);
    expect(released.body).toMatchObject({ status: "executed", approvalId: id });
    const again = await gw.call(gw.keys.agent, "POST", `/v1/approvals/${id}/release`, {});
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe("APPROVAL_ALREADY_USED");
  });

  it("refuses a wait timeout over 30 s and an approval of another org", async () => {
    const gw = await gateway();
    const held = await gw.call(gw.keys.agent, "POST", "/v1/actions", { actionType: "pr.merge" });
    const id = held.body.approvalId as string;
    const tooLong = await gw.call(gw.keys.agent, "GET", `/v1/approvals/${id}/wait?timeoutMs=30001`);
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.error).toMatchObject({ code: "INVALID_QUERY", details: { field: "timeoutMs" } });
    const foreign = await gw.call(gw.keys.globexOperator, "POST", `/v1/approvals/${id}/approve`, {});
    expect(foreign.status).toBe(404);
    expect((await gw.call(gw.keys.operator, "GET", `/v1/approvals/${id}`)).body.state).toBe("pending");
  });
});

describe("approval retries after a lost answer", () => {
  it("the same reviewer's same decision answers again; another reviewer or decision still gets 409", async () => {
    const gw = await gateway();
    const held = await gw.call(gw.keys.agent, "POST", "/v1/actions", { actionType: "pr.merge" });
    const id = held.body.approvalId as string;
    const first = await gw.call(gw.keys.operator, "POST", `/v1/approvals/${id}/approve`, { reason: "ok" });
    expect(first.status).toBe(200);
    const retried = await gw.call(gw.keys.operator, "POST", `/v1/approvals/${id}/approve`, { reason: "ok" });
    expect(retried.status).toBe(200);
    // The same approval as first answered (same decidedAt): no second decision was recorded.
    expect(retried.body).toEqual(first.body);
    const other = await gw.call(gw.keys.admin, "POST", `/v1/approvals/${id}/approve`, {});
    expect(other.status).toBe(409);
    expect(other.body.error.code).toBe("APPROVAL_NOT_PENDING");
    const flipped = await gw.call(gw.keys.operator, "POST", `/v1/approvals/${id}/deny`, { reason: "no" });
    expect(flipped.status).toBe(409);
    expect(flipped.body.error.code).toBe("APPROVAL_NOT_PENDING");

    // A denial retried by its reviewer answers again too.
    const second = await gw.call(gw.keys.agent, "POST", "/v1/actions", { actionType: "pr.merge" });
    const other2 = second.body.approvalId as string;
    const denied = await gw.call(gw.keys.operator, "POST", `/v1/approvals/${other2}/deny`, { reason: "no" });
    const deniedAgain = await gw.call(gw.keys.operator, "POST", `/v1/approvals/${other2}/deny`, {
      reason: "no",
    });
    expect(denied.status).toBe(200);
    expect(deniedAgain.status).toBe(200);
    expect(deniedAgain.body).toMatchObject({ id: other2, state: "denied", decidedBy: "ops-alice" });
  });

  it("a release retried with the same Idempotency-Key answers as the first; a new key still gets 409", async () => {
    const gw = await gateway();
    const held = await gw.call(gw.keys.agent, "POST", "/v1/actions", { actionType: "pr.merge" });
    const id = held.body.approvalId as string;
    await gw.call(gw.keys.operator, "POST", `/v1/approvals/${id}/approve`, {});
    const key = { "idempotency-key": "release-1" };
    const first = await gw.call(gw.keys.agent, "POST", `/v1/approvals/${id}/release`, {}, key);
    expect(first.body).toMatchObject({ status: "executed", approvalId: id });
    const retried = await gw.call(gw.keys.agent, "POST", `/v1/approvals/${id}/release`, {}, key);
    expect(retried.status).toBe(200);
    // The same answer, the same executed record (auditEventId): the call was released once.
    expect(retried.body).toEqual(first.body);
    const fresh = await gw.call(
      gw.keys.agent,
      "POST",
      `/v1/approvals/${id}/release`,
      {},
      {
        "idempotency-key": "release-2",
      },
    );
    expect(fresh.status).toBe(409);
    expect(fresh.body.error.code).toBe("APPROVAL_ALREADY_USED");
    const noKey = await gw.call(gw.keys.agent, "POST", `/v1/approvals/${id}/release`, {});
    expect(noKey.body.error.code).toBe("APPROVAL_ALREADY_USED");

    // The key belongs to that release: used for another approval it is refused.
    const next = await gw.call(gw.keys.agent, "POST", "/v1/actions", { actionType: "pr.merge" });
    const nextId = next.body.approvalId as string;
    await gw.call(gw.keys.operator, "POST", `/v1/approvals/${nextId}/approve`, {});
    const reused = await gw.call(gw.keys.agent, "POST", `/v1/approvals/${nextId}/release`, {}, key);
    expect(reused.status).toBe(409);
    expect(reused.body.error.code).toBe("IDEMPOTENCY_KEY_REUSED");
    const bad = await gw.call(
      gw.keys.agent,
      "POST",
      `/v1/approvals/${nextId}/release`,
      {},
      {
        "idempotency-key": "x".repeat(201),
      },
    );
    expect(bad.status).toBe(400);
    expect(bad.body.error.details).toEqual({ field: "Idempotency-Key" });
  });
});

describe("tenancy over HTTP", () => {
  it("an org's keys never read, approve, report on or see the events of another org", async () => {
    const gw = await gateway();
    const acmeCall = await gw.call(gw.keys.agent, "POST", "/v1/actions", {
      actionType: "pr.open",
      metadata: { pr_size: 1 },
    });
    const held = await gw.call(gw.keys.agent, "POST", "/v1/actions", { actionType: "pr.merge" });
    const eventId = acmeCall.body.auditEventId as string;
    // globex has its own chain: empty audit, unknown ids.
    expect((await gw.call(gw.keys.globexOperator, "GET", "/v1/audit")).body.items).toEqual([]);
    expect((await gw.call(gw.keys.globexOperator, "GET", "/v1/approvals")).body.approvals).toEqual([]);
    expect(
      (await gw.call(gw.keys.globexOperator, "GET", `/v1/approvals/${held.body.approvalId}`)).status,
    ).toBe(404);
    expect(
      (
        await gw.call(gw.keys.globexOperator, "POST", `/v1/approvals/${held.body.approvalId}/deny`, {
          reason: "x",
        })
      ).status,
    ).toBe(404);
    expect(
      (await gw.call(gw.keys.globexAgent, "POST", `/v1/audit/${eventId}/outcome`, { status: "failure" }))
        .status,
    ).toBe(404);
    expect((await gw.call(gw.keys.globexOperator, "GET", `/v1/receipts/${eventId}`)).status).toBe(404);
    // The same agent id in another org is another agent: its calls land in its own org only.
    await gw.call(gw.keys.globexAgent, "POST", "/v1/actions", { actionType: "read.file" });
    const acmeAudit = await gw.call(gw.keys.operator, "GET", "/v1/audit");
    expect(acmeAudit.body.items.map((i: { org: string }) => i.org)).toEqual(["acme", "acme"]);
    // Events: a globex subscriber resuming from the start sees only globex's record.
    const stream = await fetch(`${gw.url}/v1/events?after=0`, {
      headers: { authorization: `Bearer ${gw.keys.globexOperator}` },
    });
    const [only] = await readEvents(stream, 1);
    expect(only).toMatchObject({ event: "action.executed", data: { actionType: "read.file", seq: 1 } });
  });

  it("an agent key sees only its own approvals, audit records, receipts and events", async () => {
    const gw = await gateway();
    const mine = await gw.call(gw.keys.agent, "POST", "/v1/actions", { actionType: "read.a" });
    const theirs = await gw.call(gw.keys.otherAgent, "POST", "/v1/actions", { actionType: "read.b" });
    const audit = await gw.call(gw.keys.agent, "GET", "/v1/audit");
    expect(audit.body.items.map((i: { id: string }) => i.id)).toEqual([mine.body.auditEventId]);
    expect((await gw.call(gw.keys.agent, "GET", `/v1/receipts/${theirs.body.auditEventId}`)).status).toBe(
      403,
    );
    const spy = await gw.call(gw.keys.agent, "GET", "/v1/events?agent=docs-bot");
    expect(spy.status).toBe(403);
    const stream = await fetch(`${gw.url}/v1/events?after=0`, {
      headers: { authorization: `Bearer ${gw.keys.agent}` },
    });
    const [own] = await readEvents(stream, 1);
    expect(own!.data).toMatchObject({ agentId: "release-bot", actionType: "read.a" });
  });
});

describe("events (SSE)", () => {
  it("streams new events with id = seq, and resumes after Last-Event-ID without gaps or repeats", async () => {
    const gw = await gateway();
    const response = await fetch(`${gw.url}/v1/events`, {
      headers: { authorization: `Bearer ${gw.keys.operator}` },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const first = readEvents(response, 2);
    await gw.call(gw.keys.agent, "POST", "/v1/actions", { actionType: "read.x" });
    await gw.call(gw.keys.agent, "POST", "/v1/actions", {
      actionType: "pr.open",
      metadata: { pr_size: 500 },
    });
    const seen = await first;
    expect(seen.map((e) => [e.id, e.event])).toEqual([
      ["1", "action.executed"],
      ["2", "action.denied"],
    ]);
    // Missed while disconnected: one more call; a reconnect with Last-Event-ID gets exactly it.
    await gw.call(gw.keys.agent, "POST", "/v1/actions", { actionType: "read.y" });
    const resumed = await fetch(`${gw.url}/v1/events?events=action.executed`, {
      headers: { authorization: `Bearer ${gw.keys.operator}`, "last-event-id": "2" },
    });
    const [missed] = await readEvents(resumed, 1);
    expect(missed).toMatchObject({ id: "3", event: "action.executed", data: { actionType: "read.y" } });
  });

  it("names its start point on connect, so a reconnect before any event misses nothing (raw HTTP)", async () => {
    const gw = await gateway();
    await gw.call(gw.keys.agent, "POST", "/v1/actions", { actionType: "read.before" });
    await gw.call(gw.keys.agent, "POST", "/v1/actions", { actionType: "read.before" });
    // Connect and read raw bytes until the stream names where it starts; disconnect before any event.
    const first = await rawStream(gw.url, gw.keys.operator);
    expect(first.text).toMatch(/^: connected\n\nid: 2\n\n$/);
    first.close();
    // Appended while no stream is open.
    await gw.call(gw.keys.agent, "POST", "/v1/actions", { actionType: "read.missed" });
    await gw.call(gw.keys.agent, "POST", "/v1/actions", {
      actionType: "pr.open",
      metadata: { pr_size: 500 },
    });
    // A reconnect with the Last-Event-ID received gets exactly those, in order.
    const resumed = await fetch(`${gw.url}/v1/events`, {
      headers: { authorization: `Bearer ${gw.keys.operator}`, "last-event-id": first.lastEventId! },
    });
    const missed = await readEvents(resumed, 2);
    expect(missed.map((e) => [e.id, e.event, e.data.actionType])).toEqual([
      ["3", "action.executed", "read.missed"],
      ["4", "action.denied", "pr.open"],
    ]);
    // A filtered stream and an agent key's stream name their start too (the head when they
    // connect), although the filter would hide the records before it.
    await gw.call(gw.keys.otherAgent, "POST", "/v1/actions", { actionType: "read.other" });
    const filtered = await rawStream(gw.url, gw.keys.operator, "?events=approval.requested");
    expect(filtered.text).toBe(": connected\n\nid: 5\n\n");
    filtered.close();
    const agentStream = await rawStream(gw.url, gw.keys.agent);
    expect(agentStream.text).toBe(": connected\n\nid: 5\n\n");
    agentStream.close();
  });

  it("an agent key's stream carries the resolution of its own approvals, not of others'", async () => {
    const gw = await gateway();
    const response = await fetch(`${gw.url}/v1/events?events=approval.requested,approval.resolved`, {
      headers: { authorization: `Bearer ${gw.keys.agent}` },
    });
    const reading = readEvents(response, 2);
    const theirs = await gw.call(gw.keys.otherAgent, "POST", "/v1/actions", { actionType: "pr.merge" });
    await gw.call(gw.keys.operator, "POST", `/v1/approvals/${theirs.body.approvalId}/deny`, { reason: "no" });
    const mine = await gw.call(gw.keys.agent, "POST", "/v1/actions", { actionType: "pr.merge" });
    await gw.call(gw.keys.operator, "POST", `/v1/approvals/${mine.body.approvalId}/approve`, {});
    const seen = await reading;
    expect(seen.map((e) => [e.event, e.data.data.approvalId])).toEqual([
      ["approval.requested", mine.body.approvalId],
      ["approval.resolved", mine.body.approvalId],
    ]);
    expect(seen[1]!.data.agentId).toBe("ops-alice");
  });

  it("answers a bad filter or resume point with a JSON error, not a stream", async () => {
    const gw = await gateway();
    const unknown = await gw.call(gw.keys.operator, "GET", "/v1/events?events=action.nope");
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.message).toMatch(/Unknown event type "action.nope"/);
    const badResume = await gw.call(gw.keys.operator, "GET", "/v1/events", undefined, {
      "last-event-id": "x",
    });
    expect(badResume.body.error.code).toBe("INVALID_QUERY");
  });
});

describe("audit export and shutdown", () => {
  it("exports JSONL that verifies offline", async () => {
    const gw = await gateway();
    await gw.call(gw.keys.agent, "POST", "/v1/actions", { actionType: "read.x", args: { token: "s3cret" } });
    const exported = await fetch(`${gw.url}/v1/audit/export`, {
      headers: { authorization: `Bearer ${gw.keys.operator}` },
    });
    expect(exported.headers.get("content-type")).toMatch(/^application\/x-ndjson/);
    const text = await exported.text();
    expect(text).not.toContain("s3cret");
    const jwks = await (await fetch(`${gw.url}/v1/jwks.json`)).json();
    const result = await verifyExport(text.split("\n").filter(Boolean), { jwks });
    expect(result).toMatchObject({ chainValid: true, records: 1, org: "acme", keySource: "provided" });
  });

  it("close() answers an open long poll at once (still pending) instead of holding the shutdown", async () => {
    const gw = await gateway();
    const held = await gw.call(gw.keys.agent, "POST", "/v1/actions", { actionType: "pr.merge" });
    const id = held.body.approvalId as string;
    // Fastify has accepted the request once the server emitted it (its own listener runs first).
    const accepted = new Promise((resolve) => gw.gateway.app.server.once("request", resolve));
    const waiting = fetch(`${gw.url}/v1/approvals/${id}/wait?timeoutMs=30000`, {
      headers: { authorization: `Bearer ${gw.keys.agent}` },
    });
    await accepted;
    // Were the 30 s wait held, close() would outlast this test's timeout.
    await gw.gateway.close();
    current = undefined;
    const answer = await waiting;
    expect(answer.status).toBe(200);
    expect(await answer.json()).toMatchObject({ id, state: "pending" });
  });

  it("close() ends open event streams and waits; engines write their checkpoint", async () => {
    const gw = await gateway();
    await gw.call(gw.keys.agent, "POST", "/v1/actions", { actionType: "read.x" });
    const stream = await fetch(`${gw.url}/v1/events`, {
      headers: { authorization: `Bearer ${gw.keys.operator}` },
    });
    const reading = stream.text();
    await gw.gateway.close();
    current = undefined;
    await expect(reading).resolves.toContain(": connected");
    // Reopened on the same database, the chain verifies against the checkpoint written on close.
    const database = gw.gateway.database;
    if (database.kind !== "sqlite") throw new Error("the harness uses SQLite");
    const again = await startGateway({ database: `sqlite:${database.path}` });
    current = again;
    const verify = await again.call(again.keys.operator, "GET", "/v1/audit/verify");
    expect(verify.body).toEqual({ chainValid: true, checked: 1, firstBrokenAtRowId: null });
  });
});

describe("delegated agents over HTTP", () => {
  it("the key's agent sees its child's approval and releases it only with the child's token", async () => {
    const gw = await gateway();
    const grant = await gw.call(gw.keys.agent, "POST", "/v1/delegations", {
      name: "merger",
      capabilities: ["pr.*"],
    });
    expect(grant.status).toBe(201);
    const token = grant.body.token as string;
    const held = await gw.call(
      gw.keys.agent,
      "POST",
      "/v1/actions",
      { actionType: "pr.merge" },
      {
        "aa-delegation": token,
      },
    );
    expect(held.body.status).toBe("requested");
    const id = held.body.approvalId as string;
    expect((await gw.call(gw.keys.agent, "GET", `/v1/approvals/${id}`)).body.agentId).toBe(
      "release-bot/merger",
    );
    expect((await gw.call(gw.keys.otherAgent, "GET", `/v1/approvals/${id}`)).status).toBe(403);
    await gw.call(gw.keys.operator, "POST", `/v1/approvals/${id}/approve`, {});
    const withoutToken = await gw.call(gw.keys.agent, "POST", `/v1/approvals/${id}/release`);
    expect(withoutToken.status).toBe(403);
    expect(withoutToken.body.error.message).toMatch(/release it with that delegated agent's token/);
    const released = await gw.call(gw.keys.agent, "POST", `/v1/approvals/${id}/release`, undefined, {
      "aa-delegation": token,
    });
    expect(released.body).toMatchObject({ status: "executed", approvalId: id });
    // The child's records are the key's agent's to read.
    const audit = await gw.call(gw.keys.agent, "GET", "/v1/audit");
    expect(audit.body.items.map((i: { agent: string }) => i.agent)).toContain("release-bot/merger");
  });

  it("an agent key cannot be named like a delegated agent", async () => {
    const gw = await gateway();
    const refused = await gw.call(gw.keys.admin, "POST", "/v1/keys", {
      kind: "agent",
      agentId: "release-bot/x",
    });
    expect(refused.status).toBe(400);
    expect(refused.body.error.code).toBe("INVALID_BODY");
  });
});

describe("enforcement modes", () => {
  it("an agent gets observe only where the operator allowed it, and disabled not at all", async () => {
    const gw = await gateway({ agentEnforcementModes: ["observe"] });
    const observed = await gw.call(gw.keys.agent, "POST", "/v1/actions", {
      actionType: "db.drop",
      enforcementMode: "observe",
    });
    expect(observed.body).toMatchObject({ status: "executed", shadow: { status: "denied" } });
    const disabled = await gw.call(gw.keys.agent, "POST", "/v1/actions", {
      actionType: "db.drop",
      enforcementMode: "disabled",
    });
    expect(disabled.status).toBe(403);
    expect(disabled.body.error.code).toBe("ENFORCEMENT_MODE_FORBIDDEN");
    const audit = await gw.call(gw.keys.operator, "GET", "/v1/audit");
    expect(audit.body.items.map((i: { mode: string }) => i.mode)).toEqual(["observe"]);
  });

  it("still records a fail-open record (a call that ran while it was unreachable), marked", async () => {
    const gw = await gateway();
    const record = await gw.call(gw.keys.agent, "POST", "/v1/actions", {
      actionType: "db.drop",
      enforcementMode: "disabled",
      failOpen: true,
    });
    expect(record.status).toBe(200);
    const audit = await gw.call(gw.keys.operator, "GET", "/v1/audit");
    expect(audit.body.items).toHaveLength(1);
    expect(audit.body.items[0]).toMatchObject({ action_type: "db.drop", fail_open: true });
  });
});

describe("readiness", () => {
  it("is 503 GATE_UNAVAILABLE with Retry-After while the database does not answer", async () => {
    const gw = await gateway();
    expect((await gw.call(undefined, "GET", "/v1/ready")).body).toEqual({
      status: "ready",
      store: "sqlite",
      policyTampered: 0,
    });
    // The database goes away under the running gateway.
    await gw.gateway.store.close();
    const down = await gw.call(undefined, "GET", "/v1/ready");
    expect(down.status).toBe(503);
    expect(down.headers.get("retry-after")).toBe("1");
    expect(down.body.error).toMatchObject({ code: "GATE_UNAVAILABLE", details: { store: "sqlite" } });
    expect((await gw.call(undefined, "GET", "/v1/health")).body).toEqual({ status: "ok" });
  });
});

describe("bad input writes nothing", () => {
  it("malformed JSON, wrong types, unknown fields and oversize bodies are refused before the engine", async () => {
    const gw = await gateway({ bodyLimit: 4096 });
    const attempts = [
      await gw.call(gw.keys.agent, "POST", "/v1/actions", '{"actionType": '),
      await gw.call(gw.keys.agent, "POST", "/v1/actions", { actionType: "read.x", dryRun: "yes" }),
      await gw.call(gw.keys.agent, "POST", "/v1/actions", { actionType: "read.x", agent: { id: "admin" } }),
      await gw.call(gw.keys.agent, "POST", "/v1/actions", { actionType: "read.x", args: "x".repeat(5000) }),
      await gw.call(gw.keys.agent, "POST", "/v1/actions", "actionType=read.x", {
        "content-type": "application/x-www-form-urlencoded",
      }),
      await gw.call(gw.keys.operator, "POST", "/v1/agents/release-bot/contain", { reason: 5 }),
      await gw.call(gw.keys.admin, "PUT", "/v1/policies", { policy: { version: 2 } }),
    ];
    expect(attempts.map((a) => [a.status, a.body.error.code])).toEqual([
      [400, "INVALID_BODY"],
      [400, "INVALID_BODY"],
      [400, "INVALID_BODY"],
      [413, "PAYLOAD_TOO_LARGE"],
      [415, "UNSUPPORTED_MEDIA_TYPE"],
      [400, "INVALID_BODY"],
      [400, "INVALID_POLICY"],
    ]);
    const audit = await gw.call(gw.keys.operator, "GET", "/v1/audit");
    expect(audit.body.items).toEqual([]);
    expect((await gw.call(gw.keys.operator, "GET", "/v1/agents")).body.agents).toEqual([]);
  });
});

/**
 * Opens `GET /v1/events` and reads the raw text until the first frame without data (the stream's
 * position on connect); returns that text and the last `id:` it carried.
 */
async function rawStream(
  url: string,
  key: string,
  query = "",
): Promise<{ text: string; lastEventId: string | undefined; close: () => void }> {
  const abort = new AbortController();
  const response = await fetch(`${url}/v1/events${query}`, {
    headers: { authorization: `Bearer ${key}` },
    signal: abort.signal,
  });
  expect(response.status).toBe(200);
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  for (;;) {
    const frames = text.split("\n\n").slice(0, -1);
    const positioned = frames.some((frame) => frame.startsWith("id: ") && !frame.includes("\ndata: "));
    if (positioned) break;
    const { value, done } = await reader.read();
    if (done) throw new Error(`the stream ended before naming its position: ${JSON.stringify(text)}`);
    text += value;
  }
  const ids = [...text.matchAll(/^id: (.*)$/gm)].map((m) => m[1]);
  return {
    text,
    lastEventId: ids.at(-1),
    close: () => {
      void reader.cancel().catch(() => undefined);
      abort.abort();
    },
  };
}

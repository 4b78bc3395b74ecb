/**
 * The remote gate against a scripted loopback gateway: what goes over the wire, retries with the
 * same idempotency key, failing closed (down, slow, broken), fail-open records, approvals by long
 * poll, events over SSE with resume, and the configuration rules of gatewayUrl.
 */
import type { ServerResponse } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import {
  type AssemblyContext,
  AssemblyDeniedError,
  AssemblyError,
  ConfigurationError,
  type EngineEvent,
  initAssembly,
} from "../src/index.js";
import { capturingAdapter } from "./capturing-adapter.js";
import {
  errorBody,
  executed,
  type LoopbackGateway,
  type RecordedRequest,
  startLoopbackGateway,
  unusedPortUrl,
  WHOAMI,
} from "./loopback-gateway.js";

const fixtureRoot = new URL("./fixtures/host-app/", import.meta.url).pathname;
const KEY = "aa_agent_k1_secretsecret";
/** Retries without waiting 7 s: the delays are configurable for exactly this. */
const FAST = { retryDelaysMs: [5, 5, 5], requestTimeoutMs: 2000 };

let gateway: LoopbackGateway | undefined;
let context: AssemblyContext | undefined;
afterEach(async () => {
  await context?.shutdown().catch(() => {});
  context = undefined;
  await gateway?.close();
  gateway = undefined;
});

/** A gateway that knows the key, and answers the rest with `route` (404 when it returns nothing). */
async function serve(
  route: (r: RecordedRequest) => ReturnType<Parameters<typeof startLoopbackGateway>[0]> | undefined,
) {
  gateway = await startLoopbackGateway(async (r) => {
    if (r.headers.authorization !== `Bearer ${KEY}`)
      return { status: 401, body: errorBody("UNAUTHENTICATED", "unknown API key") };
    if (r.method === "GET" && r.path === "/v1/whoami") return { status: 200, body: WHOAMI };
    return (await route(r)) ?? { status: 404, body: errorBody("NOT_FOUND", `no route ${r.path}`) };
  });
  return gateway;
}

async function connect(extra: Record<string, unknown> = {}) {
  const adapter = capturingAdapter();
  context = await initAssembly({
    root: fixtureRoot,
    gatewayUrl: gateway!.url,
    apiKey: KEY,
    adapters: [adapter],
    gatewayClient: FAST,
    ...extra,
  });
  return { context, interceptor: adapter.interceptor! };
}

const actionRequests = () => gateway!.requests.filter((r) => r.path === "/v1/actions");

describe("remote gate: decisions over HTTP", () => {
  it("acts as the key's agent, sends the contract's body with a generated idempotency key, parses the result", async () => {
    await serve((r) => (r.path === "/v1/actions" ? { status: 200, body: executed() } : undefined));
    const { context: ctx } = await connect();
    expect(ctx.agent).toEqual({ id: "release-bot" });
    const who = await ctx.whoami();
    expect(who).toMatchObject({ agentId: "release-bot", gate: "remote", policyHash: "sha256:policy-1" });

    const result = await ctx.execute("read_file", { args: { path: "a.txt" }, metadata: { ticket: "T-1" } });
    expect(result).toEqual(executed());
    const [sent] = actionRequests();
    expect(sent!.method).toBe("POST");
    expect(sent!.headers["content-type"]).toBe("application/json");
    expect(sent!.body).toEqual({
      actionType: "read_file",
      args: { path: "a.txt" },
      metadata: { ticket: "T-1" },
      enforcementMode: "enforce",
      eventId: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    // The agent is the key's: never sent in the body.
    expect(JSON.stringify(sent!.body)).not.toContain("release-bot");

    await ctx.execute("read_file", { eventId: "mine-1" });
    expect(actionRequests()[1]!.body).toMatchObject({ eventId: "mine-1" });
    // Dry runs record nothing, so they carry no idempotency key.
    await ctx.canI("read_file");
    expect(actionRequests()[2]!.body).toEqual({
      actionType: "read_file",
      enforcementMode: "enforce",
      dryRun: true,
    });
  });

  it("retries a 503 with the same idempotency key, then returns the decision", async () => {
    let calls = 0;
    await serve((r) => {
      if (r.path !== "/v1/actions") return undefined;
      calls++;
      return calls <= 2
        ? { status: 503, body: errorBody("GATE_UNAVAILABLE", "store down; retry") }
        : { status: 200, body: executed() };
    });
    const { context: ctx } = await connect();
    const result = await ctx.execute("read_file");
    expect(result.status).toBe("executed");
    const keys = actionRequests().map((r) => (r.body as { eventId: string }).eventId);
    expect(keys).toHaveLength(3);
    expect(new Set(keys).size).toBe(1);
  });

  it("fails closed with GATE_UNAVAILABLE when every attempt fails, and a tool call is denied", async () => {
    await serve((r) =>
      r.path === "/v1/actions" ? { status: 500, body: errorBody("INTERNAL", "boom") } : undefined,
    );
    const { context: ctx, interceptor } = await connect();
    const error = await ctx.execute("read_file").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AssemblyError);
    expect(error).toMatchObject({
      code: "GATE_UNAVAILABLE",
      details: { attempts: 4, lastStatus: 500, lastCode: "INTERNAL" },
    });
    expect(actionRequests()).toHaveLength(4);

    let ran = false;
    const denied = await interceptor
      .intercept({ framework: "test", toolName: "read_file", args: {} }, () => {
        ran = true;
      })
      .catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(AssemblyDeniedError);
    expect(denied).toMatchObject({ reason: "GATE_UNAVAILABLE" });
    expect(ran).toBe(false);
  });

  it("fails closed when the gateway goes away (connection refused)", async () => {
    await serve((r) => (r.path === "/v1/actions" ? { status: 200, body: executed() } : undefined));
    const { context: ctx, interceptor } = await connect();
    await gateway!.close();
    gateway = undefined;
    const error = await ctx.execute("read_file").catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "GATE_UNAVAILABLE" });
    expect((error as Error).message).toMatch(/ECONNREFUSED/);
    const denied = await interceptor
      .intercept({ framework: "test", toolName: "read_file" }, () => "ran")
      .catch((e: unknown) => e);
    expect(denied).toMatchObject({ name: "AssemblyDeniedError", reason: "GATE_UNAVAILABLE" });
  });

  it("fails closed on a slow gateway: each attempt times out", async () => {
    await serve((r) => (r.path === "/v1/actions" ? { hang: true } : undefined));
    const { context: ctx } = await connect({ gatewayClient: { retryDelaysMs: [5], requestTimeoutMs: 150 } });
    const error = await ctx.execute("read_file").catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "GATE_UNAVAILABLE", details: { attempts: 2 } });
    expect((error as Error).message).toMatch(/no answer within 150 ms/);
    expect(actionRequests()).toHaveLength(2);
  });

  it("fails closed on a garbage answer (not JSON, or JSON outside the contract) without trusting it", async () => {
    let answer: { status: number; raw: string } = { status: 200, raw: "<html>proxy error</html>" };
    await serve((r) => (r.path === "/v1/actions" ? answer : undefined));
    const { context: ctx, interceptor } = await connect();
    await expect(ctx.execute("read_file")).rejects.toMatchObject({
      code: "GATE_UNAVAILABLE",
      message: /not JSON/,
    });
    answer = {
      status: 200,
      raw: JSON.stringify({ status: "allowed", auditEventId: "x", conditionsEvaluated: [] }),
    };
    await expect(ctx.execute("read_file")).rejects.toMatchObject({
      code: "GATE_UNAVAILABLE",
      message: /outside the wire contract \(unknown status "allowed"\)/,
    });
    let ran = false;
    await expect(
      interceptor.intercept({ framework: "test", toolName: "read_file" }, () => {
        ran = true;
      }),
    ).rejects.toMatchObject({ reason: "GATE_UNAVAILABLE" });
    expect(ran).toBe(false);
  });

  it("passes a 4xx through with the gateway's code and does not retry it", async () => {
    await serve((r) =>
      r.path === "/v1/actions"
        ? {
            status: 409,
            body: errorBody("IDEMPOTENCY_KEY_REUSED", "eventId e-1 was used for another request", {
              eventId: "e-1",
            }),
          }
        : undefined,
    );
    const { context: ctx } = await connect();
    await expect(ctx.execute("read_file", { eventId: "e-1" })).rejects.toMatchObject({
      code: "IDEMPOTENCY_KEY_REUSED",
      details: { eventId: "e-1", status: 409 },
    });
    expect(actionRequests()).toHaveLength(1);
  });

  it("fail-open (failureMode open): the call runs, and the record reaches the gateway with failOpen once it is back", async () => {
    let down = true;
    const accepted: { failOpen?: boolean; eventId: string }[] = [];
    await serve((r) => {
      if (r.path !== "/v1/actions") return undefined;
      if (down) return { status: 503, body: errorBody("GATE_UNAVAILABLE", "down") };
      accepted.push(r.body as { failOpen?: boolean; eventId: string });
      return { status: 200, body: executed() };
    });
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on("warning", onWarning);
    try {
      const { interceptor } = await connect({ failureMode: "open" });
      const ran = await interceptor.intercept(
        { framework: "test", toolName: "read_file", args: { p: 1 } },
        () => "ran",
      );
      expect(ran).toBe("ran");
      down = false;
      // The next decision finds the gateway back and sends the queued record after it.
      await interceptor.intercept(
        { framework: "test", toolName: "read_file", args: { p: 2 } },
        () => "ran too",
      );
      for (let i = 0; i < 200 && !accepted.some((b) => b.failOpen); i++)
        await new Promise((resolve) => setTimeout(resolve, 10));
      expect(accepted.filter((b) => b.failOpen)).toHaveLength(1);
      const marked = actionRequests().filter((r) => (r.body as { failOpen?: boolean }).failOpen === true);
      expect(marked.at(-1)!.body).toMatchObject({
        actionType: "read_file",
        toolName: "read_file",
        args: { p: 1 },
        failOpen: true,
      });
      // Every send of the queued record used one idempotency key, so it is recorded once.
      expect(new Set(marked.map((r) => (r.body as { eventId: string }).eventId)).size).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 10));
      expect(warnings.some((w) => /running "read_file" because failureMode is "open"/.test(w))).toBe(true);
    } finally {
      process.off("warning", onWarning);
    }
  });
});

describe("remote gate: delegation", () => {
  it("a child's fail-open record keeps its token, so it is recorded as the child's once the gateway is back", async () => {
    let down = true;
    const token = "eyJ.child-token.sig";
    await serve((r) => {
      if (r.method === "POST" && r.path === "/v1/delegations") {
        const agentId = `${WHOAMI.agentId}/worker`;
        const delegation = {
          id: "dlg_1",
          name: "worker",
          agentId,
          parentAgentId: WHOAMI.agentId,
          parentDelegationId: null,
          capabilities: ["read_*"],
          issuedAt: "2026-01-01T00:00:00.000Z",
          expiresAt: "2026-01-01T01:00:00.000Z",
          state: "active",
          chain: [WHOAMI.agentId, agentId],
          depth: 1,
        };
        return { status: 201, body: { delegation, token } };
      }
      if (r.path !== "/v1/actions") return undefined;
      if (down) return { status: 503, body: errorBody("GATE_UNAVAILABLE", "down") };
      return { status: 200, body: executed() };
    });
    const onWarning = () => {};
    process.on("warning", onWarning);
    try {
      const { context, interceptor } = await connect({ failureMode: "open" });
      const child = await context.delegate("worker", { capabilities: ["read_*"] });
      expect(gateway!.requests.find((r) => r.path === "/v1/delegations")!.body).toEqual({
        name: "worker",
        capabilities: ["read_*"],
      });
      const ran = await child.run(() =>
        interceptor.intercept({ framework: "test", toolName: "read_file", args: { p: 1 } }, () => "ran"),
      );
      expect(ran).toBe("ran");
      down = false;
      await context.execute("read_file");
      const marked = () =>
        actionRequests().filter((r) => (r.body as { failOpen?: boolean }).failOpen === true);
      for (let i = 0; i < 200 && marked().at(-1)?.headers["aa-delegation"] !== token; i++)
        await new Promise((resolve) => setTimeout(resolve, 10));
      expect(marked().every((r) => r.headers["aa-delegation"] === token)).toBe(true);
      expect(marked().at(-1)!.body).toMatchObject({ actionType: "read_file", failOpen: true });
      // The child's attempts while the gateway was down carried the token; the root's call did not.
      const [childAttempts, rootCalls] = [true, false].map((child) =>
        actionRequests().filter(
          (r) =>
            (r.body as { failOpen?: boolean }).failOpen !== true && "args" in (r.body as object) === child,
        ),
      );
      expect(childAttempts!.length).toBeGreaterThan(0);
      expect(childAttempts!.every((r) => r.headers["aa-delegation"] === token)).toBe(true);
      expect(rootCalls!.map((r) => r.headers["aa-delegation"])).toEqual([undefined]);
    } finally {
      process.off("warning", onWarning);
    }
  });
});

describe("remote gate: approvals, audit, events", () => {
  it("gate() long-polls a held action, then releases it once approved (a lost answer retried with the same Idempotency-Key)", async () => {
    let waits = 0;
    let releases = 0;
    const approval = (state: string) => ({
      id: "apr_1",
      agentId: "release-bot",
      actionType: "merge_pr",
      state,
      createdAt: "2026-01-01T00:00:00.000Z",
      expiresAt: "2026-01-02T00:00:00.000Z",
      auditEventId: "evt-1",
    });
    await serve((r) => {
      if (r.path === "/v1/actions")
        return {
          status: 200,
          body: { status: "requested", auditEventId: "evt-1", approvalId: "apr_1", conditionsEvaluated: [] },
        };
      if (r.path === "/v1/approvals/apr_1/wait") {
        waits++;
        return { status: 200, body: approval(waits < 2 ? "pending" : "approved") };
      }
      if (r.path === "/v1/approvals/apr_1/release" && r.method === "POST") {
        // The first answer is lost (connection dropped): the client must retry with the same key.
        if (++releases === 1) return { drop: true };
        return { status: 200, body: executed({ auditEventId: "evt-2" }) };
      }
      return undefined;
    });
    const { context: ctx } = await connect();
    const result = await ctx.gate("merge_pr", { gatePollTimeoutMs: 60_000 });
    expect(result).toMatchObject({ status: "executed", auditEventId: "evt-2" });
    const polls = gateway!.requests.filter((r) => r.path.endsWith("/wait"));
    expect(polls).toHaveLength(2);
    // Each long poll asks for at most the contract's 30 s.
    for (const poll of polls) expect(Number(poll.query.timeoutMs)).toBeLessThanOrEqual(30_000);
    const released = gateway!.requests.filter((r) => r.path.endsWith("/release"));
    expect(released).toHaveLength(2);
    expect(released[0]!.headers["idempotency-key"]).toMatch(/^[0-9a-f-]{36}$/);
    expect(released[1]!.headers["idempotency-key"]).toBe(released[0]!.headers["idempotency-key"]);
  });

  it("reads audit pages, verifies, reports outcomes, decides approvals and maps 404 to undefined", async () => {
    await serve((r) => {
      if (r.path === "/v1/audit")
        return { status: 200, body: { items: [{ id: "evt-1", seq: 1 }], nextCursor: "c2" } };
      if (r.path === "/v1/audit/verify")
        return { status: 200, body: { chainValid: true, checked: 1, firstBrokenAtRowId: null } };
      if (r.path === "/v1/audit/evt-1/outcome") return { status: 201, body: { auditEventId: "evt-1" } };
      if (r.path === "/v1/policies")
        return {
          status: 200,
          body: {
            policyHash: "sha256:policy-2",
            policy: {
              version: 1,
              default: "deny",
              policies: [{ name: "reads", action: "read_*", effect: "allow" }],
            },
          },
        };
      if (r.path === "/v1/approvals/missing")
        return { status: 404, body: errorBody("APPROVAL_NOT_FOUND", "no approval missing") };
      if (r.path === "/v1/approvals/apr_9/deny")
        return { status: 403, body: errorBody("FORBIDDEN", "an agent key cannot decide approvals") };
      return undefined;
    });
    const { context: ctx } = await connect();
    expect(await ctx.audit({ limit: 1, actionType: "read_file" })).toEqual({
      items: [{ id: "evt-1", seq: 1 }],
      nextCursor: "c2",
    });
    expect(gateway!.requests.at(-1)!.query).toEqual({ limit: "1", actionType: "read_file" });
    expect(await ctx.verify()).toEqual({ chainValid: true, checked: 1, firstBrokenAtRowId: null });
    await ctx.report("evt-1", { status: "success", message: "done" });
    expect(gateway!.requests.at(-1)!.body).toEqual({ status: "success", message: "done" });
    expect(await ctx.getApproval("missing")).toBeUndefined();
    await expect(ctx.deny("apr_9", "me", "no")).rejects.toMatchObject({
      code: "FORBIDDEN",
      details: { status: 403 },
    });
    await expect(ctx.reserve({ tokens: 10 })).rejects.toMatchObject({ code: "NOT_SUPPORTED" });
    // The policy is the gateway's, read over the wire.
    expect(await ctx.policies()).toEqual([
      { name: "reads", action: "read_*", effect: "allow", conditions: 0 },
    ]);
  });

  it("subscribe() streams events over SSE and resumes after a dropped connection with Last-Event-ID", async () => {
    const event = (seq: number): EngineEvent => ({
      id: `evt-${seq}`,
      seq,
      type: "action.executed",
      time: "2026-01-01T00:00:00.000Z",
      agentId: "release-bot",
      actionType: "read_file",
      data: {},
    });
    const send = (res: ServerResponse, seq: number) =>
      res.write(`id: ${seq}\nevent: action.executed\ndata: ${JSON.stringify(event(seq))}\n\n`);
    let connections = 0;
    await serve((r) => {
      if (r.path !== "/v1/events") return undefined;
      connections++;
      return {
        stream: (res) => {
          res.writeHead(200, { "content-type": "text/event-stream" });
          if (connections === 1) {
            send(res, 1);
            send(res, 2);
            // The gateway (or a proxy) drops the stream.
            setTimeout(() => res.destroy(), 20);
          } else {
            const from = Number(r.headers["last-event-id"]);
            send(res, from + 1);
          }
        },
      };
    });
    const { context: ctx } = await connect();
    const seen: number[] = [];
    const subscription = await ctx.subscribe((e) => void seen.push(e.seq), {
      events: ["action.executed"],
      agentFilter: "release-bot",
    });
    for (let i = 0; i < 300 && seen.length < 3; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    subscription.unsubscribe();
    expect(seen).toEqual([1, 2, 3]);
    expect(subscription.lastSeq).toBe(3);
    const streams = gateway!.requests.filter((r) => r.path === "/v1/events");
    expect(streams[0]!.query).toEqual({ events: "action.executed", agent: "release-bot" });
    expect(streams[1]!.headers["last-event-id"]).toBe("2");
    expect(streams[1]!.query.after).toBe("2");
  });

  it("subscribe() resumes from the start the gateway named when the stream dropped before any event", async () => {
    let connections = 0;
    await serve((r) => {
      if (r.path !== "/v1/events") return undefined;
      connections++;
      return {
        stream: (res) => {
          res.writeHead(200, { "content-type": "text/event-stream" });
          if (connections === 1) {
            // The gateway names its start (the head, seq 7) and the stream drops before any event.
            res.write(": connected\n\nid: 7\n\n");
            setTimeout(() => res.destroy(), 20);
          } else {
            res.write(": connected\n\nid: 7\n\n");
            res.write(
              `id: 8\nevent: action.executed\ndata: ${JSON.stringify({
                id: "evt-8",
                seq: 8,
                type: "action.executed",
                time: "2026-01-01T00:00:00.000Z",
                agentId: "release-bot",
                actionType: "read_file",
                data: {},
              })}\n\n`,
            );
          }
        },
      };
    });
    const { context: ctx } = await connect();
    const seen: number[] = [];
    const subscription = await ctx.subscribe((e) => void seen.push(e.seq));
    for (let i = 0; i < 300 && seen.length < 1; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    subscription.unsubscribe();
    expect(seen).toEqual([8]);
    const streams = gateway!.requests.filter((r) => r.path === "/v1/events");
    expect(streams[0]!.query.after).toBeUndefined();
    expect(streams[1]!.headers["last-event-id"]).toBe("7");
    expect(streams[1]!.query.after).toBe("7");
  });
});

describe("remote gate: configuration", () => {
  it("takes AA_GATEWAY_URL / AA_API_KEY, and refuses a local policy or store beside a gateway", async () => {
    await serve(() => undefined);
    const saved = { url: process.env.AA_GATEWAY_URL, key: process.env.AA_API_KEY };
    process.env.AA_GATEWAY_URL = gateway!.url;
    process.env.AA_API_KEY = KEY;
    try {
      context = await initAssembly({ root: fixtureRoot, adapters: [] });
      expect((await context.whoami()).gate).toBe("remote");
      await context.shutdown();
      context = undefined;
      await expect(
        initAssembly({ root: fixtureRoot, adapters: [], policy: { version: 1, policies: [] } }),
      ).rejects.toThrow(/policy is set together with the gateway/);
      await expect(
        initAssembly({ root: fixtureRoot, adapters: [], store: ":memory:" }),
      ).rejects.toBeInstanceOf(ConfigurationError);
      delete process.env.AA_API_KEY;
      await expect(initAssembly({ root: fixtureRoot, adapters: [] })).rejects.toThrow(/needs an API key/);
    } finally {
      for (const [name, value] of [
        ["AA_GATEWAY_URL", saved.url],
        ["AA_API_KEY", saved.key],
      ] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  it("rejects an agent id that is not the key's, and a key the gateway does not know", async () => {
    await serve(() => undefined);
    await expect(connect({ agent: { id: "someone-else" } })).rejects.toThrow(
      /does not match the gateway API key/,
    );
    await expect(connect({ apiKey: "aa_agent_k1_wrong" })).rejects.toMatchObject({ code: "UNAUTHENTICATED" });
  });

  it("fails to start when the gateway cannot be reached", async () => {
    const url = await unusedPortUrl();
    await expect(
      initAssembly({ root: fixtureRoot, adapters: [], gatewayUrl: url, apiKey: KEY, gatewayClient: FAST }),
    ).rejects.toMatchObject({ code: "GATE_UNAVAILABLE" });
  });
});

/**
 * The egress proxy against real loopback servers: an HTTP upstream that counts what reaches it and
 * a TCP echo server behind CONNECT. Clients speak raw HTTP to the proxy (node:http, node:net), as
 * curl or undici's ProxyAgent do.
 */
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from "node:http";
import { createServer as createTcpServer, type Server as TcpServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openEngine } from "@aa/engine";
import { parsePolicy } from "@aa/policy";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEgressProxy, createKey, type EgressProxy } from "../src/index.js";

const POLICY = parsePolicy(
  `version: 1
default: deny
policies:
  - name: egress-loopback-ip
    action: http.request
    effect: allow
    when:
      - { field: args.host, op: in, value: ["127.0.0.1"] }
  - name: egress-review
    action: http.request
    effect: require_approval
    when:
      - { field: args.path, op: starts_with, value: /review }
`,
  { source: "egress test" },
);

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

let upstream: Server;
let upstreamPort: number;
const seen: Seen[] = [];
let echo: TcpServer;
let echoPort: number;
let echoConnections = 0;
const dir = mkdtempSync(join(tmpdir(), "aa-egress-"));

beforeAll(async () => {
  upstream = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      res.writeHead(200, { "content-type": "text/plain", "x-upstream": "yes" });
      res.end(`upstream saw ${req.method} ${req.url} ${body}`);
    });
  });
  upstream.listen(0, "127.0.0.1");
  await once(upstream, "listening");
  upstreamPort = (upstream.address() as { port: number }).port;
  echo = createTcpServer((socket) => {
    echoConnections += 1;
    socket.pipe(socket);
  });
  echo.listen(0, "127.0.0.1");
  await once(echo, "listening");
  echoPort = (echo.address() as { port: number }).port;
});

afterAll(async () => {
  upstream.closeAllConnections();
  await new Promise((r) => upstream.close(r));
  await new Promise((r) => echo.close(r));
  rmSync(dir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: error bodies are JSON
  json: any;
}

/** One request through the proxy, the way HTTP_PROXY clients send it (absolute URI). */
function viaProxy(
  proxy: string,
  method: string,
  target: string,
  options: { headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  const p = new URL(proxy);
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: p.hostname,
      port: Number(p.port),
      method,
      path: target,
      headers: options.headers ?? {},
      agent: false,
    });
    req.on("error", reject);
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let json: unknown;
        if ((res.headers["content-type"] ?? "").includes("json")) json = JSON.parse(text);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.end(options.body);
  });
}

/** A CONNECT tunnel; when it opens, sends `payload` and reads it back from the echo server. */
function tunnel(
  proxy: string,
  authority: string,
  payload: string,
  headers: Record<string, string> = {},
): Promise<Answer & { echoed?: string }> {
  const p = new URL(proxy);
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: p.hostname,
      port: Number(p.port),
      method: "CONNECT",
      path: authority,
      headers,
      agent: false,
    });
    req.on("error", reject);
    req.on("connect", (res, socket, head) => {
      const chunks: Buffer[] = [head];
      socket.on("data", (c: Buffer) => {
        chunks.push(c);
        if (res.statusCode === 200 && Buffer.concat(chunks).toString("utf8") === payload) socket.end();
      });
      socket.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        if (res.statusCode === 200) {
          resolve({ status: 200, headers: res.headers, text: "", json: undefined, echoed: text });
        } else {
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: JSON.parse(text) });
        }
      });
      if (res.statusCode === 200) socket.write(payload);
    });
    req.end();
  });
}

describe("egress proxy with a fixed agent (SQLite)", () => {
  let proxy: EgressProxy;
  let url: string;
  const database = `sqlite:${join(dir, "fixed.db")}`;

  beforeAll(async () => {
    proxy = await createEgressProxy({ policy: POLICY, database, agent: "crawler" });
    url = await proxy.listen({ port: 0 });
  });
  afterAll(async () => {
    await proxy.close();
  });

  it("forwards an allowed request with its body, the URL's host as Host, and no proxy credentials", async () => {
    const before = seen.length;
    const answer = await viaProxy(url, "POST", `http://127.0.0.1:${upstreamPort}/items?page=2`, {
      headers: {
        "content-type": "text/plain",
        "proxy-authorization": "Basic Zm9vOmJhcg==",
        host: "evil.test",
      },
      body: "hello",
    });
    expect(answer.status).toBe(200);
    expect(answer.text).toBe("upstream saw POST /items?page=2 hello");
    expect(answer.headers["x-upstream"]).toBe("yes");
    expect(answer.headers["x-aa-audit-event-id"]).toMatch(/\S/);
    expect(seen.length).toBe(before + 1);
    const request = seen.at(-1)!;
    expect(request.headers.host).toBe(`127.0.0.1:${upstreamPort}`);
    expect(request.headers["proxy-authorization"]).toBeUndefined();
  });

  it("answers a denied host 403 naming the policy and the failed condition; the upstream never sees it", async () => {
    const before = seen.length;
    const answer = await viaProxy(url, "GET", `http://localhost:${upstreamPort}/secret`, {
      headers: { host: `127.0.0.1:${upstreamPort}` },
    });
    expect(answer.status).toBe(403);
    expect(answer.json.error).toMatchObject({
      code: "EGRESS_DENIED",
      reason: "CONDITIONS_DENIED",
      policy: "egress-loopback-ip",
      conditions: [expect.objectContaining({ field: "args.host", operator: "in", actual: "localhost" })],
    });
    expect(answer.json.error.message).toContain(`GET http://localhost:${upstreamPort}/secret`);
    expect(answer.json.error.auditEventId).toMatch(/\S/);
    expect(seen.length).toBe(before);
  });

  it("tunnels an allowed CONNECT and refuses a denied one before opening the upstream connection", async () => {
    const allowed = await tunnel(url, `127.0.0.1:${echoPort}`, "ping through the tunnel");
    expect(allowed.status).toBe(200);
    expect(allowed.echoed).toBe("ping through the tunnel");
    const connectionsBefore = echoConnections;
    const denied = await tunnel(url, `localhost:${echoPort}`, "never sent");
    expect(denied.status).toBe(403);
    expect(denied.json.error).toMatchObject({ code: "EGRESS_DENIED", policy: "egress-loopback-ip" });
    expect(echoConnections).toBe(connectionsBefore);
  });

  it("answers a request held for approval 403 with the approval id", async () => {
    const before = seen.length;
    const answer = await viaProxy(url, "GET", `http://127.0.0.1:${upstreamPort}/review/1`);
    expect(answer.status).toBe(403);
    expect(answer.json.error).toMatchObject({
      code: "EGRESS_APPROVAL_PENDING",
      reason: "APPROVAL_REQUIRED",
      policy: "egress-review",
      approvalId: expect.stringMatching(/\S/),
    });
    expect(seen.length).toBe(before);
  });

  it("says it is a proxy when asked for a path, and refuses a malformed CONNECT target", async () => {
    const answer = await viaProxy(url, "GET", "/");
    expect(answer.status).toBe(400);
    expect(answer.json.error.code).toBe("NOT_A_PROXY_REQUEST");
    const bad = await tunnel(url, `127.0.0.1:0`, "x");
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toMatch(/host:port/);
  });

  it("answers 502 when an allowed upstream cannot be reached", async () => {
    const closed = createTcpServer();
    closed.listen(0, "127.0.0.1");
    await once(closed, "listening");
    const port = (closed.address() as { port: number }).port;
    await new Promise((r) => closed.close(r));
    const answer = await viaProxy(url, "GET", `http://127.0.0.1:${port}/`);
    expect(answer.status).toBe(502);
    expect(answer.json.error.code).toBe("UPSTREAM_UNREACHABLE");
  });

  it("records every decision in the audit chain, which verifies", async () => {
    await proxy.close();
    const engine = await openEngine({ policy: POLICY, store: join(dir, "fixed.db") });
    try {
      const page = await engine.audit({ actionType: "http.request", limit: 100 });
      const summary = page.items.map((e) => [e.agent, e.status, (e.args as { host: string }).host]);
      expect(summary).toEqual(
        expect.arrayContaining([
          ["crawler", "executed", "127.0.0.1"],
          ["crawler", "denied", "localhost"],
          ["crawler", "requested", "127.0.0.1"],
        ]),
      );
      expect(page.items.find((e) => (e.args as { method: string }).method === "CONNECT")).toBeDefined();
      expect(await engine.verify()).toMatchObject({ chainValid: true, firstBrokenAtRowId: null });
    } finally {
      await engine.close();
    }
  });
});

describe("egress proxy with agent keys", () => {
  let proxy: EgressProxy;
  let url: string;
  let agentKey: string;
  let operatorKey: string;

  beforeAll(async () => {
    proxy = await createEgressProxy({ policy: POLICY, database: ":memory:" });
    agentKey = (await createKey(proxy.store, { kind: "agent", orgId: "acme", agentId: "fetcher" })).key;
    operatorKey = (await createKey(proxy.store, { kind: "operator", orgId: "acme" })).key;
    url = await proxy.listen({ port: 0 });
  });
  afterAll(async () => {
    await proxy.close();
  });

  const target = () => `http://127.0.0.1:${upstreamPort}/keyed`;
  const basic = (user: string, password: string) =>
    `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

  it("asks for credentials (407) when none are sent, and refuses a wrong key", async () => {
    const none = await viaProxy(url, "GET", target());
    expect(none.status).toBe(407);
    expect(none.headers["proxy-authenticate"]).toBe('Basic realm="aa proxy"');
    expect(none.json.error.message).toMatch(/aa keys create --kind agent/);
    const wrong = await viaProxy(url, "GET", target(), {
      headers: { "proxy-authorization": basic("agent", `${agentKey.slice(0, -4)}0000`) },
    });
    expect(wrong.status).toBe(407);
    const tunnelled = await tunnel(url, `127.0.0.1:${echoPort}`, "x");
    expect(tunnelled.status).toBe(407);
  });

  it("decides as the key's agent with Basic (key as password) or Bearer", async () => {
    const viaBasic = await viaProxy(url, "GET", target(), {
      headers: { "proxy-authorization": basic("agent", agentKey) },
    });
    expect(viaBasic.status).toBe(200);
    const viaBearer = await tunnel(url, `127.0.0.1:${echoPort}`, "keyed tunnel", {
      "proxy-authorization": `Bearer ${agentKey}`,
    });
    expect(viaBearer.echoed).toBe("keyed tunnel");
  });

  it("refuses an operator key: egress is decided for an agent", async () => {
    const answer = await viaProxy(url, "GET", target(), {
      headers: { "proxy-authorization": `Bearer ${operatorKey}` },
    });
    expect(answer.status).toBe(403);
    expect(answer.json.error.code).toBe("FORBIDDEN");
  });
});

describe("egress proxy approval wait", () => {
  it("forwards a held request once a reviewer in another engine approves it within approvalWaitMs", async () => {
    const file = join(dir, "wait.db");
    const proxy = await createEgressProxy({
      policy: POLICY,
      database: `sqlite:${file}`,
      agent: "crawler",
      approvalWaitMs: 60_000,
    });
    const url = await proxy.listen({ port: 0 });
    const reviewer = await openEngine({ policy: POLICY, store: file });
    try {
      const before = seen.length;
      const pending = viaProxy(url, "GET", `http://127.0.0.1:${upstreamPort}/review/2`);
      let approvalId: string | undefined;
      while (approvalId === undefined) {
        approvalId = (await reviewer.listApprovals({ state: "pending" }))[0]?.id;
        if (approvalId === undefined) await new Promise((r) => setTimeout(r, 20));
      }
      await reviewer.approve(approvalId, "ops-alice", "fine");
      const answer = await pending;
      expect(answer.status).toBe(200);
      expect(seen.length).toBe(before + 1);
    } finally {
      await reviewer.close();
      await proxy.close();
    }
  });

  it("refuses options that would widen who acts as the fixed agent or hold sockets for hours", async () => {
    const proxy = await createEgressProxy({ policy: POLICY, database: ":memory:", agent: "crawler" });
    await expect(proxy.listen({ port: 0, host: "0.0.0.0" })).rejects.toThrow(/loopback only/);
    await proxy.close();
    await expect(
      createEgressProxy({ policy: POLICY, database: ":memory:", approvalWaitMs: 8 * 3600_000 }),
    ).rejects.toThrow(/approvalWaitMs/);
  });
});

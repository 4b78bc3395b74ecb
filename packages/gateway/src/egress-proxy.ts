/**
 * The egress proxy (`aa proxy`): an HTTP forward proxy on loopback that puts every outgoing request
 * of a process (and of its children, through HTTP_PROXY / HTTPS_PROXY) to the gate before it leaves.
 *
 * - An absolute-URI request (`GET http://host/path`) is one decision; allowed, it is forwarded.
 * - A CONNECT tunnel (what clients open for https://) is one decision before any byte is tunnelled;
 *   the TLS inside is never intercepted, so only the host and port are known.
 * - Denied: 403 with a JSON body naming the policy and the failed conditions; nothing reaches the
 *   upstream. Held for approval: 403 naming the approval (or, with `approvalWaitMs`, a short wait).
 * - Identity: a fixed agent (`agent`, the local case) or the agent API key the client sends in
 *   `Proxy-Authorization` (the gateway's key store), never both.
 *
 * Every decision goes through the org's engine like any other: redacted, chained, audited.
 */
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import { isIP, connect as netConnect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import {
  type ActionResult,
  type DecisionEngine,
  EGRESS_ACTION_TYPE,
  type EgressArgs,
  egressArgsForTunnel,
  egressArgsForUrl,
} from "@aa/engine";
import type { CompiledPolicy, PolicyDocument } from "@aa/policy";
import { EnginePool, type SharedEngineOptions } from "./engines.js";
import { GatewayError } from "./errors.js";
import {
  type DatabaseLocation,
  engineStoreFor,
  type GatewayStore,
  openGatewayStore,
  parseDatabase,
} from "./gateway-store.js";
import { KeyVerifier } from "./keys.js";

/** Default port of `aa proxy` (the gateway's is 7391). */
export const DEFAULT_PROXY_PORT = 7392;

/** Options of {@link createEgressProxy}. */
export interface EgressProxyOptions {
  /** The policy each org enforces (an org's policy stored by an admin, `PUT /v1/policies`, wins). */
  policy: CompiledPolicy | PolicyDocument;
  /**
   * Where decisions are recorded: `sqlite:<file>` (or a file path; an embedded agent's
   * `.aa/assembly.db` works), a `postgres://` URL shared with gateways, or `:memory:` (tests).
   * Default `sqlite:.aa/assembly.db`.
   */
  database?: string;
  /**
   * A fixed agent id: every request through this proxy is that agent's, no credentials asked.
   * Only on a loopback address (anyone who can reach the port acts as this agent). Without it,
   * clients authenticate with an agent API key in `Proxy-Authorization` (`Basic` with the key as
   * password, e.g. `HTTP_PROXY=http://agent:<key>@127.0.0.1:7392`, or `Bearer <key>`).
   */
  agent?: string;
  /** Org of the fixed `agent` (default `"default`", the embedded gate's org). */
  orgId?: string;
  /**
   * How long a request held for approval waits for a reviewer before it is answered 403 with the
   * approval id, in ms (default 0: answered at once). At most 5 minutes: a proxy cannot hold a
   * client's socket for the hours an approval may take.
   */
  approvalWaitMs?: number;
  /** Limit for opening the connection to the upstream and for its silence, in ms (default 30 000). */
  upstreamTimeoutMs?: number;
  /** Settings for every org's engine (checkpoint interval, circuit breaker, budgets, ...). */
  engine?: SharedEngineOptions;
}

/** A running (or ready to listen) egress proxy. */
export interface EgressProxy {
  readonly database: DatabaseLocation;
  /** Keys and policies beside the audit store. */
  readonly store: GatewayStore;
  /** Starts listening; resolves to the proxy URL (`http://127.0.0.1:7392`). */
  listen(options?: { port?: number; host?: string }): Promise<string>;
  /** Stops accepting, ends open tunnels and requests, closes every engine. */
  close(): Promise<void>;
}

const MAX_APPROVAL_WAIT_MS = 5 * 60 * 1000;
const DEFAULT_UPSTREAM_TIMEOUT_MS = 30_000;
const REALM = 'Basic realm="aa proxy"';

/** Headers that belong to one hop (RFC 9110 §7.6.1) and are never forwarded. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/** Who a request through the proxy acts for. */
interface Caller {
  orgId: string;
  agentId: string;
}

/** An answer the proxy gives instead of forwarding. */
class ProxyRefusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** Builds an egress proxy over `options.database`; call `listen()` to serve it. */
export async function createEgressProxy(options: EgressProxyOptions): Promise<EgressProxy> {
  const settings = validateOptions(options);
  const database = parseDatabase(options.database ?? "sqlite:.aa/assembly.db");
  const store = await openGatewayStore(database);
  const pool = new EnginePool(engineStoreFor(database), store, options.policy, options.engine ?? {});
  const keys = new KeyVerifier(store, 1000);
  const sockets = new Set<Duplex>();
  const closing = new AbortController();

  const server = createServer((req, res) => {
    handleRequest(req, res).catch((error: unknown) => refuse(res, asRefusal(error)));
  });
  server.on("connect", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    track(socket);
    handleConnect(req, socket, head).catch((error: unknown) => refuseSocket(socket, asRefusal(error)));
  });
  server.on("connection", (socket: Socket) => track(socket));

  function track(socket: Duplex): void {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  }

  async function identify(req: IncomingMessage): Promise<Caller> {
    if (settings.agent !== undefined) return { orgId: settings.orgId, agentId: settings.agent };
    const header = req.headers["proxy-authorization"];
    if (header === undefined || header === "") {
      throw new ProxyRefusal(
        407,
        "PROXY_AUTHENTICATION_REQUIRED",
        "This Agent Assembly proxy needs the calling agent's API key: put it in the proxy URL as the password (HTTP_PROXY=http://agent:<key>@host:port) or send `Proxy-Authorization: Bearer <key>`; create one with `aa keys create --kind agent`",
        {},
        { "proxy-authenticate": REALM },
      );
    }
    let principal: Awaited<ReturnType<KeyVerifier["verify"]>>;
    try {
      principal = await keys.verify(`Bearer ${keyFromProxyAuthorization(header)}`);
    } catch (error) {
      if (error instanceof GatewayError && error.status === 401) {
        throw new ProxyRefusal(
          407,
          "PROXY_AUTHENTICATION_FAILED",
          error.message,
          {},
          { "proxy-authenticate": REALM },
        );
      }
      throw error;
    }
    if (principal.kind !== "agent" || principal.agentId === undefined) {
      throw new ProxyRefusal(
        403,
        "FORBIDDEN",
        `A ${principal.kind} key cannot send traffic through the proxy: egress is decided for an agent; use an agent key (aa keys create --kind agent)`,
        { role: principal.kind },
      );
    }
    return { orgId: principal.orgId, agentId: principal.agentId };
  }

  /**
   * One gate decision; resolves only when the request may go out. A held request waits up to
   * `approvalWaitMs` for a reviewer, and is released (recorded as executed) when approved.
   */
  async function decide(caller: Caller, args: EgressArgs, client: Duplex): Promise<ActionResult> {
    const engine = await pool.get(caller.orgId);
    const result = await gateCall(() =>
      engine.decide({ agent: { id: caller.agentId }, actionType: EGRESS_ACTION_TYPE, args }),
    );
    if (result.status === "executed") return result;
    if (result.status === "requested" && result.approvalId !== undefined) {
      return awaitApproval(engine, caller, result, args, client);
    }
    throw denial(result, args);
  }

  async function awaitApproval(
    engine: DecisionEngine,
    caller: Caller,
    held: ActionResult,
    args: EgressArgs,
    client: Duplex,
  ): Promise<ActionResult> {
    const approvalId = held.approvalId!;
    if (settings.approvalWaitMs > 0) {
      const gone = new AbortController();
      const stop = () => gone.abort();
      client.once("close", stop);
      closing.signal.addEventListener("abort", stop, { once: true });
      try {
        const approval = await gateCall(() =>
          engine.awaitApproval(approvalId, { timeoutMs: settings.approvalWaitMs, signal: gone.signal }),
        );
        if (approval.state === "approved") {
          const released = await gateCall(() => engine.releaseApproval(approvalId, caller.agentId));
          if (released.status === "executed") return released;
          throw denial(released, args);
        }
        if (approval.state === "denied") {
          throw new ProxyRefusal(
            403,
            "EGRESS_DENIED",
            `Agent Assembly: ${describeTarget(args)} was denied by reviewer ${approval.decidedBy ?? "(unknown)"}${approval.reason ? `: ${approval.reason}` : ""} (DENIED_BY_REVIEWER, approval ${approvalId})`,
            {
              reason: "DENIED_BY_REVIEWER",
              policy: held.policyName,
              approvalId,
              auditEventId: held.auditEventId,
            },
          );
        }
      } finally {
        client.off("close", stop);
        closing.signal.removeEventListener("abort", stop);
      }
    }
    throw new ProxyRefusal(
      403,
      "EGRESS_APPROVAL_PENDING",
      `Agent Assembly: ${describeTarget(args)} needs approval ${approvalId} (policy "${held.policyName ?? "?"}"). A proxy cannot hold the connection for the hours a review may take: approve it (aa approvals approve ${approvalId}); a retried request is a new decision, so egress that needs review is best made with the governed fetch (assembly.fetch), which waits`,
      {
        reason: "APPROVAL_REQUIRED",
        policy: held.policyName,
        approvalId,
        auditEventId: held.auditEventId,
        ...(held.timeoutAt === undefined ? {} : { timeoutAt: held.timeoutAt }),
      },
    );
  }

  async function handleRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = absoluteTarget(req);
    const caller = await identify(req);
    const args = egressArgsForUrl(req.method ?? "GET", target);
    if (typeof args === "string") throw new ProxyRefusal(400, "INVALID_PROXY_REQUEST", args);
    const decision = await decide(caller, args, req.socket);
    await forward(req, res, target, decision, settings.upstreamTimeoutMs);
  }

  async function handleConnect(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on("error", () => socket.destroy());
    const args = egressArgsForTunnel(req.url ?? "");
    if (typeof args === "string") throw new ProxyRefusal(400, "INVALID_PROXY_REQUEST", args);
    const caller = await identify(req);
    const decision = await decide(caller, args, socket);
    if (socket.destroyed) return;
    const upstream = netConnect({ host: args.host, port: args.port });
    track(upstream);
    upstream.setTimeout(settings.upstreamTimeoutMs, () =>
      upstream.destroy(
        new Error(`no answer from ${args.host}:${args.port} in ${settings.upstreamTimeoutMs} ms`),
      ),
    );
    let established = false;
    upstream.once("connect", () => {
      established = true;
      upstream.setTimeout(0);
      socket.write(
        `HTTP/1.1 200 Connection Established\r\nx-aa-audit-event-id: ${decision.auditEventId}\r\n\r\n`,
      );
      if (head.length > 0) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.on("error", (error) => {
      if (!established) {
        refuseSocket(socket, upstreamFailure(args, error));
      } else {
        socket.destroy();
      }
    });
    socket.once("close", () => upstream.destroy());
    upstream.once("close", () => socket.end());
  }

  let closed = false;
  return {
    database,
    store,
    listen(listenOptions = {}) {
      const host = listenOptions.host ?? "127.0.0.1";
      const port = listenOptions.port ?? DEFAULT_PROXY_PORT;
      if (settings.agent !== undefined && !isLoopback(host)) {
        return Promise.reject(
          new GatewayError(
            "INVALID_OPTIONS",
            400,
            `A proxy with a fixed agent ("${settings.agent}") listens on loopback only (got ${host}): anyone reaching it would act as that agent. Listen on 127.0.0.1, or drop the fixed agent so clients authenticate with their agent key`,
            { option: "host" },
          ),
        );
      }
      return new Promise<string>((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          server.off("error", reject);
          const address = server.address();
          const bound = typeof address === "object" && address !== null ? address.port : port;
          resolve(`http://${isIP(host) === 6 ? `[${host}]` : host}:${bound}`);
        });
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      closing.abort();
      const problems: unknown[] = [];
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      if (server.listening) await stopped;
      await pool.close().catch((error: unknown) => problems.push(error));
      await store.close().catch((error: unknown) => problems.push(error));
      if (problems.length > 0) throw new AggregateError(problems, "the egress proxy did not close cleanly");
    },
  };
}

function validateOptions(options: EgressProxyOptions): {
  agent: string | undefined;
  orgId: string;
  approvalWaitMs: number;
  upstreamTimeoutMs: number;
} {
  const invalid = (option: string, message: string) =>
    new GatewayError("INVALID_OPTIONS", 400, message, { option });
  if (options === null || typeof options !== "object" || options.policy === undefined) {
    throw invalid("policy", "createEgressProxy(options) needs a `policy`");
  }
  if (options.agent !== undefined && (typeof options.agent !== "string" || options.agent.trim() === "")) {
    throw invalid("agent", '`agent` must be a non-empty agent id, e.g. "release-bot"');
  }
  if (options.orgId !== undefined && (typeof options.orgId !== "string" || options.orgId === "")) {
    throw invalid("orgId", "`orgId` must be a non-empty string");
  }
  if (options.orgId !== undefined && options.agent === undefined) {
    throw invalid("orgId", "`orgId` applies to a fixed `agent`; with agent keys the key names the org");
  }
  const wait = options.approvalWaitMs ?? 0;
  if (!Number.isSafeInteger(wait) || wait < 0 || wait > MAX_APPROVAL_WAIT_MS) {
    throw invalid(
      "approvalWaitMs",
      `\`approvalWaitMs\` must be an integer from 0 to ${MAX_APPROVAL_WAIT_MS} (5 minutes): a proxy cannot hold a connection for the hours an approval may take`,
    );
  }
  const timeout = options.upstreamTimeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS;
  if (!Number.isSafeInteger(timeout) || timeout <= 0) {
    throw invalid("upstreamTimeoutMs", "`upstreamTimeoutMs` must be a positive integer of ms");
  }
  return {
    agent: options.agent,
    orgId: options.orgId ?? "default",
    approvalWaitMs: wait,
    upstreamTimeoutMs: timeout,
  };
}

/** The key in `Basic base64(user:key)` (the key is the password, or the user when no password) or `Bearer key`. */
function keyFromProxyAuthorization(header: string): string {
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (bearer) return bearer[1]!;
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (basic) {
    const text = Buffer.from(basic[1]!, "base64").toString("utf8");
    const colon = text.indexOf(":");
    const password = colon === -1 ? "" : text.slice(colon + 1);
    return password !== "" ? password : colon === -1 ? text : text.slice(0, colon);
  }
  return header.trim().split(/\s+/)[1] ?? "";
}

/** The request's absolute URI; a proxy serves nothing of its own. */
function absoluteTarget(req: IncomingMessage): URL {
  const raw = req.url ?? "";
  if (raw.startsWith("/")) {
    throw new ProxyRefusal(
      400,
      "NOT_A_PROXY_REQUEST",
      `This is the Agent Assembly egress proxy, not a web server: send requests through it as a proxy (HTTP_PROXY=http://${req.headers.host ?? "127.0.0.1:7392"}), not to it (got ${req.method} ${raw.split("?")[0]})`,
    );
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ProxyRefusal(
      400,
      "INVALID_PROXY_REQUEST",
      `the request target ${JSON.stringify(raw.slice(0, 300))} is not an absolute URL`,
    );
  }
  if (url.protocol === "https:") {
    throw new ProxyRefusal(
      400,
      "INVALID_PROXY_REQUEST",
      "https:// goes through a CONNECT tunnel (the proxy does not terminate TLS); configure the client with HTTPS_PROXY",
    );
  }
  if (url.protocol !== "http:") {
    throw new ProxyRefusal(
      400,
      "INVALID_PROXY_REQUEST",
      `the proxy forwards http: requests and CONNECT tunnels, not ${url.protocol}`,
    );
  }
  return url;
}

/** Sends the allowed request to its upstream and streams the answer back. */
function forward(
  req: IncomingMessage,
  res: ServerResponse,
  target: URL,
  decision: ActionResult,
  timeoutMs: number,
): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  const listed = new Set(
    String(req.headers.connection ?? "")
      .split(",")
      .map((h) => h.trim().toLowerCase())
      .filter(Boolean),
  );
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || listed.has(name)) continue;
    headers[name] = value;
  }
  // The policy decided on the URL's host; the upstream must see that host, not another Host header.
  headers.host = target.host;
  return new Promise<void>((resolve) => {
    const upstream = httpRequest({
      host: target.hostname.startsWith("[") ? target.hostname.slice(1, -1) : target.hostname,
      port: target.port === "" ? 80 : Number(target.port),
      method: req.method,
      path: `${target.pathname}${target.search}`,
      headers,
      setHost: false,
      timeout: timeoutMs,
    });
    upstream.on("timeout", () =>
      upstream.destroy(new Error(`no answer from ${target.host} in ${timeoutMs} ms`)),
    );
    upstream.on("response", (answer) => {
      const out: Record<string, string | string[]> = {};
      const answerListed = new Set(
        String(answer.headers.connection ?? "")
          .split(",")
          .map((h) => h.trim().toLowerCase())
          .filter(Boolean),
      );
      for (const [name, value] of Object.entries(answer.headers)) {
        if (value === undefined || HOP_BY_HOP.has(name) || answerListed.has(name)) continue;
        out[name] = value;
      }
      out["x-aa-audit-event-id"] = decision.auditEventId;
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, out);
      answer.pipe(res);
      answer.on("error", () => res.destroy());
      res.once("close", () => {
        answer.destroy();
        resolve();
      });
    });
    upstream.on("error", (error) => {
      if (!res.headersSent) {
        const refusal = upstreamFailure(egressArgsForUrl(req.method ?? "GET", target) as EgressArgs, error);
        refuse(res, refusal);
      } else {
        res.destroy();
      }
      resolve();
    });
    req.pipe(upstream);
  });
}

function upstreamFailure(args: EgressArgs, error: Error): ProxyRefusal {
  const timedOut = /no answer from/.test(error.message);
  return new ProxyRefusal(
    timedOut ? 504 : 502,
    timedOut ? "UPSTREAM_TIMEOUT" : "UPSTREAM_UNREACHABLE",
    `Allowed, but ${args.host}:${args.port} could not be reached: ${error.message}`,
    { host: args.host, port: args.port },
  );
}

/** Engine failures deny (fail closed): 503, nothing forwarded. */
async function gateCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (cause) {
    if (cause instanceof ProxyRefusal) throw cause;
    const code = (cause as { code?: unknown })?.code;
    throw new ProxyRefusal(
      503,
      "GATE_UNAVAILABLE",
      `The gate could not decide (${typeof code === "string" ? `${code}: ` : ""}${(cause as Error)?.message ?? String(cause)}); nothing was forwarded`,
      {},
      { "retry-after": "1" },
    );
  }
}

function describeTarget(args: EgressArgs): string {
  return args.url !== undefined ? `${args.method} ${args.url}` : `CONNECT ${args.host}:${args.port}`;
}

function denial(result: ActionResult, args: EgressArgs): ProxyRefusal {
  const reason = result.denialReason ?? "CONDITIONS_DENIED";
  // The deciding policy's failed conditions: a rule that did not apply failed its own, irrelevantly.
  const failed = result.conditionsEvaluated.filter(
    (c) => !c.result && (result.policyName === undefined || c.policy === result.policyName),
  );
  let message = `Agent Assembly denied ${EGRESS_ACTION_TYPE} ${describeTarget(args)} (${reason})`;
  if (result.policyName) message += ` by policy "${result.policyName}"`;
  if (failed.length > 0) {
    message += `. Failed conditions: ${failed
      .map(
        (c) =>
          `${c.field} ${c.operator} ${JSON.stringify(c.expected)} (actual: ${JSON.stringify(c.actual) ?? "missing"})`,
      )
      .join("; ")}`;
  } else if (reason === "NO_MATCHING_POLICY") {
    message += `. No policy allows ${EGRESS_ACTION_TYPE} to ${args.host}; nothing was sent`;
  } else if (result.message) {
    message += `. ${result.message}`;
  }
  return new ProxyRefusal(403, "EGRESS_DENIED", `${message}.`, {
    reason,
    policy: result.policyName,
    conditions: failed,
    auditEventId: result.auditEventId,
    ...(result.approvalId === undefined ? {} : { approvalId: result.approvalId }),
  });
}

function asRefusal(error: unknown): ProxyRefusal {
  if (error instanceof ProxyRefusal) return error;
  if (error instanceof GatewayError)
    return new ProxyRefusal(error.status, error.code, error.message, error.details);
  return new ProxyRefusal(
    503,
    "GATE_UNAVAILABLE",
    `The proxy could not decide (${(error as Error)?.message ?? String(error)}); nothing was forwarded`,
  );
}

function refusalBody(refusal: ProxyRefusal): string {
  return JSON.stringify({ error: { code: refusal.code, message: refusal.message, ...refusal.details } });
}

function refuse(res: ServerResponse, refusal: ProxyRefusal): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = refusalBody(refusal);
  res.writeHead(refusal.status, {
    ...refusal.headers,
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(body),
    // An unread request body stays unread: the connection is not reused.
    connection: "close",
    ...(typeof refusal.details.auditEventId === "string" && refusal.details.auditEventId !== ""
      ? { "x-aa-audit-event-id": refusal.details.auditEventId }
      : {}),
  });
  res.end(body);
}

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  403: "Forbidden",
  407: "Proxy Authentication Required",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

function refuseSocket(socket: Duplex, refusal: ProxyRefusal): void {
  if (socket.destroyed || !socket.writable) return;
  const body = refusalBody(refusal);
  const headers = Object.entries(refusal.headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join("");
  socket.end(
    `HTTP/1.1 ${refusal.status} ${STATUS_TEXT[refusal.status] ?? "Error"}\r\n${headers}content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * A scripted gateway on a loopback port for the remote client's tests: each request is recorded
 * (method, path, query, headers, parsed body) and answered by the test's handler, which may answer
 * JSON, raw bytes, hang, or drop the connection.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: IncomingMessage["headers"];
  body: unknown;
}

export type Answer =
  | { status: number; body?: unknown; headers?: Record<string, string> }
  | { status: number; raw: string; headers?: Record<string, string> }
  /** Never answer (the client's timeout must end it). */
  | { hang: true }
  /** Close the socket without an answer. */
  | { drop: true }
  /** Take over the response (SSE). */
  | { stream: (res: ServerResponse) => void };

export type Handler = (request: RecordedRequest) => Answer | Promise<Answer>;

export interface LoopbackGateway {
  url: string;
  requests: RecordedRequest[];
  /** Replace the handler (e.g. gateway "comes back"). */
  handle(handler: Handler): void;
  close(): Promise<void>;
}

export async function startLoopbackGateway(handler: Handler): Promise<LoopbackGateway> {
  let current = handler;
  const requests: RecordedRequest[] = [];
  const open = new Set<ServerResponse>();
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    const url = new URL(req.url ?? "/", "http://loopback");
    const recorded: RecordedRequest = {
      method: req.method ?? "GET",
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: req.headers,
      body: text === "" ? undefined : JSON.parse(text),
    };
    requests.push(recorded);
    const answer = await current(recorded);
    if ("hang" in answer) {
      open.add(res);
      return;
    }
    if ("drop" in answer) {
      req.socket.destroy();
      return;
    }
    if ("stream" in answer) {
      open.add(res);
      res.on("close", () => open.delete(res));
      answer.stream(res);
      return;
    }
    const payload =
      "raw" in answer ? answer.raw : answer.body === undefined ? "" : JSON.stringify(answer.body);
    res.writeHead(answer.status, { "content-type": "application/json", ...answer.headers });
    res.end(payload);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    handle(next) {
      current = next;
    },
    async close() {
      for (const res of open) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A port nothing listens on (bound, then released). */
export async function unusedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

export const WHOAMI = {
  orgId: "acme",
  agentId: "release-bot",
  role: "agent",
  policyHash: "sha256:policy-1",
};

export function executed(extra: Record<string, unknown> = {}) {
  return {
    status: "executed",
    auditEventId: "0190aaaa-0000-7000-8000-000000000001",
    policyName: "reads",
    policyHash: "sha256:policy-1",
    conditionsEvaluated: [],
    ...extra,
  };
}

export function errorBody(code: string, message: string, details?: Record<string, unknown>) {
  return { error: { code, message, ...(details ? { details } : {}) } };
}

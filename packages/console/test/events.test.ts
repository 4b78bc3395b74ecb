/**
 * The console's event-stream reader (assets/events.js) against a scripted SSE server on loopback:
 * the key goes in the Authorization header only, a dropped stream is resumed with Last-Event-ID
 * (nothing missed, nothing twice), frames split across chunks and multi-line data are parsed, and a
 * refused key stops the stream with the gateway's message.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
// @ts-expect-error: a browser module without declarations, typed by JSDoc
import { followEvents, parseFrame } from "../assets/events.js";

type Handler = (req: IncomingMessage, res: ServerResponse, attempt: number) => void;
let server: Server | undefined;
afterEach(async () => {
  const running = server;
  server = undefined;
  if (running === undefined) return;
  running.closeAllConnections();
  await new Promise((done) => running.close(done));
});

async function serve(handler: Handler): Promise<{ origin: string; requests: IncomingMessage[] }> {
  const requests: IncomingMessage[] = [];
  server = createServer((req, res) => {
    requests.push(req);
    handler(req, res, requests.length);
  });
  await new Promise<void>((done) => server!.listen(0, "127.0.0.1", done));
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

const frame = (seq: number) =>
  `id: ${seq}\nevent: action.executed\ndata: ${JSON.stringify({ seq, type: "action.executed" })}\n\n`;

describe("followEvents", () => {
  it("resumes a dropped stream with Last-Event-ID and delivers every event once", async () => {
    const { origin, requests } = await serve((_req, res, attempt) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      if (attempt === 1) {
        // A frame split across two writes, then the connection drops.
        const first = frame(1);
        res.write(`: connected\n\n${first.slice(0, 10)}`);
        setTimeout(() => {
          res.write(first.slice(10) + frame(2));
          setTimeout(() => res.socket?.destroy(), 20);
        }, 20);
      } else {
        res.write(`: connected\n\n${frame(3)}`);
      }
    });
    // The reader tells the browser's console about the drop; here that is expected, once.
    const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const stop = new AbortController();
    const seen: number[] = [];
    const states: string[] = [];
    const done = followEvents({
      key: "aa_operator_k_s",
      origin,
      signal: stop.signal,
      onEvent: (event: { seq: number }) => {
        seen.push(event.seq);
        if (event.seq === 3) stop.abort();
      },
      onState: (state: string) => states.push(state),
    });
    await done;
    expect(seen).toEqual([1, 2, 3]);
    expect(requests).toHaveLength(2);
    expect(requests[0]!.headers.authorization).toBe("Bearer aa_operator_k_s");
    expect(requests[0]!.headers["last-event-id"]).toBeUndefined();
    expect(requests[1]!.headers["last-event-id"]).toBe("2");
    expect(requests.every((r) => r.url === "/v1/events")).toBe(true);
    expect(states).toEqual(["connecting", "live", "retrying", "connecting", "live", "stopped"]);
    expect(warn).toHaveBeenCalledTimes(1);
    warn.mockRestore();
  });

  it("stops with the gateway's message when the key is refused", async () => {
    const { origin, requests } = await serve((_req, res) => {
      res.writeHead(401, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { code: "UNAUTHENTICATED", message: "Unknown API key" } }));
    });
    const states: [string, string | undefined][] = [];
    await followEvents({
      key: "aa_operator_k_s",
      origin,
      signal: new AbortController().signal,
      onEvent: () => undefined,
      onState: (state: string, detail?: string) => states.push([state, detail]),
    });
    expect(requests).toHaveLength(1);
    expect(states.at(-1)).toEqual(["stopped", "Unknown API key"]);
  });

  it("parses ids, multi-line data and ignores comments", () => {
    expect(parseFrame(": keep-alive")).toEqual({});
    expect(parseFrame('id: 7\nevent: x\ndata: {"a":\ndata: 1}')).toEqual({ id: "7", data: '{"a":\n1}' });
    expect(parseFrame("data:no-space")).toEqual({ data: "no-space" });
  });
});

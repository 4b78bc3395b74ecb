/**
 * Server-sent events over `engine.subscribe`: `id: <seq>` so a reconnecting EventSource resumes
 * exactly (Last-Event-ID), one `event:` per engine event type, and a keep-alive comment so proxies
 * do not cut an idle stream. On connect the stream also sends an `id:`-only frame naming the seq it
 * starts after, so a client that reconnects before any event arrived resumes from there rather
 * than from the then-current head (which would skip what was appended in between).
 */
import type { DecisionEngine, EngineEvent, SubscribeOptions, Subscription } from "@aa/engine";
import type { FastifyReply, FastifyRequest } from "fastify";

/** Open streams' terminators, ended when the gateway closes. */
export type EventStreams = Set<() => void>;

const KEEP_ALIVE_MS = 15_000;

export async function serveEvents(
  engine: DecisionEngine,
  request: FastifyRequest,
  reply: FastifyReply,
  streams: EventStreams,
  options: SubscribeOptions,
  /** Delivers only the events this returns true for (called in seq order). */
  accept: (event: EngineEvent) => boolean = () => true,
): Promise<void> {
  const raw = reply.raw;
  let ended = false;
  let headersSent = false;
  const early: string[] = [];
  let subscription: Subscription | undefined;
  let keepAlive: NodeJS.Timeout | undefined;
  const end = () => {
    if (ended) return;
    ended = true;
    clearInterval(keepAlive);
    subscription?.unsubscribe();
    streams.delete(end);
    raw.end();
  };
  const send = (frame: string) => {
    if (ended) return;
    if (headersSent) raw.write(frame);
    else early.push(frame);
  };
  // Subscribe before answering, so a bad option is still a JSON error with a status.
  subscription = await engine.subscribe((event: EngineEvent) => {
    if (!accept(event)) return;
    send(`id: ${event.seq}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
  }, options);
  reply.hijack();
  raw.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache, no-transform",
    connection: "keep-alive",
    "x-accel-buffering": "no",
  });
  raw.write(": connected\n\n");
  headersSent = true;
  for (const frame of early.splice(0)) raw.write(frame);
  // An id-only frame dispatches no event (no data) but sets the client's last event id (the
  // EventSource rule): every record up to the subscription's position, including records the
  // filters skipped, has been handled. Written after the early frames, which it covers.
  raw.write(`id: ${subscription.lastSeq}\n\n`);
  keepAlive = setInterval(() => raw.write(": keep-alive\n\n"), KEEP_ALIVE_MS);
  keepAlive.unref();
  streams.add(end);
  request.raw.once("close", end);
}

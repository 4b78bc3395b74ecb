// @ts-check
/**
 * The gateway's event stream (`GET /v1/events`, server-sent events) read with fetch() streaming:
 * EventSource cannot send an Authorization header, and putting the key in the URL would leave it
 * in logs and history. On a dropped connection it reconnects with `Last-Event-ID`, so no event is
 * lost (the gateway resumes after that seq); a refused key ends the stream.
 */

/**
 * @typedef {{ id: string, seq: number, type: string, time: string, agentId: string, actionType: string, data: Record<string, unknown> }} EngineEvent
 * @typedef {"connecting" | "live" | "retrying" | "stopped"} StreamState
 */

const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 10_000;

/**
 * Follows the stream until `signal` aborts or the gateway refuses the key.
 * @param {{
 *   key: string,
 *   signal: AbortSignal,
 *   onEvent: (event: EngineEvent) => void,
 *   onState: (state: StreamState, detail?: string) => void,
 *   origin?: string,
 * }} options `origin`: the gateway's, when the page is not served by it (tests); default the page's
 */
export async function followEvents({ key, signal, onEvent, onState, origin = "" }) {
  /** @type {string | undefined} */
  let lastEventId;
  let delay = RETRY_MIN_MS;
  while (!signal.aborted) {
    onState("connecting");
    try {
      /** @type {Record<string, string>} */
      const headers = { authorization: `Bearer ${key}`, accept: "text/event-stream" };
      if (lastEventId !== undefined) headers["last-event-id"] = lastEventId;
      const response = await fetch(`${origin}/v1/events`, {
        headers,
        signal,
        cache: "no-store",
        credentials: "omit",
      });
      if (response.status === 401 || response.status === 403) {
        const body = await response.json().catch(() => undefined);
        onState("stopped", body?.error?.message ?? `The gateway refused the key (${response.status})`);
        return;
      }
      if (!response.ok || response.body === null) throw new Error(`HTTP ${response.status}`);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n?/g, "\n");
        let end = buffer.indexOf("\n\n");
        while (end !== -1) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (frame.startsWith(": connected")) {
            delay = RETRY_MIN_MS;
            onState("live");
          }
          const parsed = parseFrame(frame);
          if (parsed.id !== undefined) lastEventId = parsed.id;
          if (parsed.data !== undefined) {
            try {
              onEvent(JSON.parse(parsed.data));
            } catch (error) {
              console.error("console: an event could not be handled", error);
            }
          }
          end = buffer.indexOf("\n\n");
        }
      }
    } catch (error) {
      if (signal.aborted) break;
      console.warn("console: event stream interrupted", error);
    }
    if (signal.aborted) break;
    onState("retrying", `reconnecting in ${Math.round(delay / 100) / 10} s`);
    await sleep(delay, signal);
    delay = Math.min(delay * 2, RETRY_MAX_MS);
  }
  onState("stopped");
}

/**
 * One SSE frame's `id` and joined `data` lines (comments and other fields ignored).
 * @param {string} frame
 * @returns {{ id?: string, data?: string }}
 */
export function parseFrame(frame) {
  /** @type {{ id?: string, data?: string }} */
  const out = {};
  /** @type {string[]} */
  const data = [];
  for (const line of frame.split("\n")) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "id") out.id = value;
    else if (field === "data") data.push(value);
  }
  if (data.length > 0) out.data = data.join("\n");
  return out;
}

/**
 * @param {number} ms
 * @param {AbortSignal} signal
 */
function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        resolve(undefined);
      },
      { once: true },
    );
  });
}

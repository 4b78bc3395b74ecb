/**
 * Gateways as real processes for the reliability tests: started from test/fixtures, killed with
 * SIGKILL, restarted on the same port; and a client that retries a decision with its idempotency
 * key the way the remote client does (network errors and 5xx), recording every answer.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { createKey, openGatewayStore, parseDatabase } from "../src/index.js";

const gatewayScript = fileURLToPath(new URL("./fixtures/gateway-process.mjs", import.meta.url));

/** A port nobody listens on right now (the kernel's pick), for a gateway that restarts on it. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, "close");
  return port;
}

/** One gateway process serving `database` on 127.0.0.1:`port`. */
export class GatewayProcess {
  readonly url: string;
  readonly #child: ChildProcess;
  readonly #exited: Promise<unknown>;

  private constructor(child: ChildProcess, url: string) {
    this.#child = child;
    this.url = url;
    this.#exited = once(child, "exit");
  }

  /** Spawns it and resolves once it listens; rejects with its stderr when it exits first. */
  static start(database: string, port: number): Promise<GatewayProcess> {
    const child = spawn(process.execPath, [gatewayScript, database, String(port)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      err += chunk;
    });
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null) =>
        reject(new Error(`gateway exited with ${code} before listening: ${err.slice(-2000)}`));
      child.once("exit", onExit);
      child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
        out += chunk;
        const line = /listening (\S+)\n/.exec(out);
        if (line) {
          child.off("exit", onExit);
          resolve(new GatewayProcess(child, line[1]!));
        }
      });
    });
  }

  /** kill -9, and wait until the process is gone. */
  async kill(): Promise<void> {
    this.#child.kill("SIGKILL");
    await this.#exited;
  }

  /** A graceful stop (SIGTERM: the gateway closes its engines and exits). */
  async stop(): Promise<void> {
    this.#child.kill("SIGTERM");
    await this.#exited;
  }
}

/** Creates an agent, an operator and an admin key for `orgId` in the gateway's database. */
export async function keysFor(
  database: string,
  orgId: string,
  agentId: string,
): Promise<{ agent: string; operator: string; admin: string }> {
  const store = await openGatewayStore(parseDatabase(database));
  try {
    const agent = await createKey(store, { kind: "agent", orgId, agentId });
    const operator = await createKey(store, { kind: "operator", orgId, name: "ops" });
    const admin = await createKey(store, { kind: "admin", orgId, name: "admin" });
    return { agent: agent.key, operator: operator.key, admin: admin.key };
  } finally {
    await store.close();
  }
}

export interface Answer {
  status: number;
  body: Record<string, unknown>;
}

/** One HTTP exchange; a network failure (refused, reset, timed out) resolves to undefined. */
export async function send(
  url: string,
  key: string,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = 10_000,
): Promise<Answer | undefined> {
  try {
    const response = await fetch(`${url}/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    return {
      status: response.status,
      body: text === "" ? {} : (JSON.parse(text) as Record<string, unknown>),
    };
  } catch {
    return undefined;
  }
}

/** Everything one call went through. */
export interface CallLog {
  eventId: string;
  args: { client: number; n: number };
  /** Attempts that got no answer (refused, reset, timed out) or a 5xx. */
  failedAttempts: number;
  /** The final answer (undefined when the call gave up). */
  answer?: Answer;
}

/**
 * Sends one decision with its idempotency key, retrying network failures and 5xx (after 50 ms,
 * against whatever `url()` is then) until `deadline`: the remote client's contract, compressed.
 */
export async function decideWithRetries(
  url: () => string,
  key: string,
  request: Record<string, unknown>,
  log: CallLog,
  deadline: number,
): Promise<void> {
  while (Date.now() < deadline) {
    const answer = await send(url(), key, "POST", "/actions", request);
    if (answer !== undefined && answer.status < 500) {
      log.answer = answer;
      return;
    }
    log.failedAttempts++;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** An SSE stream's frames as they arrive (`id` and `event` of each), until `close()`. */
export function readEvents(url: string, key: string, path: string): { ids: number[]; close: () => void } {
  const ids: number[] = [];
  const controller = new AbortController();
  void (async () => {
    try {
      const response = await fetch(`${url}/v1${path}`, {
        headers: { authorization: `Bearer ${key}`, accept: "text/event-stream" },
        signal: controller.signal,
      });
      const decoder = new TextDecoder();
      let buffered = "";
      for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
        buffered += decoder.decode(chunk, { stream: true });
        let end = buffered.indexOf("\n\n");
        while (end !== -1) {
          const frame = buffered.slice(0, end);
          // Event frames only: the id-only frame a stream starts with names a position, not an event.
          const id = /^id: (\d+)$/m.exec(frame);
          if (id && /^data: /m.test(frame)) ids.push(Number(id[1]));
          buffered = buffered.slice(end + 2);
          end = buffered.indexOf("\n\n");
        }
      }
    } catch {
      // Closed by the test (or the gateway went away): what arrived is what the test checks.
    }
  })();
  return { ids, close: () => controller.abort() };
}

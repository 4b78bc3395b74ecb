/**
 * The HTTP client of a shared Agent Assembly gateway (wire contract v1, `@aa/wire-contract`):
 * one method per endpoint, JSON in and out, bearer API key. The remote gate (`gate/remote.ts`) and
 * the `aa` CLI's `--gateway` mode are built on it.
 *
 * Reliability: a request that fails with a network error, a timeout or a 5xx is retried after each
 * of `retryDelaysMs` (default 1 s, 2 s, 4 s) with exactly the same body, so a decision keeps its
 * idempotency key (`eventId`) and a retry never records twice. Each attempt has its own timeout
 * (`requestTimeoutMs`, default 30 s). When every attempt failed, or the gateway answers with
 * something that is not the contract's JSON, the error is `AssemblyError` `GATE_UNAVAILABLE`:
 * callers fail closed. A 4xx is not retried; its `{ error: { code, message, details } }` becomes
 * an `AssemblyError` with the same code (`details.status` holds the HTTP status).
 *
 * Transport: one keep-alive undici `Pool` per client (global `fetch` cost about twice as much per
 * decision on loopback, mostly client-side CPU). Idle connections do not keep the process alive;
 * `close()` ends them.
 */

import { randomUUID } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import type {
  ActionResult,
  AgentControl,
  Approval,
  ApprovalState,
  AuditEvent,
  AuditPage,
  AuditQuery,
  Delegation,
  DelegationGrant,
  EngineEvent,
  EngineEventType,
  Outcome,
  Posture,
  Subscription,
  VerifyResult,
} from "@aa/engine";
import { createParser } from "eventsource-parser";
import { type Dispatcher, Pool } from "undici";
import { AssemblyError } from "./errors.js";

/** Default waits before the 2nd, 3rd and 4th attempt of a failing request (spec: 1 s / 2 s / 4 s). */
export const DEFAULT_RETRY_DELAYS_MS: readonly number[] = Object.freeze([1000, 2000, 4000]);
/** Default limit for one attempt of one request (spec: 30 s). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** The longest one long-poll of `GET /v1/approvals/:id/wait` may ask the gateway to hold (contract: ≤ 30 000). */
export const MAX_APPROVAL_WAIT_MS = 30_000;

/** How to reach a gateway. */
export interface GatewayClientOptions {
  /** Base URL, e.g. `http://127.0.0.1:7391` (a trailing `/v1` is accepted). */
  url: string;
  /** Bearer API key `aa_<kind>_<id>_<secret>` (`aa keys create`). Not needed for health, ready and JWKS. */
  apiKey?: string;
  /** Waits before each retry of a request that failed with a network error, a timeout or a 5xx. Default `[1000, 2000, 4000]`; `[]` disables retries. */
  retryDelaysMs?: readonly number[];
  /** Limit for one attempt of one request, in ms. Default 30 000. */
  requestTimeoutMs?: number;
}

/** `GET /v1/whoami`: who the API key is. */
export interface GatewayIdentity {
  orgId: string;
  agentId?: string;
  role: "agent" | "operator" | "admin" | (string & {});
  policyHash: string;
  cbState?: "closed" | "open" | "half-open";
  contained?: boolean;
}

/** An API key as the gateway lists it (never with its secret, except once on creation). */
export interface GatewayKey {
  id: string;
  kind: "agent" | "operator" | "admin";
  orgId: string;
  agentId?: string;
  name?: string;
  createdAt: string;
  revokedAt?: string;
}

/** Body of `POST /v1/actions` (the agent comes from the key, never from the body). */
export interface ActionRequestBody {
  actionType: string;
  toolName?: string;
  framework?: string;
  args?: unknown;
  metadata?: Record<string, unknown>;
  dataAccessed?: unknown;
  toolCallId?: string;
  mcpServer?: string;
  traceId?: string;
  eventId?: string;
  enforcementMode?: "enforce" | "observe" | "disabled";
  dryRun?: boolean;
  failOpen?: boolean;
  /** The end user the call is made for. */
  principal?: { userId: string; email?: string; tenant?: string; scopes?: string[] };
}

/** Options of one request. */
interface RequestOptions {
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  headers?: Record<string, string>;
  /** The attempt's own time limit (long polls need more than the default). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Expected success statuses. Default 200 and 201. */
  accept?: readonly number[];
}

const RETRYABLE_NETWORK = "network";

/** An accepted answer whose body was read. */
interface TextAnswer {
  status: number;
  text: string;
}

/** An accepted answer whose body is left to the caller (SSE, export). */
interface StreamAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: AsyncIterable<Uint8Array>;
}

/** A failure worth another attempt (network, timeout, 5xx), carrying what the last attempt saw. */
class RetryableFailure extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly errorCode: string | undefined,
  ) {
    super(message);
  }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });

function checkDelays(value: unknown): readonly number[] {
  if (
    !Array.isArray(value) ||
    value.some((d) => typeof d !== "number" || !Number.isFinite(d) || d < 0) ||
    value.length > 10
  ) {
    throw new AssemblyError(
      "CONFIGURATION_ERROR",
      "retryDelaysMs must be a list of at most 10 non-negative numbers of milliseconds, e.g. [1000, 2000, 4000]",
      { option: "retryDelaysMs", received: value },
    );
  }
  return Object.freeze([...value]);
}

/** Normalise a gateway URL to its `/v1` base, or throw naming what is wrong. */
export function gatewayBaseUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new AssemblyError(
      "CONFIGURATION_ERROR",
      `gateway URL ${JSON.stringify(url)} is not a URL; expected e.g. "http://127.0.0.1:7391"`,
      { option: "gatewayUrl" },
    );
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new AssemblyError(
      "CONFIGURATION_ERROR",
      `gateway URL must be http: or https:, got ${parsed.protocol}`,
      {
        option: "gatewayUrl",
      },
    );
  }
  const path = parsed.pathname.replace(/\/+$/, "").replace(/\/v1$/, "");
  return `${parsed.origin}${path}/v1`;
}

/**
 * A typed client of one gateway. Every method rejects with `AssemblyError`: the gateway's own code
 * for a 4xx, `GATE_UNAVAILABLE` when it cannot be reached or answers outside the contract.
 */
export class GatewayClient {
  readonly baseUrl: string;
  readonly #apiKey: string | undefined;
  readonly #retryDelaysMs: readonly number[];
  readonly #timeoutMs: number;
  readonly #origin: string;
  /** The base URL's path (`/v1`, or `/prefix/v1` behind a proxy), prepended to every request path. */
  readonly #basePath: string;
  #pool: Pool | undefined;
  /** Open event streams, stopped by `close()`. */
  readonly #streams = new Set<Subscription>();

  constructor(options: GatewayClientOptions) {
    this.baseUrl = gatewayBaseUrl(options.url);
    const base = new URL(this.baseUrl);
    this.#origin = base.origin;
    this.#basePath = base.pathname;
    if (options.apiKey !== undefined && (typeof options.apiKey !== "string" || options.apiKey === "")) {
      throw new AssemblyError("CONFIGURATION_ERROR", "apiKey must be a non-empty string (aa keys create)", {
        option: "apiKey",
      });
    }
    this.#apiKey = options.apiKey;
    this.#retryDelaysMs = checkDelays(options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS);
    const timeout = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    if (typeof timeout !== "number" || !Number.isFinite(timeout) || timeout <= 0) {
      throw new AssemblyError("CONFIGURATION_ERROR", "requestTimeoutMs must be a positive number of ms", {
        option: "requestTimeoutMs",
        received: timeout,
      });
    }
    this.#timeoutMs = timeout;
  }

  // --- endpoints -------------------------------------------------------------------------------

  health(): Promise<{ status: string }> {
    return this.json("GET", "/health", {}, (v) => objectWith(v, "status", "string") as { status: string });
  }

  /** `GET /v1/ready`: 200 when the store answers; a 503 rejects (after retries) with GATE_UNAVAILABLE. */
  ready(): Promise<{ status: string; store?: unknown }> {
    return this.json("GET", "/ready", {}, (v) => objectWith(v, "status", "string") as { status: string });
  }

  whoami(): Promise<GatewayIdentity> {
    return this.json("GET", "/whoami", {}, (v) => {
      const identity = objectWith(v, "orgId", "string");
      objectWith(v, "role", "string");
      objectWith(v, "policyHash", "string");
      return identity as unknown as GatewayIdentity;
    });
  }

  /** `POST /v1/actions`: one decision. Keep `eventId` set: it makes the retries idempotent. */
  decide(body: ActionRequestBody, options: { delegationToken?: string } = {}): Promise<ActionResult> {
    return this.json(
      "POST",
      "/actions",
      { body, ...delegationHeaders(options.delegationToken) },
      asActionResult,
    );
  }

  listApprovals(filter: { state?: ApprovalState } = {}): Promise<Approval[]> {
    return this.json("GET", "/approvals", { query: { state: filter.state } }, (v) =>
      arrayOf(objectWith(v, "approvals", "array").approvals, asApproval),
    );
  }

  getApproval(id: string): Promise<Approval> {
    return this.json("GET", `/approvals/${encodeURIComponent(id)}`, {}, asApproval);
  }

  /** Long poll: resolves when the approval is no longer pending, or after `timeoutMs` (still pending). */
  waitApproval(id: string, timeoutMs: number, signal?: AbortSignal): Promise<Approval> {
    const wait = Math.max(0, Math.min(MAX_APPROVAL_WAIT_MS, Math.floor(timeoutMs)));
    return this.json(
      "GET",
      `/approvals/${encodeURIComponent(id)}/wait`,
      { query: { timeoutMs: wait }, timeoutMs: wait + this.#timeoutMs, ...(signal ? { signal } : {}) },
      asApproval,
    );
  }

  approve(id: string, reason?: string): Promise<Approval> {
    return this.json(
      "POST",
      `/approvals/${encodeURIComponent(id)}/approve`,
      { body: reason === undefined ? {} : { reason } },
      asApproval,
    );
  }

  deny(id: string, reason?: string): Promise<Approval> {
    return this.json(
      "POST",
      `/approvals/${encodeURIComponent(id)}/deny`,
      { body: reason === undefined ? {} : { reason } },
      asApproval,
    );
  }

  /**
   * Releases an approved action exactly once (the requesting agent's key; for a delegated child's
   * approval, the root key with the child's `delegationToken`). Sends an `Idempotency-Key`, so a
   * retry after a lost answer gets the first answer instead of `APPROVAL_ALREADY_USED`.
   */
  releaseApproval(id: string, options: { delegationToken?: string } = {}): Promise<ActionResult> {
    return this.json(
      "POST",
      `/approvals/${encodeURIComponent(id)}/release`,
      {
        body: {},
        // One key for every attempt of this call: a retry after a lost answer gets that answer.
        headers: { ...delegationHeaders(options.delegationToken).headers, "idempotency-key": randomUUID() },
      },
      asActionResult,
    );
  }

  /**
   * `POST /v1/delegations` (agent key): a child of the key's agent, or, with `delegationToken`, a
   * child of that token's agent (delegating further, narrower only). The token is in this answer.
   */
  delegate(
    body: { name: string; capabilities: string[]; ttlSeconds?: number },
    options: { delegationToken?: string } = {},
  ): Promise<DelegationGrant> {
    return this.json(
      "POST",
      "/delegations",
      { body, accept: [201], ...delegationHeaders(options.delegationToken) },
      (v) => {
        const grant = objectWith(v, "token", "string");
        asDelegation(objectWith(v, "delegation", "object").delegation);
        return grant as unknown as DelegationGrant;
      },
    );
  }

  /**
   * `GET /v1/delegations`: an agent key lists relative to its own agent (`role` default
   * `ancestor` on the gateway), or with `delegationToken` relative to that delegated child; an
   * operator key the org's, or one agent's with `agent`.
   */
  listDelegations(
    query: { role?: "parent" | "child" | "ancestor"; activeOnly?: boolean; agent?: string } = {},
    options: { delegationToken?: string } = {},
  ): Promise<Delegation[]> {
    return this.json(
      "GET",
      "/delegations",
      {
        query: {
          role: query.role,
          activeOnly: query.activeOnly === undefined ? undefined : String(query.activeOnly),
          agent: query.agent,
        },
        ...delegationHeaders(options.delegationToken),
      },
      (v) => arrayOf(objectWith(v, "delegations", "array").delegations, asDelegation),
    );
  }

  /**
   * `DELETE /v1/delegations/:id`: revokes it and every delegation below it; idempotent. With
   * `delegationToken` the delegated child revokes (its own delegation or one below it) and is
   * recorded as `revokedBy`.
   */
  revokeDelegation(id: string, options: { delegationToken?: string } = {}): Promise<Delegation> {
    return this.json(
      "DELETE",
      `/delegations/${encodeURIComponent(id)}`,
      delegationHeaders(options.delegationToken),
      asDelegation,
    );
  }

  audit(query: AuditQuery = {}): Promise<AuditPage<AuditEvent>> {
    return this.json(
      "GET",
      "/audit",
      {
        query: {
          cursor: query.cursor,
          limit: query.limit,
          actionType: query.actionType,
          traceId: query.traceId,
          order: query.order,
        },
      },
      (v) => {
        const page = objectWith(v, "items", "array");
        if (page.nextCursor !== undefined && page.nextCursor !== null && typeof page.nextCursor !== "string")
          throw new Error("nextCursor is not a string");
        return {
          items: arrayOf(page.items, (item) => objectWith(item, "id", "string") as unknown as AuditEvent),
          ...(typeof page.nextCursor === "string" ? { nextCursor: page.nextCursor } : {}),
        };
      },
    );
  }

  verify(): Promise<VerifyResult> {
    return this.json("GET", "/audit/verify", {}, (v) => {
      const result = objectWith(v, "chainValid", "boolean");
      objectWith(v, "checked", "number");
      return result as unknown as VerifyResult;
    });
  }

  /**
   * `GET /v1/audit/export`: the JSONL export, written chunk by chunk to `write` (which may return a
   * promise for back-pressure). Not retried once bytes have arrived. Resolves to the bytes written.
   */
  async exportAudit(
    write: (chunk: Uint8Array) => unknown,
    options: { onProgress?: (bytes: number, totalBytes: number | undefined) => void } = {},
  ): Promise<{ bytes: number }> {
    const response = await this.#send("GET", "/audit/export", { accept: [200] }, true);
    const total = Number(response.headers["content-length"] ?? Number.NaN);
    let bytes = 0;
    try {
      for await (const chunk of response.body) {
        bytes += chunk.byteLength;
        await write(chunk);
        options.onProgress?.(bytes, Number.isFinite(total) ? total : undefined);
      }
    } catch (cause) {
      throw unavailable(`the export from ${this.baseUrl} stopped after ${bytes} bytes`, cause, {});
    }
    return { bytes };
  }

  reportOutcome(auditEventId: string, outcome: Outcome): Promise<{ auditEventId: string }> {
    return this.json(
      "POST",
      `/audit/${encodeURIComponent(auditEventId)}/outcome`,
      { body: outcome, accept: [201, 200] },
      (v) => objectWith(v, "auditEventId", "string") as { auditEventId: string },
    );
  }

  receipt(auditEventId: string): Promise<string> {
    return this.json(
      "GET",
      `/receipts/${encodeURIComponent(auditEventId)}`,
      {},
      (v) => objectWith(v, "receipt", "string").receipt as string,
    );
  }

  jwks(): Promise<{ keys: Record<string, unknown>[] }> {
    return this.json("GET", "/jwks.json", {}, (v) => ({
      keys: arrayOf(objectWith(v, "keys", "array").keys, (k) => objectWith(k, "kty", "string")),
    }));
  }

  policies(): Promise<{ policyHash: string; policy: Record<string, unknown> }> {
    return this.json("GET", "/policies", {}, (v) => {
      const answer = objectWith(v, "policyHash", "string");
      objectWith(v, "policy", "object");
      return answer as { policyHash: string; policy: Record<string, unknown> };
    });
  }

  /** `PUT /v1/policies` (admin): replaces the org's policy; audited as `policy.changed`. */
  setPolicy(policy: Record<string, unknown>): Promise<{ policyHash: string }> {
    return this.json(
      "PUT",
      "/policies",
      { body: { policy } },
      (v) => objectWith(v, "policyHash", "string") as { policyHash: string },
    );
  }

  /** `POST /v1/keys` (admin): the secret `key` is in this answer only. */
  createKey(input: {
    kind: "agent" | "operator" | "admin";
    agentId?: string;
    name?: string;
  }): Promise<GatewayKey & { key: string }> {
    return this.json("POST", "/keys", { body: input, accept: [201] }, (v) => {
      objectWith(v, "key", "string");
      return asKey(v) as GatewayKey & { key: string };
    });
  }

  /** `GET /v1/keys` (admin): the org's keys, without secrets. */
  listKeys(): Promise<GatewayKey[]> {
    return this.json("GET", "/keys", {}, (v) => arrayOf(objectWith(v, "keys", "array").keys, asKey));
  }

  /** `DELETE /v1/keys/:id` (admin): the key stops working at once. */
  revokeKey(id: string): Promise<GatewayKey> {
    return this.json("DELETE", `/keys/${encodeURIComponent(id)}`, {}, asKey);
  }

  posture(): Promise<Posture> {
    return this.json("GET", "/posture", {}, (v) => {
      objectWith(v, "score", "number");
      return objectWith(v, "components", "object") as unknown as Posture;
    });
  }

  listAgents(): Promise<AgentControl[]> {
    return this.json("GET", "/agents", {}, (v) =>
      arrayOf(Array.isArray(v) ? v : objectWith(v, "agents", "array").agents, asAgentControl),
    );
  }

  contain(agentId: string, reason: string): Promise<AgentControl> {
    return this.json(
      "POST",
      `/agents/${encodeURIComponent(agentId)}/contain`,
      { body: { reason } },
      asAgentControl,
    );
  }

  releaseAgent(agentId: string, reason: string): Promise<AgentControl> {
    return this.json(
      "POST",
      `/agents/${encodeURIComponent(agentId)}/release`,
      { body: { reason } },
      asAgentControl,
    );
  }

  /**
   * `GET /v1/events` (SSE): delivers events in order to `callback` and reconnects after a dropped
   * stream with `Last-Event-ID`, so nothing is missed. Resolves once the first connection is
   * accepted (a 4xx such as an unknown event type rejects here); stop with `unsubscribe()`.
   */
  async subscribe(
    callback: (event: EngineEvent) => unknown,
    options: {
      events?: readonly EngineEventType[];
      agentFilter?: string | readonly string[];
      after?: number;
    } = {},
  ): Promise<Subscription> {
    const stream = new EventStream(this, callback, options);
    await stream.start();
    this.#streams.add(stream);
    stream.onStop = () => this.#streams.delete(stream);
    return stream;
  }

  // --- transport -------------------------------------------------------------------------------

  /** One request whose 2xx JSON body is checked by `parse`; a body outside the contract is GATE_UNAVAILABLE. */
  async json<T>(
    method: string,
    path: string,
    options: RequestOptions,
    parse: (value: unknown) => T,
  ): Promise<T> {
    const response = await this.#send(method, path, options, false);
    const text = response.text;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (cause) {
      throw unavailable(
        `the gateway at ${this.baseUrl} answered ${method} ${path} with a body that is not JSON (HTTP ${response.status}); is the URL an Agent Assembly gateway?`,
        cause,
        { status: response.status },
      );
    }
    try {
      return parse(value);
    } catch (cause) {
      throw unavailable(
        `the gateway at ${this.baseUrl} answered ${method} ${path} outside the wire contract (${(cause as Error).message}); check that client and gateway versions match`,
        cause,
        { status: response.status },
      );
    }
  }

  /**
   * Send with retries. Resolves to an answer with an accepted status; a 4xx rejects with the
   * gateway's error code. With `stream`, the body is left unread for the caller.
   */
  async #send(method: string, path: string, options: RequestOptions, stream: true): Promise<StreamAnswer>;
  async #send(method: string, path: string, options: RequestOptions, stream: false): Promise<TextAnswer>;
  async #send(
    method: string,
    path: string,
    options: RequestOptions,
    stream: boolean,
  ): Promise<StreamAnswer | TextAnswer> {
    let target = this.#basePath + path;
    const query = options.query;
    if (query !== undefined) {
      const params = new URLSearchParams();
      for (const [key, value] of Object.entries(query)) {
        if (value !== undefined) params.set(key, String(value));
      }
      const search = params.toString();
      if (search !== "") target += `?${search}`;
    }
    const headers: Record<string, string> = { accept: "application/json", ...options.headers };
    if (this.#apiKey) headers.authorization = `Bearer ${this.#apiKey}`;
    let body: string | undefined;
    if (options.body !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(options.body);
    }
    const accept = options.accept ?? [200, 201];
    let last: RetryableFailure | undefined;
    for (let attempt = 0; attempt <= this.#retryDelaysMs.length; attempt++) {
      if (attempt > 0) await sleep(this.#retryDelaysMs[attempt - 1]!, options.signal);
      options.signal?.throwIfAborted();
      try {
        return await this.#attempt(target, method, headers, body, options, accept, stream);
      } catch (error) {
        if (!(error instanceof RetryableFailure)) throw error;
        // The caller gave up (its own signal): no more attempts.
        if (options.signal?.aborted) throw options.signal.reason;
        last = error;
      }
    }
    throw unavailable(
      `the gateway at ${this.baseUrl} did not answer ${method} ${target.split("?")[0]}: ${last?.message} (${this.#retryDelaysMs.length + 1} attempts); check that it is running and reachable (aa gateway start), or retry later`,
      last,
      {
        attempts: this.#retryDelaysMs.length + 1,
        ...(last?.status === undefined ? {} : { lastStatus: last.status }),
        ...(last?.errorCode === undefined ? {} : { lastCode: last.errorCode }),
      },
    );
  }

  /** The keep-alive connection pool to the gateway, opened on first use (again after `close()`). */
  #dispatcher(): Pool {
    this.#pool ??= new Pool(this.#origin, {
      // Our own per-attempt timer is the limit (it covers headers and, for JSON, the body); a
      // stream (SSE, export) must be able to stay quiet for longer than any fixed body timeout.
      headersTimeout: 0,
      bodyTimeout: 0,
    });
    return this.#pool;
  }

  async #attempt(
    target: string,
    method: string,
    headers: Record<string, string>,
    body: string | undefined,
    options: RequestOptions,
    accept: readonly number[],
    stream: boolean,
  ): Promise<StreamAnswer | TextAnswer> {
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    // An explicit controller and timer, cleared as soon as the attempt is answered: a stream (SSE,
    // export) must outlive the limit, which only covers getting its headers.
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    const signal = options.signal ? AbortSignal.any([timeout.signal, options.signal]) : timeout.signal;
    let response: Dispatcher.ResponseData;
    try {
      response = await this.#dispatcher().request({
        path: target,
        method: method as Dispatcher.HttpMethod,
        headers,
        body: body ?? null,
        signal,
      });
    } catch (cause) {
      clearTimeout(timer);
      if (options.signal?.aborted) throw options.signal.reason;
      throw new RetryableFailure(
        timeout.signal.aborted ? `no answer within ${timeoutMs} ms` : networkMessage(cause),
        undefined,
        RETRYABLE_NETWORK,
      );
    }
    const status = response.statusCode;
    if (accept.includes(status)) {
      if (stream) {
        clearTimeout(timer);
        return { status, headers: response.headers, body: response.body };
      }
      // Read the body under the same time limit, and retry a body cut off mid-way.
      try {
        return { status, text: await response.body.text() };
      } catch (cause) {
        if (options.signal?.aborted) throw options.signal.reason;
        throw new RetryableFailure(
          timeout.signal.aborted ? `the answer did not arrive within ${timeoutMs} ms` : networkMessage(cause),
          undefined,
          RETRYABLE_NETWORK,
        );
      } finally {
        clearTimeout(timer);
      }
    }
    // Read (drain) the error body in every case: an unread body would hold the connection.
    const text = await response.body.text().catch(() => "");
    clearTimeout(timer);
    const error = parseErrorBody(text);
    if (status >= 500) {
      throw new RetryableFailure(
        `HTTP ${status}${error ? ` ${error.code}: ${error.message}` : ""}`,
        status,
        error?.code,
      );
    }
    if (!error) {
      throw unavailable(
        `the gateway at ${this.baseUrl} answered ${method} ${target.split("?")[0]} with HTTP ${status} and no error body; is the URL an Agent Assembly gateway?`,
        undefined,
        { status },
      );
    }
    throw new AssemblyError(error.code, error.message, { ...error.details, status });
  }

  /**
   * Ends the client's connections to the gateway: open event streams are stopped, requests in
   * flight finish first. The client stays usable (a later request opens a new connection).
   */
  async close(): Promise<void> {
    for (const stream of this.#streams) stream.unsubscribe();
    this.#streams.clear();
    const pool = this.#pool;
    this.#pool = undefined;
    await pool?.close();
  }

  /** Open the SSE stream (used by EventStream). */
  openEvents(
    query: Record<string, string | undefined>,
    lastEventId: string | undefined,
    signal: AbortSignal,
  ) {
    return this.#send(
      "GET",
      "/events",
      {
        query,
        headers: {
          accept: "text/event-stream",
          ...(lastEventId === undefined ? {} : { "last-event-id": lastEventId }),
        },
        signal,
        // The stream stays open; the attempt limit only covers getting its headers.
        accept: [200],
      },
      true,
    );
  }
}

/** A live `GET /v1/events` subscription that resumes by seq after a dropped connection. */
class EventStream implements Subscription {
  #lastSeq: number;
  #stopped = false;
  readonly #abort = new AbortController();
  readonly #query: Record<string, string | undefined>;
  #delivering: Promise<void> = Promise.resolve();

  constructor(
    private readonly client: GatewayClient,
    private readonly callback: (event: EngineEvent) => unknown,
    options: {
      events?: readonly EngineEventType[];
      agentFilter?: string | readonly string[];
      after?: number;
    },
  ) {
    this.#lastSeq = options.after ?? -1;
    const agents = options.agentFilter === undefined ? undefined : [options.agentFilter].flat();
    this.#query = {
      events: options.events?.join(","),
      agent: agents?.join(","),
      after: options.after === undefined ? undefined : String(options.after),
    };
  }

  get lastSeq(): number {
    return Math.max(this.#lastSeq, 0);
  }

  /** Called once when the stream is stopped (the client forgets it). */
  onStop: (() => void) | undefined;

  unsubscribe(): void {
    if (!this.#stopped) this.onStop?.();
    this.#stopped = true;
    this.#abort.abort(new AssemblyError("SUBSCRIPTION_CLOSED", "unsubscribed"));
  }

  async start(): Promise<void> {
    const first = await this.client.openEvents(this.#query, undefined, this.#abort.signal);
    void this.#pump(first);
  }

  async #pump(initial: StreamAnswer): Promise<void> {
    let response: StreamAnswer | undefined = initial;
    let failures = 0;
    while (!this.#stopped) {
      try {
        response ??= await this.client.openEvents(
          { ...this.#query, after: this.#lastSeq >= 0 ? String(this.#lastSeq) : this.#query.after },
          this.#lastSeq >= 0 ? String(this.#lastSeq) : undefined,
          this.#abort.signal,
        );
        failures = 0;
        await this.#read(response);
      } catch (error) {
        if (this.#stopped) return;
        failures++;
        if (failures === 1 || failures % 10 === 0) {
          process.emitWarning(
            `Agent Assembly: the event stream from the gateway dropped (${(error as Error)?.message ?? String(error)}); reconnecting after seq ${this.lastSeq}`,
            { code: "AA_EVENTS_RECONNECT" },
          );
        }
      }
      response = undefined;
      if (this.#stopped) return;
      await sleep(Math.min(5000, 250 * 2 ** Math.min(failures, 5)), this.#abort.signal).catch(() => {});
    }
  }

  async #read(response: StreamAnswer): Promise<void> {
    const parser = createParser({
      // The gateway names the seq a stream starts after in an id-only frame on connect: taken in
      // delivery order, so a reconnect before any event resumes there instead of at the new head.
      onId: (id) => {
        if (!/^\d+$/.test(id)) return;
        const seq = Number(id);
        this.#delivering = this.#delivering.then(() => {
          if (!this.#stopped) this.#lastSeq = Math.max(this.#lastSeq, seq);
        });
      },
      onEvent: (message) => {
        if (message.data === "") return;
        let event: EngineEvent;
        try {
          event = JSON.parse(message.data) as EngineEvent;
        } catch {
          process.emitWarning(`Agent Assembly: skipped an event that is not JSON (id ${message.id})`, {
            code: "AA_EVENTS_MALFORMED",
          });
          return;
        }
        const seq = typeof event.seq === "number" ? event.seq : Number(message.id);
        this.#delivering = this.#delivering.then(() => this.#deliver(event, seq));
      },
    });
    const decoder = new TextDecoder();
    for await (const chunk of response.body) {
      if (this.#stopped) return;
      parser.feed(decoder.decode(chunk, { stream: true }));
    }
    await this.#delivering;
  }

  async #deliver(event: EngineEvent, seq: number): Promise<void> {
    if (this.#stopped) return;
    // One record may yield two events with the same seq; a reconnect resumes after the last seq.
    if (Number.isFinite(seq)) this.#lastSeq = Math.max(this.#lastSeq, seq);
    try {
      await this.callback(event);
    } catch (error) {
      process.emitWarning(
        `Agent Assembly: an event subscriber threw on ${event.type} (seq ${seq}): ${(error as Error)?.message ?? String(error)}`,
        { code: "AA_SUBSCRIBER_FAILED" },
      );
    }
  }
}

// --- response shapes (checked, not trusted: a wrong answer must fail closed) -------------------

function objectWith(value: unknown, key: string, type: "string" | "number" | "boolean" | "object" | "array") {
  if (value === null || typeof value !== "object" || Array.isArray(value))
    throw new Error("expected a JSON object");
  const field = (value as Record<string, unknown>)[key];
  const ok =
    type === "array"
      ? Array.isArray(field)
      : type === "object"
        ? field !== null && typeof field === "object" && !Array.isArray(field)
        : typeof field === type;
  if (!ok)
    throw new Error(
      `field "${key}" is not ${type === "array" || type === "object" ? `an ${type}` : `a ${type}`}`,
    );
  return value as Record<string, unknown>;
}

function arrayOf<T>(value: unknown, item: (v: unknown) => T): T[] {
  if (!Array.isArray(value)) throw new Error("expected a JSON array");
  return value.map(item);
}

const ACTION_STATUSES = new Set(["executed", "requested", "denied"]);

function asActionResult(value: unknown): ActionResult {
  const result = objectWith(value, "status", "string");
  if (!ACTION_STATUSES.has(result.status as string))
    throw new Error(`unknown status ${JSON.stringify(result.status)}`);
  objectWith(value, "auditEventId", "string");
  objectWith(value, "conditionsEvaluated", "array");
  if (result.status === "requested" && typeof result.approvalId !== "string")
    throw new Error("a requested action has no approvalId");
  return result as unknown as ActionResult;
}

const APPROVAL_STATES = new Set(["pending", "approved", "denied", "expired"]);

function asApproval(value: unknown): Approval {
  const approval = objectWith(value, "id", "string");
  objectWith(value, "state", "string");
  if (!APPROVAL_STATES.has(approval.state as string))
    throw new Error(`unknown approval state ${JSON.stringify(approval.state)}`);
  return approval as unknown as Approval;
}

const DELEGATION_STATES = new Set(["active", "revoked", "expired"]);

function asDelegation(value: unknown): Delegation {
  const delegation = objectWith(value, "id", "string");
  objectWith(value, "agentId", "string");
  objectWith(value, "capabilities", "array");
  objectWith(value, "chain", "array");
  objectWith(value, "expiresAt", "string");
  if (!DELEGATION_STATES.has(delegation.state as string))
    throw new Error(`unknown delegation state ${JSON.stringify(delegation.state)}`);
  return delegation as unknown as Delegation;
}

/** The `AA-Delegation` header of a request made for a delegated child, if any. */
function delegationHeaders(token: string | undefined): { headers?: Record<string, string> } {
  return token ? { headers: { "AA-Delegation": token } } : {};
}

function asKey(value: unknown): GatewayKey {
  const key = objectWith(value, "id", "string");
  objectWith(value, "kind", "string");
  objectWith(value, "orgId", "string");
  return key as unknown as GatewayKey;
}

function asAgentControl(value: unknown): AgentControl {
  const control = objectWith(value, "agentId", "string");
  objectWith(value, "contained", "boolean");
  return control as unknown as AgentControl;
}

function parseErrorBody(
  text: string,
): { code: string; message: string; details: Record<string, unknown> } | undefined {
  try {
    const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown; details?: unknown } };
    const error = parsed?.error;
    if (!error || typeof error.code !== "string" || typeof error.message !== "string") return undefined;
    const details =
      error.details && typeof error.details === "object" && !Array.isArray(error.details)
        ? (error.details as Record<string, unknown>)
        : {};
    return { code: error.code, message: error.message, details };
  } catch {
    return undefined;
  }
}

function networkMessage(cause: unknown): string {
  // undici puts the system code (ECONNREFUSED, UND_ERR_SOCKET...) on the error itself, sometimes on its cause.
  for (const error of [cause, (cause as { cause?: unknown })?.cause] as {
    code?: unknown;
    message?: unknown;
  }[]) {
    if (error && typeof error.code === "string" && error.code !== "UND_ERR_ABORTED")
      return `${error.code}${typeof error.message === "string" ? ` (${error.message})` : ""}`;
  }
  return (cause as Error)?.message ?? String(cause);
}

function unavailable(message: string, cause: unknown, details: Record<string, unknown>): AssemblyError {
  return new AssemblyError("GATE_UNAVAILABLE", message, details, cause === undefined ? undefined : { cause });
}

/**
 * Where a state command reads and changes state: the embedded SQLite store (`--store`, the
 * default) or a shared gateway (`--gateway <url>` with `--api-key`, or `AA_GATEWAY_URL` /
 * `AA_API_KEY`). Both are seen through one operator interface, so each command is written once.
 */

import { resolve } from "node:path";
import type {
  AgentControl,
  Approval,
  ApprovalState,
  AuditEvent,
  AuditPage,
  AuditQuery,
  ChainProgress,
  EngineEvent,
  EngineEventType,
  Posture,
  Subscription,
  VerifyResult,
} from "@aa/engine";
import type { Command } from "commander";
import { CliError, ExitCode } from "./output.js";
import { DEFAULT_STORE, openOperatorEngine } from "./store.js";

/** What the state commands need, embedded or remote. */
export interface OperatorState {
  /** `store` or `gateway`, and where (a file path or the gateway URL), for messages. */
  readonly kind: "store" | "gateway";
  readonly source: string;
  listApprovals(filter: { state?: ApprovalState }): Promise<Approval[]>;
  getApproval(id: string): Promise<Approval | undefined>;
  /** With a gateway the reviewer is the API key's principal; `reviewer` is used by the store only. */
  approve(id: string, reviewer: string, reason?: string): Promise<Approval>;
  deny(id: string, reviewer: string, reason?: string): Promise<Approval>;
  audit(query: AuditQuery): Promise<AuditPage<AuditEvent>>;
  /**
   * `onProgress`: per chunk, from the store's engine. A gateway verifies in one HTTP request with
   * no progress stream, so it never calls it.
   */
  verify(onProgress?: (progress: ChainProgress) => void): Promise<VerifyResult>;
  /** The seq of the newest audit record (0 when empty); a gateway pages through the audit for it. */
  headSeq(): Promise<number>;
  /** The same when it costs nothing (the store); undefined for a gateway. */
  knownHeadSeq(): Promise<number | undefined>;
  /** Streams the JSONL export (engine format) chunk by chunk to `write`, which may hold it back. */
  exportAudit(write: (chunk: Uint8Array | string) => Promise<void>): Promise<void>;
  listAgentControls(): Promise<AgentControl[]>;
  contain(agentId: string, operator: string, reason: string): Promise<AgentControl>;
  release(agentId: string, operator: string, reason: string): Promise<AgentControl>;
  posture(): Promise<Posture>;
  subscribe(
    callback: (event: EngineEvent) => unknown,
    options: { after?: number; events?: EngineEventType[]; agentFilter?: string[] },
  ): Promise<Subscription>;
  close(): Promise<void>;
}

export interface StateOptions {
  store?: string;
  gateway?: string;
  apiKey?: string;
}

/** `--store`, `--gateway`, `--api-key` on a state command. */
export function addStateOptions(command: Command): Command {
  return command
    .option("--store <file>", `embedded SQLite store of the agent (default ${DEFAULT_STORE})`)
    .option("--gateway <url>", "a shared gateway instead of a store (env AA_GATEWAY_URL)")
    .option("--api-key <key>", "operator API key for --gateway (env AA_API_KEY)");
}

/**
 * The gateway when `--gateway` is given, or `AA_GATEWAY_URL` is set and `--store` is not; the
 * store otherwise. Both flags at once is a usage error.
 */
export function resolveState(
  opts: StateOptions,
  env: NodeJS.ProcessEnv = process.env,
): { kind: "store"; store: string } | { kind: "gateway"; url: string; apiKey: string } {
  if (opts.gateway !== undefined && opts.store !== undefined) {
    throw new CliError("pass either --store or --gateway, not both", ExitCode.USAGE);
  }
  const url = opts.gateway ?? (opts.store === undefined ? env.AA_GATEWAY_URL || undefined : undefined);
  if (url === undefined) {
    if (opts.apiKey !== undefined) throw new CliError("--api-key applies to --gateway", ExitCode.USAGE);
    return { kind: "store", store: opts.store ?? DEFAULT_STORE };
  }
  const apiKey = opts.apiKey ?? (env.AA_API_KEY || undefined);
  if (apiKey === undefined) {
    throw new CliError(
      `the gateway ${url} needs an operator API key: pass --api-key <key> or set AA_API_KEY (aa keys create --kind operator)`,
      ExitCode.USAGE,
    );
  }
  return { kind: "gateway", url, apiKey };
}

/** Run `fn` against the resolved state and always close it. */
export async function withState<T>(opts: StateOptions, fn: (state: OperatorState) => Promise<T>): Promise<T> {
  const state = await openState(opts);
  try {
    return await fn(state);
  } finally {
    await state.close();
  }
}

export async function openState(opts: StateOptions): Promise<OperatorState> {
  const where = resolveState(opts);
  return where.kind === "store" ? openStoreState(where.store) : openGatewayState(where.url, where.apiKey);
}

async function openStoreState(store: string): Promise<OperatorState> {
  const engine = await openOperatorEngine(store);
  const storeHead = async () => {
    const probe = await engine.subscribe(() => {});
    probe.unsubscribe();
    return probe.lastSeq;
  };
  return {
    kind: "store",
    source: resolve(store),
    listApprovals: (filter) => engine.listApprovals(filter),
    getApproval: (id) => engine.getApproval(id),
    approve: (id, reviewer, reason) => engine.approve(id, reviewer, reason),
    deny: (id, reviewer, reason) => engine.deny(id, reviewer, reason),
    audit: (query) => engine.audit(query),
    verify: (onProgress) => engine.verify(onProgress ? { onProgress } : {}),
    headSeq: () => storeHead(),
    knownHeadSeq: () => storeHead(),
    async exportAudit(write) {
      const { Writable } = await import("node:stream");
      const sink = new Writable({
        write(chunk: Buffer | string, _encoding, done) {
          write(chunk).then(() => done(), done);
        },
      });
      await engine.exportAudit(sink);
      await new Promise<void>((resolve, reject) => {
        sink.end((error?: Error | null) => (error ? reject(error) : resolve()));
      });
    },
    listAgentControls: () => engine.listAgentControls(),
    contain: (agentId, operator, reason) => engine.contain(agentId, operator, reason),
    release: (agentId, operator, reason) => engine.release(agentId, operator, reason),
    posture: () => engine.posture(),
    subscribe: (callback, options) => engine.subscribe(callback, options),
    close: () => engine.close(),
  };
}

/** `AA_GATEWAY_RETRY_DELAYS_MS=0,0`: retry delays of the CLI's gateway client (default 1000,2000,4000). */
function retryDelaysFromEnv(env: NodeJS.ProcessEnv): number[] | undefined {
  const raw = env.AA_GATEWAY_RETRY_DELAYS_MS;
  if (raw === undefined || raw === "") return undefined;
  const delays = raw.split(",").map((d) => Number(d.trim()));
  if (delays.some((d) => !Number.isFinite(d) || d < 0)) {
    throw new CliError(
      `AA_GATEWAY_RETRY_DELAYS_MS must be comma-separated milliseconds, e.g. 1000,2000,4000 (got ${raw})`,
      ExitCode.USAGE,
    );
  }
  return delays;
}

async function openGatewayState(url: string, apiKey: string): Promise<OperatorState> {
  const { GatewayClient } = await import("@aa/core");
  const delays = retryDelaysFromEnv(process.env);
  let client: InstanceType<typeof GatewayClient>;
  try {
    client = new GatewayClient({ url, apiKey, ...(delays ? { retryDelaysMs: delays } : {}) });
  } catch (error) {
    throw new CliError(`--gateway: ${(error as Error).message}`, ExitCode.USAGE);
  }
  return {
    kind: "gateway",
    source: client.baseUrl,
    listApprovals: (filter) => client.listApprovals(filter),
    async getApproval(id) {
      try {
        return await client.getApproval(id);
      } catch (error) {
        if ((error as { code?: unknown }).code === "APPROVAL_NOT_FOUND") return undefined;
        throw error;
      }
    },
    approve: (id, _reviewer, reason) => client.approve(id, reason),
    deny: (id, _reviewer, reason) => client.deny(id, reason),
    audit: (query) => client.audit(query),
    // POST /v1/audit/verify answers once, at the end: there is no progress to pass on.
    verify: () => client.verify(),
    async headSeq() {
      let cursor: string | undefined;
      let head = 0;
      do {
        const page = await client.audit({ limit: 1000, ...(cursor ? { cursor } : {}) });
        const last = page.items.at(-1);
        if (last) head = last.seq;
        cursor = page.nextCursor;
      } while (cursor);
      return head;
    },
    knownHeadSeq: async () => undefined,
    async exportAudit(write) {
      await client.exportAudit(write);
    },
    listAgentControls: () => client.listAgents(),
    contain: (agentId, _operator, reason) => client.contain(agentId, reason),
    release: (agentId, _operator, reason) => client.releaseAgent(agentId, reason),
    posture: () => client.posture(),
    subscribe: (callback, options) => client.subscribe(callback, options),
    close: async () => {},
  };
}

/**
 * Counts what passes through an export (engine JSONL: one object per line, `type` first) so both
 * modes report the same summary and progress: records (with the last seq), outcomes, checkpoints.
 */
export class ExportCounter {
  records = 0;
  outcomes = 0;
  checkpoints = 0;
  lastSeq = 0;
  #partial = "";
  readonly #decoder = new TextDecoder();

  feed(chunk: Uint8Array | string): void {
    const text =
      this.#partial + (typeof chunk === "string" ? chunk : this.#decoder.decode(chunk, { stream: true }));
    const lines = text.split("\n");
    this.#partial = lines.pop() ?? "";
    for (const line of lines) this.#line(line);
  }

  #line(line: string): void {
    if (line.startsWith('{"type":"record","seq":')) {
      this.records++;
      const seq = Number.parseInt(line.slice(23), 10);
      if (Number.isFinite(seq)) this.lastSeq = seq;
    } else if (line.startsWith('{"type":"outcome"')) this.outcomes++;
    else if (line.startsWith('{"type":"checkpoint"')) this.checkpoints++;
  }
}

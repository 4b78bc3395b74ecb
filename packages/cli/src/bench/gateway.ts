/**
 * `aa bench --gateway`: decisions per second and latency over HTTP against a running gateway, at
 * N keep-alive connections, beside the gateway's bare round trip (`GET /v1/health`, no auth, no
 * decision) measured with the same connections in the same run.
 *
 * Every decision is real: the gateway writes an audit record for each (action type `aa.bench`), so
 * the command refuses to run without `--yes` (checked by the caller, before any request).
 */
import { Pool } from "undici";
import { CliError, ExitCode } from "../output.js";
import { median, nowNs, round, summarize } from "./stats.js";

export interface GatewayBenchOptions {
  /** Base URL of the gateway (`http://host:7391`, or with a path prefix behind a proxy). */
  url: string;
  /** An agent key: decisions are made as its agent. */
  apiKey: string;
  /** The action type of every decision (`aa.bench`). */
  actionType: string;
  connections: number;
  /** Timed load per endpoint, ms. */
  durationMs: number;
  /** Untimed load per endpoint before it, ms (JIT, connections, the store's caches). */
  warmupMs: number;
  onStage?: (stage: string) => void;
  /** Told before the first decision is sent: who the records will be written as. */
  onIdentity?: (identity: GatewayIdentity) => void;
}

export interface GatewayIdentity {
  orgId: string;
  agentId: string;
  /** The gateway's circuit breaker for this agent when the run started. */
  cbState?: string;
  contained?: boolean;
}

/** One endpoint under load. Times in µs. */
export interface EndpointFigures {
  endpoint: string;
  /** Answered requests in the timed window (any status). */
  requests: number;
  /** Answered with 200 per second of the timed window. */
  requestsPerSecond: number;
  p50Us: number;
  p99Us: number;
  /** Answers other than 200, by `<status> <error code>`. */
  errors: Record<string, number>;
}

/** The `--json` report of a gateway run. */
export interface GatewayBenchReport {
  mode: "gateway";
  gateway: string;
  orgId: string;
  agentId: string;
  connections: number;
  durationSeconds: number;
  warmupSeconds: number;
  baseline: EndpointFigures;
  decisions: EndpointFigures & {
    actionType: string;
    /** Decisions per status (`executed`, `denied`, `requested`). */
    statuses: Record<string, number>;
    /** Denials per reason (`CIRCUIT_OPEN` means the agent's breaker opened: the policy was not evaluated). */
    denialReasons: Record<string, number>;
  };
  /** decisions.requestsPerSecond / baseline.requestsPerSecond */
  ratio: number;
  /** Decisions the gateway answered with 200 during the run, warm-up included: each wrote an audit record. */
  auditRecordsWritten: number;
  /** This process (the load generator): CPU used per second of load, in % of one core (median of both endpoints). */
  clientCpuPercent: number;
}

interface Load {
  requests: number;
  ok: number;
  samplesNs: number[];
  elapsedNs: number;
  errors: Record<string, number>;
  bodies: Map<string, number>;
  cpuPercent: number;
}

/** The error code in a wire-contract error body, if there is one. */
function errorCode(text: string): string | undefined {
  try {
    const code = (JSON.parse(text) as { error?: { code?: unknown } }).error?.code;
    return typeof code === "string" ? code : undefined;
  } catch {
    return undefined;
  }
}

/** Run the gateway benchmark. Fails with exit 6 (unreachable) or 7 (key or role refused) before any decision. */
export async function runGatewayBench(options: GatewayBenchOptions): Promise<GatewayBenchReport> {
  const base = new URL(options.url);
  const prefix = base.pathname.replace(/\/+$/, "");
  const pool = new Pool(base.origin, {
    connections: options.connections,
    pipelining: 1,
    // A slow gateway is measured, not abandoned; a dead one fails the run.
    headersTimeout: 30_000,
    bodyTimeout: 30_000,
  });
  const stage = options.onStage ?? (() => {});
  try {
    const identity = await preflight(pool, prefix, options);
    options.onIdentity?.(identity);
    const health = { method: "GET" as const, path: `${prefix}/v1/health` };
    const decide = {
      method: "POST" as const,
      path: `${prefix}/v1/actions`,
      headers: { authorization: `Bearer ${options.apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({
        actionType: options.actionType,
        toolName: options.actionType,
        args: { source: "aa bench" },
      }),
    };
    stage(`warming up (${options.warmupMs / 1000} s per endpoint)`);
    await load(pool, health, options.connections, options.warmupMs, false);
    const warmDecisions = await load(pool, decide, options.connections, options.warmupMs, false);
    stage(`GET /v1/health for ${options.durationMs / 1000} s at ${options.connections} connections`);
    const bare = await load(pool, health, options.connections, options.durationMs, false);
    stage(`POST /v1/actions for ${options.durationMs / 1000} s at ${options.connections} connections`);
    const decided = await load(pool, decide, options.connections, options.durationMs, true);

    const statuses: Record<string, number> = {};
    const denialReasons: Record<string, number> = {};
    for (const [key, count] of decided.bodies) {
      const [status, reason] = key.split(" ");
      statuses[status!] = (statuses[status!] ?? 0) + count;
      if (reason) denialReasons[reason] = (denialReasons[reason] ?? 0) + count;
    }
    const baseline = figures("GET /v1/health", bare);
    const decisions = figures("POST /v1/actions", decided);
    return {
      mode: "gateway",
      gateway: `${base.origin}${prefix}`,
      orgId: identity.orgId,
      agentId: identity.agentId,
      connections: options.connections,
      durationSeconds: options.durationMs / 1000,
      warmupSeconds: options.warmupMs / 1000,
      baseline,
      decisions: { ...decisions, actionType: options.actionType, statuses, denialReasons },
      ratio:
        baseline.requestsPerSecond > 0 ? round(decisions.requestsPerSecond / baseline.requestsPerSecond) : 0,
      auditRecordsWritten: warmDecisions.ok + decided.ok,
      clientCpuPercent: Math.round(median([bare.cpuPercent, decided.cpuPercent])),
    };
  } finally {
    await pool.close().catch(() => undefined);
  }
}

function figures(endpoint: string, run: Load): EndpointFigures {
  const latency = run.samplesNs.length > 0 ? summarize(run.samplesNs) : { p50: 0, p99: 0 };
  return {
    endpoint,
    requests: run.requests,
    requestsPerSecond: Math.round(run.ok / (run.elapsedNs / 1e9)),
    p50Us: round(latency.p50 / 1000),
    p99Us: round(latency.p99 / 1000),
    errors: run.errors,
  };
}

/** The gateway answers as a gateway, and the key is an agent key it accepts. */
async function preflight(pool: Pool, prefix: string, options: GatewayBenchOptions): Promise<GatewayIdentity> {
  const get = async (path: string, auth: boolean) => {
    try {
      const res = await pool.request({
        method: "GET",
        path: `${prefix}${path}`,
        headers: auth ? { authorization: `Bearer ${options.apiKey}` } : {},
        headersTimeout: 10_000,
        bodyTimeout: 10_000,
      });
      return { status: res.statusCode, text: await res.body.text() };
    } catch (error) {
      throw new CliError(
        `the gateway at ${options.url} is unreachable: ${(error as Error).message}`,
        ExitCode.UNAVAILABLE,
      );
    }
  };
  const health = await get("/v1/health", false);
  if (health.status !== 200 || !/"status"\s*:\s*"ok"/.test(health.text)) {
    throw new CliError(
      `${options.url} does not answer GET /v1/health like an Agent Assembly gateway (HTTP ${health.status}); check the URL`,
      ExitCode.UNAVAILABLE,
    );
  }
  const whoami = await get("/v1/whoami", true);
  if (whoami.status === 401 || whoami.status === 403) {
    throw new CliError(
      `the gateway refused the API key (${errorCode(whoami.text) ?? `HTTP ${whoami.status}`}); pass an agent key from \`aa keys create --kind agent --agent aa-bench\``,
      ExitCode.FORBIDDEN,
    );
  }
  if (whoami.status !== 200) {
    throw new CliError(
      `GET /v1/whoami answered HTTP ${whoami.status}; is ${options.url} a gateway?`,
      ExitCode.UNAVAILABLE,
    );
  }
  const me = JSON.parse(whoami.text) as {
    role?: string;
    orgId?: string;
    agentId?: string;
    cbState?: string;
    contained?: boolean;
  };
  if (me.role !== "agent" || me.agentId === undefined || me.orgId === undefined) {
    throw new CliError(
      `aa bench --gateway decides as an agent, and this is ${me.role === undefined ? "not an agent key" : `an ${me.role} key`}: create one for the bench with \`aa keys create --kind agent --agent aa-bench\``,
      ExitCode.FORBIDDEN,
    );
  }
  return {
    orgId: me.orgId,
    agentId: me.agentId,
    ...(me.cbState !== undefined ? { cbState: me.cbState } : {}),
    ...(me.contained !== undefined ? { contained: me.contained } : {}),
  };
}

type RequestSpec = {
  method: "GET" | "POST";
  path: string;
  headers?: Record<string, string>;
  body?: string;
};

/**
 * `connections` closed-loop callers for `durationMs`: each sends its next request when its previous
 * answer has been read. A transport error (the gateway went away) ends the run: exit 6.
 */
async function load(
  pool: Pool,
  spec: RequestSpec,
  connections: number,
  durationMs: number,
  readDecisions: boolean,
): Promise<Load> {
  const result: Load = {
    requests: 0,
    ok: 0,
    samplesNs: [],
    elapsedNs: 0,
    errors: {},
    bodies: new Map(),
    cpuPercent: 0,
  };
  let failure: Error | undefined;
  const cpu0 = process.cpuUsage();
  const t0 = nowNs();
  const deadline = t0 + durationMs * 1e6;
  const caller = async () => {
    while (failure === undefined && nowNs() < deadline) {
      const started = nowNs();
      let status: number;
      let text: string;
      try {
        const res = await pool.request(spec);
        status = res.statusCode;
        text = await res.body.text();
      } catch (error) {
        failure ??= error as Error;
        return;
      }
      result.samplesNs.push(nowNs() - started);
      result.requests++;
      if (status === 200) {
        result.ok++;
        if (readDecisions) {
          const answer = JSON.parse(text) as { status?: string; denialReason?: string };
          const key = `${answer.status ?? "unknown"}${answer.denialReason ? ` ${answer.denialReason}` : ""}`;
          result.bodies.set(key, (result.bodies.get(key) ?? 0) + 1);
        }
      } else {
        const key = `${status} ${errorCode(text) ?? "(no error code)"}`;
        result.errors[key] = (result.errors[key] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: connections }, caller));
  result.elapsedNs = nowNs() - t0;
  const cpu = process.cpuUsage(cpu0);
  result.cpuPercent = ((cpu.user + cpu.system) * 1000 * 100) / result.elapsedNs;
  if (failure !== undefined) {
    throw new CliError(
      `the gateway stopped answering after ${result.requests} requests: ${failure.message}`,
      ExitCode.UNAVAILABLE,
    );
  }
  return result;
}

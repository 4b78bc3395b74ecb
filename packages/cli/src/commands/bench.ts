/**
 * `aa bench`: what governance costs on the operator's own machine. Embedded (default): with their
 * policy and a temporary store, each figure beside a baseline measured in the same run. Against a
 * gateway (`--gateway`): decisions per second and latency over HTTP beside the gateway's bare
 * round trip. See docs/cli.md (`aa bench`).
 */
import { existsSync } from "node:fs";
import { loadavg } from "node:os";
import { resolve } from "node:path";
import { compilePolicy } from "@aa/policy";
import type { Command } from "commander";
import { EMBEDDED_SIZES, type EmbeddedBenchReport, runEmbeddedBench } from "../bench/embedded.js";
import { type GatewayBenchReport, runGatewayBench } from "../bench/gateway.js";
import { CliError, color, ExitCode, type Printer } from "../output.js";
import { loadPolicyFile, parseJsonOption } from "./policy.js";

/** The action type of every bench decision sent to a gateway (so its audit records are recognisable). */
export const BENCH_ACTION = "aa.bench";

interface BenchOptions {
  policy: string;
  action: string;
  args?: string;
  metadata?: string;
  concurrency: string;
  rounds?: string;
  quick?: boolean;
  gateway?: string;
  apiKey?: string;
  connections: string;
  duration?: string;
  yes?: boolean;
}

const EMBEDDED_ONLY = ["policy", "action", "args", "metadata", "concurrency", "rounds"] as const;
const GATEWAY_ONLY = ["apiKey", "connections", "duration", "yes"] as const;
const flag = (name: string) => `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/**
 * `--duration`: `10s`, `500ms`, `1m`, or a plain number of seconds; from 100 ms to 1 h. Returns ms.
 */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  const ms = match
    ? Number(match[1]) * (match[2] === "ms" ? 1 : match[2] === "m" ? 60_000 : 1000)
    : Number.NaN;
  if (!Number.isFinite(ms) || ms < 100 || ms > 3_600_000) {
    throw new CliError(
      `--duration must be a time from 100ms to 1h such as 10s, 500ms or 2m (a plain number is seconds), got ${JSON.stringify(text)}`,
      ExitCode.USAGE,
    );
  }
  return Math.round(ms);
}

/** `--<name> <n>`: an integer from `min` to `max`, or a usage error saying so. */
export function parseCount(name: string, text: string, min: number, max: number): number {
  const value = /^\d+$/.test(text.trim()) ? Number(text.trim()) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new CliError(
      `--${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(text)}`,
      ExitCode.USAGE,
    );
  }
  return value;
}

const fmtUs = (us: number) => (us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(2)} µs`);
const fmtRate = (perSecond: number, unit: string) =>
  `${Math.round(perSecond).toLocaleString("en-US")} ${unit}/s`;

/** Machine context printed with every report: figures only mean something next to it. */
function environment() {
  return {
    node: process.version,
    platform: `${process.platform}/${process.arch}`,
    loadAverage: loadavg()[0]!,
  };
}

type Environment = ReturnType<typeof environment> & { loadAverageAtEnd: number };

/** The machine the figures were measured on, and how busy it was (absolute figures move with load). */
function printEnvironment(p: Printer, env: Environment) {
  p.out(
    color.dim(
      `\nnode ${env.node} on ${env.platform}; load average ${env.loadAverage.toFixed(2)} at start, ` +
        `${env.loadAverageAtEnd.toFixed(2)} at end (other work moves absolute figures; ratios less)`,
    ),
  );
}

function printEmbedded(p: Printer, report: EmbeddedBenchReport, policyFile: string, policyHash: string) {
  const { call, decision, durable, groupCommit, verify } = report;
  const outcome =
    call.status === "denied"
      ? color.red(`denied (${call.denialReason ?? "?"})`)
      : call.status === "executed"
        ? color.green("executed")
        : color.yellow(call.status);
  p.out(
    `aa bench (embedded): policy ${policyFile} (hash ${policyHash.slice(0, 12)}…), temporary store, ` +
      `${report.rounds} rounds, medians`,
  );
  p.out(`call ${call.actionType} -> ${outcome}${call.policyName ? ` by ${call.policyName}` : ""}\n`);
  p.table(
    [
      {
        measure: "bare async function call (baseline)",
        p50: fmtUs(decision.bareCall.p50Us),
        p99: fmtUs(decision.bareCall.p99Us),
      },
      {
        measure: "governed decision (policy, no I/O)",
        p50: fmtUs(decision.governed.p50Us),
        p99: fmtUs(decision.governed.p99Us),
        "vs baseline": `+${fmtUs(decision.addedP50Us)} p50`,
      },
      {
        measure: `bare SQLite insert, 1 row/txn, ${durable.recordBytes} B (baseline)`,
        p50: fmtUs(durable.bareInsert.p50Us),
        p99: fmtUs(durable.bareInsert.p99Us),
      },
      {
        measure: "governed decision + audit committed (WAL)",
        p50: fmtUs(durable.governed.p50Us),
        p99: fmtUs(durable.governed.p99Us),
        "vs baseline": `${durable.ratioP50.toFixed(2)}x p50`,
      },
      {
        measure: `bare SQLite insert, ${groupCommit.concurrency} rows/txn (ceiling)`,
        rate: fmtRate(groupCommit.bareBatchedInsertRowsPerSecond, "rows"),
      },
      {
        measure: `group commit, ${groupCommit.concurrency} concurrent callers`,
        rate: fmtRate(groupCommit.decisionsPerSecond, "decisions"),
        "vs baseline": `${groupCommit.ratio.toFixed(2)}x`,
      },
      {
        measure: `verify, ${verify.rows.toLocaleString("en-US")} records`,
        rate: fmtRate(verify.rowsPerSecond, "rows"),
        "vs baseline": verify.chainValid ? "chain valid" : color.red("CHAIN BROKEN"),
      },
    ],
    ["measure", "p50", "p99", "rate", "vs baseline"],
  );
  if (Object.keys(call.statuses).length > 1) {
    p.out(
      color.yellow(
        `\nthe decision changed during the run (${JSON.stringify(call.statuses)}): a budget or rate limit in the policy applied; figures mix both paths`,
      ),
    );
  }
}

function printGateway(p: Printer, report: GatewayBenchReport) {
  const { baseline, decisions } = report;
  p.out(
    `aa bench (gateway): ${report.gateway} as agent ${report.agentId} (org ${report.orgId}), ` +
      `${report.connections} connections, ${report.durationSeconds} s per endpoint after ${report.warmupSeconds} s warm-up`,
  );
  const outcomes = Object.entries(decisions.statuses)
    .map(([status, count]) => `${status} ${count.toLocaleString("en-US")}`)
    .join(", ");
  const reasons = Object.entries(decisions.denialReasons)
    .map(([reason, count]) => `${reason} ${count.toLocaleString("en-US")}`)
    .join(", ");
  p.out(
    `wrote ${report.auditRecordsWritten.toLocaleString("en-US")} audit records (action type ${decisions.actionType}): ` +
      `${outcomes || "no decisions"}${reasons ? ` (${reasons})` : ""}\n`,
  );
  const errors = (e: Record<string, number>) => Object.values(e).reduce((a, b) => a + b, 0);
  p.table(
    [
      {
        measure: "GET /v1/health (bare round trip, baseline)",
        rate: fmtRate(baseline.requestsPerSecond, "req"),
        p50: fmtUs(baseline.p50Us),
        p99: fmtUs(baseline.p99Us),
        errors: errors(baseline.errors),
      },
      {
        measure: "POST /v1/actions (decision + audit record)",
        rate: fmtRate(decisions.requestsPerSecond, "decisions"),
        p50: fmtUs(decisions.p50Us),
        p99: fmtUs(decisions.p99Us),
        errors: errors(decisions.errors),
        "vs baseline": `${(report.ratio * 100).toFixed(0)}%`,
      },
    ],
    ["measure", "rate", "p50", "p99", "errors", "vs baseline"],
  );
  p.out(`\nload generator (this process): ${report.clientCpuPercent}% of one core`);
  if (report.clientCpuPercent >= 90) {
    p.out(
      color.yellow(
        "the load generator was CPU-bound: the figures may be its limit, not the gateway's; run aa bench from another machine, or lower --connections",
      ),
    );
  }
  if ((decisions.denialReasons.CIRCUIT_OPEN ?? 0) > 0) {
    p.out(
      color.yellow(
        `the agent's circuit breaker opened (CIRCUIT_OPEN): those decisions skipped the policy. To measure the policy path, allow ${decisions.actionType} for agent ${report.agentId} (docs/cli.md, aa bench)`,
      ),
    );
  }
}

export function registerBench(program: Command, printer: () => Printer): void {
  program
    .command("bench")
    .description(
      "measure what governance costs on this machine: with your policy and a temporary store (nothing of yours is touched)",
    )
    .option("--policy <file>", "policy file", "aa.policy.yaml")
    .option("--action <type>", "action type of the benchmarked call", BENCH_ACTION)
    .option("--args <json>", "arguments of the benchmarked call, as JSON")
    .option("--metadata <json>", "metadata of the benchmarked call, as JSON")
    .option("--concurrency <n>", "concurrent callers for group commit", "100")
    .option("--rounds <n>", "measurement rounds (default 5, 3 with --quick)")
    .option("--quick", "a short run: about a second embedded, 2 s per endpoint against a gateway")
    .option("--gateway <url>", "measure a running gateway over HTTP instead (writes real audit records)")
    .option("--api-key <key>", "an agent key of that gateway (env AA_API_KEY)")
    .option("--connections <n>", "keep-alive connections to the gateway", "100")
    .option(
      "--duration <time>",
      "load per endpoint against a gateway, e.g. 10s, 500ms (default 10s, 2s with --quick)",
    )
    .option(
      "--yes",
      "agree that the gateway run writes real audit records (action type aa.bench); never prompts",
    )
    .addHelpText(
      "after",
      "\nEvery figure is reported beside a baseline measured in the same run.\n" +
        "Exit codes: 0 done, 2 bad option, invalid policy or --gateway without --yes, 3 the temporary chain did not\n" +
        "verify, 4 no policy file, 6 the gateway is unreachable or answered errors, 7 it refused the key.",
    )
    .action(async (opts: BenchOptions, command: Command) => {
      const p = printer();
      const given = (name: string) => command.getOptionValueSource(name) === "cli";
      if (opts.gateway !== undefined) {
        const misplaced = EMBEDDED_ONLY.find(given);
        if (misplaced) {
          throw new CliError(
            `${flag(misplaced)} applies to the embedded bench; a gateway decides with its own policy and the bench sends action type ${BENCH_ACTION}`,
            ExitCode.USAGE,
          );
        }
        await benchGateway(p, opts, opts.gateway);
        return;
      }
      const misplaced = GATEWAY_ONLY.find(given);
      if (misplaced) throw new CliError(`${flag(misplaced)} applies to --gateway <url>`, ExitCode.USAGE);
      const size = { ...EMBEDDED_SIZES[opts.quick ? "quick" : "full"] };
      if (opts.rounds !== undefined) size.rounds = parseCount("rounds", opts.rounds, 1, 100);
      const concurrency = parseCount("concurrency", opts.concurrency, 1, 10_000);
      const args = parseJsonOption("args", opts.args);
      const metadata = parseJsonOption("metadata", opts.metadata);
      if (
        metadata !== undefined &&
        (metadata === null || typeof metadata !== "object" || Array.isArray(metadata))
      ) {
        throw new CliError("--metadata must be a JSON object, e.g. '{\"pr_size\":12}'", ExitCode.USAGE);
      }
      if (opts.action.trim() === "") throw new CliError("--action must not be empty", ExitCode.USAGE);
      const policyFile = resolve(opts.policy);
      if (!existsSync(policyFile)) {
        throw new CliError(
          `no policy at ${policyFile}; write one with \`aa init\` or pass --policy <file>`,
          ExitCode.NOT_FOUND,
        );
      }
      const policy = compilePolicy(loadPolicyFile(policyFile).document);
      const before = environment();
      const report = await runEmbeddedBench({
        policy,
        call: {
          actionType: opts.action,
          toolName: opts.action,
          ...(args !== undefined ? { args } : {}),
          ...(metadata !== undefined ? { metadata: metadata as Record<string, unknown> } : {}),
        },
        concurrency,
        size,
        ...(p.json ? {} : { onStage: (stage: string) => p.err(color.dim(`aa bench: ${stage}`)) }),
      });
      const full = {
        ...report,
        policy: { file: policyFile, hash: policy.hash },
        environment: { ...before, loadAverageAtEnd: loadavg()[0]! },
      };
      p.data(full, () => {
        printEmbedded(p, report, policyFile, policy.hash);
        printEnvironment(p, full.environment);
      });
      if (!report.verify.chainValid) process.exitCode = ExitCode.VERIFY_FAILED;
    });
}

async function benchGateway(p: Printer, opts: BenchOptions, url: string): Promise<void> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CliError(
      `--gateway must be an http(s) URL such as http://127.0.0.1:7391, got ${JSON.stringify(url)}`,
      ExitCode.USAGE,
    );
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new CliError(`--gateway must be an http(s) URL, got ${JSON.stringify(url)}`, ExitCode.USAGE);
  }
  const apiKey = opts.apiKey ?? (process.env.AA_API_KEY || undefined);
  if (apiKey === undefined) {
    throw new CliError(
      "aa bench --gateway needs an agent key: pass --api-key <key> or set AA_API_KEY (aa keys create --kind agent --agent aa-bench)",
      ExitCode.USAGE,
    );
  }
  const connections = parseCount("connections", opts.connections, 1, 1000);
  const durationMs = parseDuration(opts.duration ?? (opts.quick ? "2s" : "10s"));
  const warmupMs = Math.min(2000, Math.max(200, Math.round(durationMs / 5)));
  if (!opts.yes) {
    throw new CliError(
      `aa bench --gateway makes real decisions: the gateway writes one audit record per decision (action type ${BENCH_ACTION}) ` +
        "to its chain for the key's agent, as many as it can answer in the run. Pass --yes to go ahead (use a dedicated agent key).",
      ExitCode.USAGE,
    );
  }
  const before = environment();
  const report = await runGatewayBench({
    url,
    apiKey,
    actionType: BENCH_ACTION,
    connections,
    durationMs,
    warmupMs,
    onIdentity: (who) => {
      // Always said, --json or not: the run writes to a real chain.
      p.err(
        color.yellow(
          `aa bench: writing real audit records to ${parsed.origin} as agent ${who.agentId} (org ${who.orgId}), action type ${BENCH_ACTION}`,
        ),
      );
      if (who.contained)
        p.err(
          color.yellow(
            `aa bench: agent ${who.agentId} is contained: every decision will be denied CIRCUIT_OPEN`,
          ),
        );
      else if (who.cbState !== undefined && who.cbState !== "closed")
        p.err(color.yellow(`aa bench: the circuit breaker of agent ${who.agentId} is ${who.cbState}`));
    },
    ...(p.json ? {} : { onStage: (stage: string) => p.err(color.dim(`aa bench: ${stage}`)) }),
  });
  const env = { ...before, loadAverageAtEnd: loadavg()[0]! };
  p.data({ ...report, environment: env }, () => {
    printGateway(p, report);
    printEnvironment(p, env);
  });
  const failed = Object.keys(report.baseline.errors).concat(Object.keys(report.decisions.errors));
  if (failed.length > 0) {
    p.err(color.red(`aa bench: the gateway answered errors: ${failed.join(", ")}`));
    process.exitCode = failed.some((key) => key.startsWith("401 ") || key.startsWith("403 "))
      ? ExitCode.FORBIDDEN
      : ExitCode.UNAVAILABLE;
  }
}

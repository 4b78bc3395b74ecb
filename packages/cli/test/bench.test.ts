/**
 * `aa bench` through the real binary, always with `--quick`: the structure and plausibility of
 * the report (positive figures, p99 >= p50, ratios that follow from the figures beside them), never
 * timing thresholds (speed belongs to benchmarks, not tests).
 */
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { GatewayBenchReport } from "../src/bench/gateway.js";
import { STARTER_POLICY } from "../src/commands/init.js";

const bin = new URL("../dist/bin.js", import.meta.url).pathname;
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "aa-cli-bench-"));
  dirs.push(dir);
  return dir;
}

/** Run the real `aa`; never throws. `TMPDIR` points at a directory of the test's own. */
function aa(cwd: string, args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    const clean = { ...process.env };
    delete clean.AA_GATEWAY_URL;
    delete clean.AA_API_KEY;
    execFile(
      process.execPath,
      [bin, ...args],
      { cwd, env: { ...clean, NO_COLOR: "1", ...env } },
      (error, stdout, stderr) =>
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

interface Latency {
  p50Us: number;
  p99Us: number;
  samplesPerRound: number;
}

function expectLatency(figures: Latency) {
  expect(figures.p50Us).toBeGreaterThan(0);
  expect(figures.p99Us).toBeGreaterThanOrEqual(figures.p50Us);
  expect(Number.isInteger(figures.samplesPerRound) && figures.samplesPerRound > 0).toBe(true);
}

/** `ratio` is `numerator / denominator` as reported (both rounded to 0.001 first, then the ratio). */
function expectRatio(ratio: number, numerator: number, denominator: number) {
  expect(ratio).toBeGreaterThan(0);
  expect(Math.abs(ratio - numerator / denominator)).toBeLessThanOrEqual(0.0005 + 1e-9);
}

describe("aa bench (embedded)", { timeout: 60_000 }, () => {
  it("measures with the operator's policy in a temporary store and reports figures beside their baselines", async () => {
    const cwd = tempDir();
    const tmp = tempDir();
    writeFileSync(join(cwd, "aa.policy.yaml"), STARTER_POLICY);
    const result = await aa(
      cwd,
      ["--json", "bench", "--quick", "--action", "read_diff", "--concurrency", "16"],
      {
        TMPDIR: tmp,
      },
    );
    expect(result.code, result.stderr).toBe(0);
    // --json keeps stderr for real problems: no stage lines, no Node warning for node:sqlite.
    expect(result.stderr).toBe("");
    const report = JSON.parse(result.stdout);
    expect(report).toMatchObject({
      mode: "embedded",
      rounds: 3,
      agentId: "aa-bench",
      call: { actionType: "read_diff", status: "executed", policyName: "reads" },
      policy: { file: join(cwd, "aa.policy.yaml"), hash: expect.stringMatching(/^[0-9a-f]{64}$/) },
      environment: { node: process.version },
    });
    // The policy allows read_*: every decision of the run took the same (executed) path.
    expect(Object.keys(report.call.statuses)).toEqual(["executed"]);

    const { decision, durable, groupCommit, verify } = report;
    expectLatency(decision.bareCall);
    expectLatency(decision.governed);
    expect(decision.addedP50Us).toBeCloseTo(decision.governed.p50Us - decision.bareCall.p50Us, 3);
    expect(decision.addedP99Us).toBeCloseTo(decision.governed.p99Us - decision.bareCall.p99Us, 3);

    expectLatency(durable.bareInsert);
    expectLatency(durable.governed);
    expect(durable.recordBytes).toBeGreaterThan(100);
    expectRatio(durable.ratioP50, durable.governed.p50Us, durable.bareInsert.p50Us);

    expect(groupCommit.concurrency).toBe(16);
    expect(groupCommit.decisionsPerSecond).toBeGreaterThan(0);
    expect(groupCommit.bareBatchedInsertRowsPerSecond).toBeGreaterThan(0);
    expectRatio(
      groupCommit.ratio,
      groupCommit.decisionsPerSecond,
      groupCommit.bareBatchedInsertRowsPerSecond,
    );

    // Every committed decision of the run is in the verified chain.
    expect(verify.chainValid).toBe(true);
    expect(verify.rows).toBeGreaterThan(groupCommit.concurrency);
    expect(verify.rows).toBeLessThanOrEqual(report.call.statuses.executed);
    expect(verify.rowsPerSecond).toBeGreaterThan(0);

    // Nothing of the operator's was created, and the temporary directory is gone.
    expect(existsSync(join(cwd, ".aa"))).toBe(false);
    expect(readdirSync(tmp)).toEqual([]);
  });

  it("prints a table for people, with the decision the policy gave the benchmarked call", async () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, "aa.policy.yaml"), STARTER_POLICY);
    const result = await aa(cwd, ["bench", "--quick", "--rounds", "1"]);
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.split("\n");
    expect(lines[0]).toMatch(/^aa bench \(embedded\): policy .*aa\.policy\.yaml \(hash [0-9a-f]{12}…\)/);
    // The default call is aa.bench, which the starter policy does not match.
    expect(lines[1]).toBe("call aa.bench -> denied (NO_MATCHING_POLICY)");
    expect(result.stdout).toMatch(/^MEASURE +P50 +P99 +RATE +VS BASELINE$/m);
    expect(result.stdout).toMatch(
      /^governed decision \+ audit committed \(WAL\) +[\d.]+ µs .* [\d.]+x p50$/m,
    );
    expect(result.stdout).toMatch(/^verify, [\d,]+ records +[\d,]+ rows\/s +chain valid$/m);
    expect(result.stdout).toMatch(
      /^node v\d+\.\d+\.\d+ on \w+\/\w+; load average [\d.]+ at start, [\d.]+ at end/m,
    );
    expect(result.stderr).toMatch(/aa bench: round 1\/1/);

    const help = await aa(cwd, ["bench", "--help"]);
    expect(help.code).toBe(0);
    for (const option of [
      "--policy",
      "--action",
      "--concurrency",
      "--quick",
      "--gateway",
      "--connections",
      "--duration",
      "--yes",
    ])
      expect(help.stdout).toContain(option);
    expect(help.stdout).toMatch(/Exit codes: 0 done, 2 bad option/);
  });

  it("removes its temporary directory when interrupted (Ctrl-C), exit 130", async () => {
    const cwd = tempDir();
    const tmp = tempDir();
    writeFileSync(join(cwd, "aa.policy.yaml"), STARTER_POLICY);
    // A full run (many seconds), interrupted as soon as its first round starts.
    const child = spawn(process.execPath, [bin, "bench"], {
      cwd,
      env: { ...process.env, NO_COLOR: "1", TMPDIR: tmp },
      stdio: ["ignore", "ignore", "pipe"],
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
      if (stderr.includes("round 1/")) child.kill("SIGINT");
    });
    expect(await exited).toBe(130);
    expect(readdirSync(tmp)).toEqual([]);
  });

  it("refuses bad option values with exit 2 and a missing policy with exit 4, naming the fix", async () => {
    const cwd = tempDir();
    const missing = await aa(cwd, ["bench", "--quick"]);
    expect(missing.code).toBe(4);
    expect(missing.stderr).toMatch(
      /no policy at .*aa\.policy\.yaml; write one with `aa init` or pass --policy <file>/,
    );

    writeFileSync(join(cwd, "aa.policy.yaml"), STARTER_POLICY);
    const cases: Array<[string[], RegExp]> = [
      [["--concurrency", "0"], /--concurrency must be an integer from 1 to 10000, got "0"/],
      [["--concurrency", "many"], /--concurrency must be an integer/],
      [["--rounds", "2.5"], /--rounds must be an integer from 1 to 100, got "2.5"/],
      [["--args", "{nope"], /--args must be JSON/],
      [["--metadata", "[1]"], /--metadata must be a JSON object/],
      [["--action", " "], /--action must not be empty/],
    ];
    for (const [flags, message] of cases) {
      const bad = await aa(cwd, ["bench", "--quick", ...flags]);
      expect(bad.code, flags.join(" ")).toBe(2);
      expect(bad.stderr).toMatch(message);
    }
    const json = await aa(cwd, ["--json", "bench", "--concurrency", "-3"]);
    expect(json.code).toBe(2);

    writeFileSync(join(cwd, "broken.yaml"), "version: 1\npolicies:\n  - name: x\n    efect: allow\n");
    const invalid = await aa(cwd, ["bench", "--quick", "--policy", "broken.yaml"]);
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toMatch(/broken\.yaml/);
  });
});

/** The policy docs/cli.md suggests for the bench agent: its aa.bench calls are allowed, nothing else. */
const BENCH_POLICY = `version: 1
default: deny
policies:
  - name: aa-bench
    action: aa.bench
    effect: allow
    when:
      - { field: agent.id, op: eq, value: aa-bench }
`;

/** Starts the real `aa --json gateway start --port 0` in `cwd`; resolves once it listens. */
async function startGateway(cwd: string) {
  const child = spawn(process.execPath, [bin, "--json", "gateway", "start", "--port", "0"], {
    cwd,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" },
  });
  let stdout = "";
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      try {
        resolve((JSON.parse(stdout) as { url: string }).url);
      } catch {
        // not complete yet
      }
    });
    void exited.then((code) => reject(new Error(`aa gateway start exited ${code}: ${stderr}`)));
  });
  return { child, url, exited };
}

async function createKey(cwd: string, ...args: string[]): Promise<string> {
  const created = await aa(cwd, ["--json", "keys", "create", ...args]);
  expect(created.code, created.stderr).toBe(0);
  return (JSON.parse(created.stdout) as { key: string }).key;
}

describe("aa bench --gateway", { timeout: 60_000 }, () => {
  it("measures a real gateway beside its bare round trip; every answered decision is in the chain", async () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, "aa.policy.yaml"), BENCH_POLICY);
    const agentKey = await createKey(cwd, "--kind", "agent", "--agent", "aa-bench");
    const operatorKey = await createKey(cwd, "--kind", "operator");
    const gateway = await startGateway(cwd);
    let report: GatewayBenchReport;
    try {
      const flags = ["--gateway", gateway.url, "--quick", "--connections", "4", "--duration", "1s"];
      // Refused before any request: no --yes (CI-safe, never prompts), then a key of the wrong kind.
      const unconfirmed = await aa(cwd, ["bench", ...flags, "--api-key", agentKey]);
      expect(unconfirmed.code).toBe(2);
      expect(unconfirmed.stderr).toMatch(
        /writes one audit record per decision \(action type aa\.bench\).*Pass --yes/,
      );
      const operator = await aa(cwd, ["bench", ...flags, "--api-key", operatorKey, "--yes"]);
      expect(operator.code).toBe(7);
      expect(operator.stderr).toMatch(
        /this is an operator key: create one for the bench with `aa keys create --kind agent/,
      );
      const unknown = await aa(cwd, [
        "bench",
        ...flags,
        "--api-key",
        `${agentKey.slice(0, -4)}0000`,
        "--yes",
      ]);
      expect(unknown.code).toBe(7);

      // The key from the environment, as a script would pass it.
      const result = await aa(cwd, ["--json", "bench", ...flags, "--yes"], { AA_API_KEY: agentKey });
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).toMatch(
        /writing real audit records to .* as agent aa-bench \(org default\), action type aa\.bench/,
      );
      report = JSON.parse(result.stdout);
    } finally {
      gateway.child.kill("SIGTERM");
    }
    expect(await gateway.exited).toBe(0);

    expect(report).toMatchObject({
      mode: "gateway",
      gateway: gateway.url,
      orgId: "default",
      agentId: "aa-bench",
      connections: 4,
      durationSeconds: 1,
      baseline: { endpoint: "GET /v1/health", errors: {} },
      decisions: { endpoint: "POST /v1/actions", actionType: "aa.bench", errors: {}, denialReasons: {} },
    });
    for (const figures of [report.baseline, report.decisions]) {
      expect(figures.requests).toBeGreaterThan(0);
      expect(figures.requestsPerSecond).toBeGreaterThan(0);
      expect(figures.p50Us).toBeGreaterThan(0);
      expect(figures.p99Us).toBeGreaterThanOrEqual(figures.p50Us);
    }
    // The policy allows aa.bench for this agent: every timed decision was executed.
    expect(report.decisions.statuses).toEqual({ executed: report.decisions.requests });
    expectRatio(report.ratio, report.decisions.requestsPerSecond, report.baseline.requestsPerSecond);
    expect(report.auditRecordsWritten).toBeGreaterThan(report.decisions.requests);
    expect(report.clientCpuPercent).toBeGreaterThan(0);

    // The refused runs wrote nothing; the measured one wrote exactly what it reports, and the chain verifies.
    const verify = await aa(cwd, ["--json", "audit", "verify"]);
    expect(verify.code, verify.stderr).toBe(0);
    expect(JSON.parse(verify.stdout)).toMatchObject({
      chainValid: true,
      checked: report.auditRecordsWritten,
    });
  });

  it("says clearly what is wrong: unreachable (6), missing key, bad values and misplaced flags (2)", async () => {
    const cwd = tempDir();
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const url = `http://127.0.0.1:${port}`;

    const down = await aa(cwd, ["bench", "--gateway", url, "--api-key", "aa_agent_x_y", "--yes"]);
    expect(down.code).toBe(6);
    expect(down.stderr).toMatch(/the gateway at .* is unreachable/);

    const cases: Array<[string[], RegExp]> = [
      [["--gateway", url, "--yes"], /needs an agent key: pass --api-key <key> or set AA_API_KEY/],
      [["--gateway", "localhost:7391", "--api-key", "k", "--yes"], /--gateway must be an http\(s\) URL/],
      [
        ["--gateway", url, "--api-key", "k", "--duration", "fast"],
        /--duration must be a time from 100ms to 1h/,
      ],
      [["--gateway", url, "--api-key", "k", "--duration", "2h"], /--duration must be a time/],
      [
        ["--gateway", url, "--api-key", "k", "--connections", "0"],
        /--connections must be an integer from 1 to 1000/,
      ],
      [
        ["--gateway", url, "--api-key", "k", "--yes", "--policy", "p.yaml"],
        /--policy applies to the embedded bench/,
      ],
      [
        ["--gateway", url, "--api-key", "k", "--yes", "--action", "x"],
        /--action applies to the embedded bench/,
      ],
      [["--connections", "8"], /--connections applies to --gateway <url>/],
      [["--yes"], /--yes applies to --gateway <url>/],
    ];
    for (const [flags, message] of cases) {
      const bad = await aa(cwd, ["bench", ...flags]);
      expect(bad.code, flags.join(" ")).toBe(2);
      expect(bad.stderr).toMatch(message);
    }
  });
});

// @aa/gateway benchmark: decisions per second over HTTP at 100 connections, each with a durable
// audit record (SQLite, WAL), against a bare node:http JSON endpoint measured in the same run with
// the same load generator (autocannon, in this process; each server in its own process, all on the
// same cores). Spec §8 targets: >= 20k decisions/s, p99 <= 10 ms, >= 60% of the bare endpoint.
// AA_BENCH_SECONDS (default 10) per measurement; AA_BENCH_QUICK=1 runs 3 s each.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { openEngine } from "@aa/engine";
import { compilePolicy, parsePolicy } from "@aa/policy";
import autocannon from "autocannon";
import { table } from "../../../scripts/bench-util.mjs";

const seconds = Number(process.env.AA_BENCH_SECONDS ?? (process.env.AA_BENCH_QUICK === "1" ? 3 : 10));
const CONNECTIONS = 100;
const serverScript = new URL("./servers.mjs", import.meta.url).pathname;
const body = JSON.stringify({
  actionType: "pr.open",
  toolName: "open_pr",
  metadata: { pr_size: 10 },
  args: { title: "x" },
});

function start(args) {
  const child = spawn(process.execPath, [serverScript, ...args], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  return new Promise((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`server ${args[0]} exited ${code}`)));
    child.stdout.setEncoding("utf8").on("data", (chunk) => {
      out += chunk;
      const url = /listening (\S+)\n/.exec(out);
      if (url) resolve({ child, url: url[1], key: /key (\S+)\n/.exec(out)?.[1] });
    });
  });
}

async function stop(child) {
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await exited;
}

/** The server process's CPU time in ms (Linux /proc; undefined elsewhere). */
function cpuMs(pid) {
  const file = `/proc/${pid}/stat`;
  if (!existsSync(file)) return undefined;
  // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
  const fields = readFileSync(file, "utf8").split(") ")[1].split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // USER_HZ is 100 on Linux
}

/**
 * One measurement, with the server's CPU per answered request: on shared cores the req/s figures
 * move with whatever else runs, the CPU a request costs the server much less.
 */
async function measure(server, url, headers) {
  const before = cpuMs(server.child.pid);
  const result = await load(url, headers);
  const after = cpuMs(server.child.pid);
  result.cpuUsPerRequest =
    before === undefined || after === undefined
      ? undefined
      : ((after - before) * 1000) / result.requests.total;
  result.loadAverage = loadavg()[0];
  return result;
}

function load(url, headers, duration = seconds) {
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url,
        method: "POST",
        connections: CONNECTIONS,
        duration,
        headers: { "content-type": "application/json", ...headers },
        body,
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    );
  });
}

const ROUNDS = Number(process.env.AA_BENCH_ROUNDS ?? 2);
const dir = mkdtempSync(join(tmpdir(), "aa-gateway-bench-"));
try {
  // Bare and gateway alternate, ROUNDS times: other load on the machine drifts, and a ratio taken
  // from neighbouring measurements drifts less than one from two ends of the run.
  const file = join(dir, "gateway.db");
  const rounds = [];
  for (let round = 0; round < ROUNDS; round++) {
    const bare = await start(["bare"]);
    await load(`${bare.url}/v1/actions`, {}, 2); // warm-up (JIT, connections), not measured
    const bareResult = await measure(bare, `${bare.url}/v1/actions`, {});
    await stop(bare.child);
    const gateway = await start(["gateway", file]);
    const auth = { authorization: `Bearer ${gateway.key}` };
    await load(`${gateway.url}/v1/actions`, auth, 2);
    const gatewayResult = await measure(gateway, `${gateway.url}/v1/actions`, auth);
    await stop(gateway.child);
    rounds.push({ bareResult, gatewayResult });
  }

  // Every answered decision has its record, and the chain verifies (the engine reopens the file).
  const engine = await openEngine({
    store: file,
    orgId: "bench",
    policy: compilePolicy(parsePolicy("version: 1\ndefault: deny\npolicies: []\n")),
  });
  const verify = await engine.verify();
  await engine.close();

  const row = (name, round, r) => ({
    endpoint: name,
    round: round + 1,
    "req/s": Math.round(r.requests.average).toLocaleString("en-US"),
    "p50 ms": r.latency.p50,
    "p99 ms": r.latency.p99,
    "server CPU µs/req": r.cpuUsPerRequest === undefined ? "n/a" : r.cpuUsPerRequest.toFixed(1),
    non2xx: r.non2xx,
    errors: r.errors + r.timeouts,
    "load avg": r.loadAverage.toFixed(2),
  });
  console.log(
    `${CONNECTIONS} connections, ${seconds} s per measurement, load generator and servers share the cores\n`,
  );
  table(
    rounds.flatMap(({ bareResult, gatewayResult }, i) => [
      row("bare node:http JSON", i, bareResult),
      row("gateway decide + durable audit (SQLite)", i, gatewayResult),
    ]),
  );
  const ratios = rounds.map((r) => r.gatewayResult.requests.average / r.bareResult.requests.average);
  const median = (values) => {
    const sorted = [...values].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  };
  const best = rounds.reduce((a, b) =>
    b.gatewayResult.requests.average > a.gatewayResult.requests.average ? b : a,
  );
  console.log(
    `\ngateway / bare per round: ${ratios.map((r) => `${(r * 100).toFixed(0)}%`).join(", ")} (target >= 60%); ` +
      `median ${(median(ratios) * 100).toFixed(0)}%; ` +
      `best gateway round ${Math.round(best.gatewayResult.requests.average).toLocaleString("en-US")} decisions/s (target >= 20,000; bare in that round ${Math.round(best.bareResult.requests.average).toLocaleString("en-US")} req/s), p99 ${best.gatewayResult.latency.p99} ms (target <= 10 ms)`,
  );
  if (rounds.every((r) => r.gatewayResult.cpuUsPerRequest !== undefined)) {
    const cpu = rounds.map((r) => r.bareResult.cpuUsPerRequest / r.gatewayResult.cpuUsPerRequest);
    console.log(
      `server CPU per request, bare / gateway: median ${(median(cpu) * 100).toFixed(0)}% (moves less with other load than req/s); load average now ${loadavg()
        .map((l) => l.toFixed(2))
        .join(" ")}`,
    );
  }
  console.log(
    `chain after the runs: ${verify.chainValid ? "valid" : "BROKEN"}, ${verify.checked.toLocaleString("en-US")} records`,
  );
  if (!verify.chainValid || rounds.some((r) => r.gatewayResult.non2xx > 0)) process.exitCode = 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}

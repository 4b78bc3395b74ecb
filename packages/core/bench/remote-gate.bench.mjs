// @aa/core benchmark: a sequential governed call through the remote gate (a real gateway in its own
// process, SQLite, loopback HTTP) against the same call through the embedded gate (SQLite file in
// this process), in one run; both write a durable audit record per decision. A second table
// compares the client's keep-alive transport (undici Pool, `GatewayClient.decide`) with the global
// fetch it replaced, sending the same decision request to the same gateway.
// AA_BENCH_QUICK=1 runs fewer calls.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parsePolicy } from "@aa/policy";
import { measureAsync, table, us } from "../../../scripts/bench-util.mjs";
import { GatewayClient, initAssembly } from "../dist/index.js";

const quick = process.env.AA_BENCH_QUICK === "1";
const ROOT = new URL("./fixtures/", import.meta.url).pathname;
// The gateway process of the gateway's own HTTP benchmark: same policy, agent key for "bench-bot".
const SERVER = new URL("../../gateway/bench/servers.mjs", import.meta.url).pathname;
const policy = parsePolicy(`version: 1
default: deny
policies:
  - name: small-prs
    action: pr.open
    effect: allow
    when:
      - { field: metadata.pr_size, op: lt, value: 50 }
`);
const OPTIONS = { iterations: quick ? 300 : 1500, warmup: 200 };
const ROUNDS = quick ? 3 : 5;
const dir = mkdtempSync(join(tmpdir(), "aa-core-remote-bench-"));
const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];

const gateway = spawn(process.execPath, [SERVER, "gateway", join(dir, "gateway.db")], {
  stdio: ["ignore", "pipe", "inherit"],
});
const { url, key } = await new Promise((resolve, reject) => {
  let out = "";
  gateway.once("exit", (code) => reject(new Error(`gateway exited ${code}`)));
  gateway.stdout.setEncoding("utf8").on("data", (chunk) => {
    out += chunk;
    const listening = /listening (\S+)\n/.exec(out);
    if (listening) resolve({ url: listening[1], key: /key (\S+)\n/.exec(out)?.[1] });
  });
});

const options = { metadata: { pr_size: 10 } };
// One initAssembly per process: the embedded rounds run first, then the remote ones alternate
// with the transport comparison.
const runs = {};
const p50 = { embedded: [], remote: [], fetch: [], client: [] };
const p99 = { embedded: [], remote: [], fetch: [], client: [] };
async function rounds(names) {
  for (let round = 0; round < ROUNDS; round++) {
    for (const name of names) {
      const s = await measureAsync(runs[name], OPTIONS);
      p50[name].push(s.p50);
      p99[name].push(s.p99);
    }
  }
}
async function allowed(assembly) {
  const first = await assembly.execute("pr.open", options);
  if (first.status !== "executed") throw new Error(`bench call not allowed: ${JSON.stringify(first)}`);
  return assembly;
}

try {
  const embedded = await allowed(
    await initAssembly({
      mode: "sdk-only",
      agent: { id: "bench-bot" },
      policy,
      store: join(dir, "embedded.db"),
      adapters: [],
      root: ROOT,
    }),
  );
  runs.embedded = () => embedded.execute("pr.open", options);
  await rounds(["embedded"]);
  await embedded.shutdown();

  const remote = await allowed(
    await initAssembly({ mode: "sdk-only", gatewayUrl: url, apiKey: key, adapters: [], root: ROOT }),
  );
  runs.remote = () => remote.execute("pr.open", options);
  const client = new GatewayClient({ url, apiKey: key });
  let n = 0;
  const decisionBody = () => ({
    actionType: "pr.open",
    metadata: { pr_size: 10 },
    eventId: `bench-${process.pid}-${n++}`,
  });
  const headers = {
    accept: "application/json",
    "content-type": "application/json",
    authorization: `Bearer ${key}`,
  };
  const viaFetch = async () => {
    const response = await fetch(`${url}/v1/actions`, {
      method: "POST",
      headers,
      body: JSON.stringify(decisionBody()),
      signal: AbortSignal.timeout(30_000),
    });
    return JSON.parse(await response.text());
  };
  const viaClient = () => client.decide(decisionBody());

  runs.fetch = viaFetch;
  runs.client = viaClient;
  await rounds(["remote", "fetch", "client"]);
  await remote.shutdown();
  await client.close();
} finally {
  const exited = new Promise((resolve) => gateway.once("exit", resolve));
  gateway.kill("SIGTERM");
  await exited;
  rmSync(dir, { recursive: true, force: true });
}

const m = (name) => ({ p50: median(p50[name]), p99: median(p99[name]) });
table([
  { "governed call (pr.open, durable record)": "embedded gate (SQLite, in process)", ...fmt(m("embedded")) },
  {
    "governed call (pr.open, durable record)": "remote gate (gateway process, loopback)",
    ...fmt(m("remote")),
  },
]);
console.log(
  `remote / embedded: p50 ${(m("remote").p50 / m("embedded").p50).toFixed(1)}x, p99 ${(m("remote").p99 / m("embedded").p99).toFixed(1)}x (medians of ${ROUNDS} rounds x ${OPTIONS.iterations} calls)`,
);
table([
  { "POST /v1/actions from this process": "global fetch (old transport)", ...fmt(m("fetch")) },
  { "POST /v1/actions from this process": "GatewayClient.decide (undici Pool)", ...fmt(m("client")) },
]);
console.log(
  `new / old transport: p50 ${(m("client").p50 / m("fetch").p50).toFixed(2)}x, p99 ${(m("client").p99 / m("fetch").p99).toFixed(2)}x`,
);

function fmt(s) {
  return { p50: us(s.p50), p99: us(s.p99) };
}

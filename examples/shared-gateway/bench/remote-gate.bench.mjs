// A governed call through the remote gate (a gateway in its own process, over loopback HTTP) against
// the same call through the embedded gate (SQLite in this process), measured in one run. Both record
// a durable audit record per decision; the ratio is what a shared gateway costs a caller.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initAssembly } from "@aa/core";
import { parsePolicy } from "@aa/policy";
import { measureAsync, table, us } from "../../../scripts/bench-util.mjs";

const root = new URL("..", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "aa-remote-bench-"));
const policy = parsePolicy(readFileSync(join(root, "aa.policy.yaml"), "utf8"));
const ITERATIONS = 2000;
const WARMUP = 200;
const call = (assembly) => () => assembly.execute("read_changes", { args: { path: "src/api" } });

async function embedded() {
  const assembly = await initAssembly({
    mode: "sdk-only",
    agent: { id: "release-bot" },
    root,
    policy,
    store: join(dir, "embedded.db"),
    adapters: [],
  });
  try {
    return await measureAsync(call(assembly), { iterations: ITERATIONS, warmup: WARMUP });
  } finally {
    await assembly.shutdown();
  }
}

async function remote() {
  const gateway = spawn(process.execPath, [join(root, "dist", "gateway.js"), join(dir, "gateway.db")], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  try {
    const line = await new Promise((resolve, reject) => {
      let buffer = "";
      gateway.stdout.on("data", (chunk) => {
        buffer += chunk;
        if (buffer.includes("\n")) resolve(buffer.slice(0, buffer.indexOf("\n")));
      });
      gateway.once("exit", (code) => reject(new Error(`gateway exited ${code}`)));
    });
    const { url, agentKey } = JSON.parse(line);
    const assembly = await initAssembly({
      mode: "sdk-only",
      root,
      gatewayUrl: url,
      apiKey: agentKey,
      adapters: [],
    });
    try {
      return await measureAsync(call(assembly), { iterations: ITERATIONS, warmup: WARMUP });
    } finally {
      await assembly.shutdown();
    }
  } finally {
    gateway.kill("SIGTERM");
    await new Promise((resolve) => (gateway.exitCode === null ? gateway.once("exit", resolve) : resolve()));
  }
}

const local = await embedded();
const shared = await remote();
table([
  { gate: "embedded (SQLite, in process)", p50: us(local.p50), p99: us(local.p99) },
  { gate: "remote (gateway process, loopback HTTP)", p50: us(shared.p50), p99: us(shared.p99) },
]);
console.log(
  `remote / embedded: p50 ${(shared.p50 / local.p50).toFixed(1)}x, p99 ${(shared.p99 / local.p99).toFixed(1)}x (${ITERATIONS} governed calls each, one run)`,
);

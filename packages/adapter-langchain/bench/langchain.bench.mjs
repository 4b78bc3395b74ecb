// Overhead of governing a LangChain tool, in one run: a bare DynamicStructuredTool.invoke against
// the same tool governed (a) decision only with an in-memory store, (b) with the audit event
// committed to a SQLite file, (c) for a tool doing a loopback HTTP request (SQLite store).
// Targets: (a) +<= 2 µs p50 / +<= 5 µs p99, (b) +<= 25 µs p50, (c) +<= 10 %.
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHostContext, initAssembly } from "@aa/core";
import { DynamicStructuredTool } from "@langchain/core/tools";
import { z } from "zod";
import { measureAsync, table, us } from "../../../scripts/bench-util.mjs";
import { langchainAdapter } from "../dist/index.js";

const ROOT = new URL("..", import.meta.url).pathname;
const POLICY = {
  version: 1,
  default: "deny",
  policies: [
    { name: "adds", action: "add", effect: "allow", when: [{ field: "args.a", op: "lt", value: 1000 }] },
    { name: "local-fetch", action: "fetch_local", effect: "allow" },
  ],
};

const add = new DynamicStructuredTool({
  name: "add",
  description: "adds two numbers",
  schema: z.object({ a: z.number(), b: z.number() }),
  func: async ({ a, b }) => String(a + b),
});
const input = { a: 1, b: 2 };

const server = createServer((_req, res) => res.end("ok"));
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const url = `http://127.0.0.1:${server.address().port}/`;
const fetchLocal = new DynamicStructuredTool({
  name: "fetch_local",
  description: "GET a loopback URL",
  schema: z.object({ path: z.string() }),
  func: async () => (await fetch(url)).text(),
});

const FAST = { iterations: 20_000, warmup: 3_000 };
const HTTP = { iterations: 2_000, warmup: 1_000 };

/** The adapter's own share: the same patch with an interceptor that only runs the tool. */
async function adapterOnly(fn) {
  const passThrough = { intercept: (_call, invoke) => Promise.resolve().then(invoke) };
  await langchainAdapter.registerHooks(passThrough, createHostContext(ROOT));
  try {
    return await fn();
  } finally {
    await langchainAdapter.unregisterHooks();
  }
}

async function governed(store, fn) {
  const assembly = await initAssembly({
    mode: "sdk-only",
    agent: { id: "bench-bot" },
    policy: POLICY,
    store,
    adapters: [langchainAdapter],
    root: ROOT,
  });
  try {
    return await fn();
  } finally {
    await assembly.shutdown();
  }
}

const dir = mkdtempSync(join(tmpdir(), "aa-langchain-bench-"));
try {
  const bare = await measureAsync(() => add.invoke(input), FAST);
  const patchOnly = await adapterOnly(() => measureAsync(() => add.invoke(input), FAST));
  const memory = await governed(":memory:", () => measureAsync(() => add.invoke(input), FAST));
  const sqlite = await governed(join(dir, "a.db"), () => measureAsync(() => add.invoke(input), FAST));
  // Loopback HTTP is noisy and warms up slowly: bracket the governed run with two bare runs.
  const bareHttpBefore = await measureAsync(() => fetchLocal.invoke({ path: "/" }), HTTP);
  const governedHttp = await governed(join(dir, "b.db"), () =>
    measureAsync(() => fetchLocal.invoke({ path: "/" }), HTTP),
  );
  const bareHttpAfter = await measureAsync(() => fetchLocal.invoke({ path: "/" }), HTTP);
  const bareHttp = {
    p50: (bareHttpBefore.p50 + bareHttpAfter.p50) / 2,
    p99: (bareHttpBefore.p99 + bareHttpAfter.p99) / 2,
  };

  const row = (name, s, base, target) => ({
    case: name,
    p50: us(s.p50),
    p99: us(s.p99),
    "added p50": base ? us(s.p50 - base.p50) : "",
    "added p99": base ? us(s.p99 - base.p99) : "",
    "ratio p50": base ? (s.p50 / base.p50).toFixed(2) : "1.00",
    target: target ?? "",
  });
  table([
    row("bare DynamicStructuredTool.invoke", bare),
    row("adapter only (pass-through interceptor)", patchOnly, bare, "(the adapter's share of (a))"),
    row("(a) governed, decision only (:memory:)", memory, bare, "+<= 2 µs p50, +<= 5 µs p99"),
    row("(b) governed, audit committed to SQLite", sqlite, bare, "+<= 25 µs p50"),
    row("bare loopback HTTP tool (before)", bareHttpBefore),
    row("bare loopback HTTP tool (after)", bareHttpAfter),
    row("bare loopback HTTP tool (mean of both)", bareHttp),
    row("(c) governed loopback HTTP tool (SQLite)", governedHttp, bareHttp, "+<= 10 %"),
  ]);
} finally {
  server.close();
  rmSync(dir, { recursive: true, force: true });
}

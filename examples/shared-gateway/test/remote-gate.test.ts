/**
 * The remote gate against a real gateway process (not a script): events over SSE, the CLI
 * following them, and a gateway that goes away and comes back — calls fail closed while it is
 * down, and with failureMode "open" the call runs and its failOpen record lands once it is back.
 */
import { execFile, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { type EngineEvent, initAssembly } from "@aa/core";
import { expect, it } from "vitest";
import { startGatewayProcess } from "../dist/run.js";

const root = new URL("..", import.meta.url).pathname;
const aaBin = join(dirname(createRequire(import.meta.url).resolve("@aa/cli/package.json")), "dist", "bin.js");
const FAST = { retryDelaysMs: [20, 20], requestTimeoutMs: 5000 };

const until = async (check: () => boolean, what: string) => {
  for (let i = 0; i < 500; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
};

it("streams events over SSE to the client and to aa audit tail -f --gateway", {
  timeout: 120_000,
}, async () => {
  const gateway = await startGatewayProcess(join(mkdtempSync(join(tmpdir(), "aa-gw-sse-")), "g.db"));
  const assembly = await initAssembly({
    mode: "sdk-only",
    root,
    gatewayUrl: gateway.url,
    apiKey: gateway.agentKey,
    adapters: [],
    gatewayClient: FAST,
  });
  const tail = spawn(
    process.execPath,
    [
      aaBin,
      "--json",
      "audit",
      "tail",
      "-f",
      "-n",
      "1",
      "--gateway",
      gateway.url,
      "--api-key",
      gateway.operatorKey,
    ],
    {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1" },
    },
  );
  try {
    const seen: EngineEvent[] = [];
    const subscription = await assembly.subscribe((event) => void seen.push(event), {
      events: ["action.executed", "action.denied"],
    });
    let tailed = "";
    tail.stdout.on("data", (chunk: Buffer) => {
      tailed += chunk.toString("utf8");
    });
    // The CLI prints nothing until it follows; give it a decision to see, repeatedly, until it does.
    await assembly.execute("read_changes");
    await assembly.execute("db.drop");
    await until(() => seen.length >= 2, "two events over SSE");
    expect(seen.map((e) => [e.type, e.actionType, e.agentId])).toEqual([
      ["action.executed", "read_changes", "release-bot"],
      ["action.denied", "db.drop", "release-bot"],
    ]);
    expect(subscription.lastSeq).toBe(seen[1]!.seq);
    for (let i = 0; i < 100 && !tailed.includes('"actionType":"merge_release"'); i++) {
      await assembly.execute("merge_release", { args: { version: `v${i}` } });
      await new Promise((r) => setTimeout(r, 100));
    }
    const lines = tailed
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as EngineEvent);
    expect(lines.some((e) => e.type === "approval.requested" && e.actionType === "merge_release")).toBe(true);
    subscription.unsubscribe();
  } finally {
    tail.kill("SIGTERM");
    await assembly.shutdown();
    await gateway.stop();
  }
});

it("fails closed while the gateway is down; fail-open runs the call and records it once the gateway is back", {
  timeout: 120_000,
}, async () => {
  const outage = (mode: "open" | "closed") =>
    new Promise<{ steps: Record<string, unknown>; warnings: string[] }>((resolve, reject) => {
      execFile(
        process.execPath,
        [join(root, "dist", "outage.js")],
        { cwd: root, env: { ...process.env, OUTAGE_FAILURE_MODE: mode } },
        (error, stdout, stderr) =>
          error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(JSON.parse(stdout)),
      );
    });
  const open = await outage("open");
  expect(open.steps).toMatchObject({
    up: { value: "ran 1" },
    executeWhileDown: "GATE_UNAVAILABLE",
    toolWhileDown: { value: "ran 2" },
    back: { value: "ran 3" },
    chainValid: true,
  });
  // The call that ran without a decision is on the gateway's chain, marked, exactly once.
  expect(open.steps.records).toEqual([
    { args: { n: 1 }, failOpen: false },
    { args: { n: 3 }, failOpen: false },
    { args: { n: 2 }, failOpen: true },
  ]);
  expect(open.warnings.some((w) => w.startsWith("AA_FAIL_OPEN:"))).toBe(true);

  const closed = await outage("closed");
  expect(closed.steps).toMatchObject({
    up: { value: "ran 1" },
    toolWhileDown: {
      error: { name: "AssemblyDeniedError", code: "ACTION_DENIED", reason: "GATE_UNAVAILABLE" },
    },
    back: { value: "ran 3" },
  });
  expect(closed.steps.records).toEqual([
    { args: { n: 1 }, failOpen: false },
    { args: { n: 3 }, failOpen: false },
  ]);
});

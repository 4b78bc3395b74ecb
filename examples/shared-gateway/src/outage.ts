/**
 * The agent side of an outage, run as its own process by the tests: a tool call through the
 * remote gate while the gateway is up, then the gateway is killed (-9) and restarted on the same
 * port and database. Prints one JSON line with what happened at each step.
 *
 *   node dist/outage.js
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type FrameworkAdapter, GatewayClient, type Interceptor, initAssembly } from "@aa/core";
import { startGatewayProcess } from "./run.js";

/** An adapter that hands its interceptor over, so this script calls it as a framework patch would. */
const adapter: FrameworkAdapter & { interceptor?: Interceptor } = {
  name: "outage-script",
  supportedVersions: "*",
  isAvailable: () => true,
  registerHooks(interceptor) {
    adapter.interceptor = interceptor;
    return { entryPoints: [] };
  },
  unregisterHooks() {
    adapter.interceptor = undefined;
  },
};

const warnings: string[] = [];
process.on("warning", (warning) =>
  warnings.push(`${(warning as { code?: string }).code}: ${warning.message}`),
);

const database = join(mkdtempSync(join(tmpdir(), "aa-outage-")), "gateway.db");
let gateway = await startGatewayProcess(database);
const port = Number(new URL(gateway.url).port);
const assembly = await initAssembly({
  mode: "sdk-only",
  gatewayUrl: gateway.url,
  apiKey: gateway.agentKey,
  adapters: [adapter],
  failureMode: process.env.OUTAGE_FAILURE_MODE === "closed" ? "closed" : "open",
  gatewayClient: { retryDelaysMs: [20, 20], requestTimeoutMs: 5000 },
});
const call = (n: number) =>
  adapter
    .interceptor!.intercept({ framework: "script", toolName: "read_changes", args: { n } }, () => `ran ${n}`)
    .then(
      (value) => ({ value }),
      (error: { name?: string; code?: string; reason?: string }) => ({
        error: { name: error.name, code: error.code, reason: error.reason },
      }),
    );
const steps: Record<string, unknown> = {};
try {
  steps.up = await call(1);
  await gateway.stop("SIGKILL");
  steps.executeWhileDown = await assembly.execute("read_changes").then(
    () => "decided",
    (error: { code?: string }) => error.code,
  );
  steps.toolWhileDown = await call(2);
  gateway = await startGatewayProcess(database, port);
  steps.back = await call(3);
  // The queued fail-open record goes out right after the first answered decision.
  const operator = new GatewayClient({ url: gateway.url, apiKey: gateway.operatorKey });
  let records: { args: unknown; fail_open: boolean }[] = [];
  for (let i = 0; i < 100 && !records.some((r) => r.fail_open); i++) {
    records = (await operator.audit({ limit: 100 })).items as unknown as typeof records;
    if (!records.some((r) => r.fail_open)) await new Promise((r) => setTimeout(r, 50));
  }
  steps.records = records.map((r) => ({ args: r.args, failOpen: r.fail_open }));
  steps.chainValid = (await operator.verify()).chainValid;
} finally {
  await assembly.shutdown().catch(() => {});
  await gateway.stop();
}
process.stdout.write(`${JSON.stringify({ steps, warnings })}\n`);

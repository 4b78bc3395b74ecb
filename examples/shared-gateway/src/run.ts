/**
 * The whole story across processes: a gateway process, an agent process governed through it, and
 * an operator using the real `aa` CLI with `--gateway` from a third (and fourth) process.
 */
import { execFile, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
const aaBin = join(dirname(createRequire(import.meta.url).resolve("@aa/cli/package.json")), "dist", "bin.js");
const exec = promisify(execFile);

export interface DemoResult {
  gatewayUrl: string;
  /** The agent process's own report. */
  agent: {
    agent: string;
    gate: string;
    ran: string[];
    deniedMessage?: { content: string; status: unknown };
    mergeMessage?: { content: string; status: unknown };
  };
  /** What the operator saw and did with `aa ... --gateway`. */
  pendingSeen: { id: string; actionType: string; agentId: string }[];
  approveOutput: string;
  verifyOutput: string;
  auditKinds: string[];
}

/** Lines of a child's stdout, as they come. */
function firstLine(child: ReturnType<typeof spawn>): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffer = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      buffer += chunk.toString("utf8");
      const end = buffer.indexOf("\n");
      if (end !== -1) resolve(buffer.slice(0, end));
    });
    child.once("exit", (code) => reject(new Error(`process exited (${code}) before answering`)));
  });
}

/** A gateway in its own process (`gateway.js`) on `database`; `port` 0 picks a free one. */
export async function startGatewayProcess(
  database: string,
  port = 0,
): Promise<{
  url: string;
  agentKey: string;
  operatorKey: string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}> {
  const child = spawn(process.execPath, [join(here, "gateway.js"), database, String(port)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const started = JSON.parse(await firstLine(child)) as {
    url: string;
    agentKey: string;
    operatorKey: string;
  };
  return {
    ...started,
    async stop(signal = "SIGTERM") {
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill(signal);
      await exited;
    },
  };
}

export async function runSharedGatewayDemo(log: (line: string) => void = () => {}): Promise<DemoResult> {
  const database = join(mkdtempSync(join(tmpdir(), "aa-shared-gateway-")), "gateway.db");
  const gateway = spawn(process.execPath, [join(here, "gateway.js"), database], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  try {
    const { url, agentKey, operatorKey } = JSON.parse(await firstLine(gateway)) as {
      url: string;
      agentKey: string;
      operatorKey: string;
    };
    log(`gateway listening on ${url}`);
    const operatorEnv = { ...process.env, NO_COLOR: "1", AA_GATEWAY_URL: url, AA_API_KEY: operatorKey };
    const aa = async (...args: string[]) =>
      (await exec(process.execPath, [aaBin, ...args], { env: operatorEnv })).stdout;

    // The agent knows only the gateway's URL and its own key.
    const agentEnv: NodeJS.ProcessEnv = { ...process.env, AA_GATEWAY_URL: url, AA_API_KEY: agentKey };
    delete agentEnv.AA_AGENT_ID;
    const agent = spawn(process.execPath, [join(here, "agent.js")], {
      cwd: join(here, ".."),
      env: agentEnv,
      stdio: ["ignore", "pipe", "inherit"],
    });
    const report = firstLine(agent);
    log("agent started");

    let pendingSeen: DemoResult["pendingSeen"] = [];
    for (let i = 0; i < 600 && pendingSeen.length === 0; i++) {
      pendingSeen = JSON.parse(await aa("--json", "approvals", "list", "--state", "pending"));
      if (pendingSeen.length === 0) await new Promise((r) => setTimeout(r, 100));
    }
    if (pendingSeen.length === 0) throw new Error("the agent's release was never held for approval");
    log(`operator sees ${pendingSeen[0]!.actionType} held (${pendingSeen[0]!.id})`);
    const approveOutput = await aa(
      "approvals",
      "approve",
      pendingSeen[0]!.id,
      "--reason",
      "release checklist done",
    );
    log(approveOutput.trim());

    const agentReport = JSON.parse(await report) as DemoResult["agent"];
    await new Promise<void>((resolve) =>
      agent.exitCode === null ? agent.once("exit", () => resolve()) : resolve(),
    );
    const verifyOutput = await aa("audit", "verify");
    const audit = JSON.parse(await aa("--json", "audit", "list", "--limit", "100")) as {
      items: { kind: string }[];
    };
    return {
      gatewayUrl: url,
      agent: agentReport,
      pendingSeen,
      approveOutput,
      verifyOutput,
      auditKinds: audit.items.map((i) => i.kind),
    };
  } finally {
    gateway.kill("SIGTERM");
    await new Promise<void>((resolve) =>
      gateway.exitCode === null ? gateway.once("exit", () => resolve()) : resolve(),
    );
  }
}

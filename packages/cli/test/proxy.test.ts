/**
 * Egress end to end over loopback: the real `aa proxy` binary used by a child process (curl) through
 * HTTP_PROXY, its decisions verified with the real `aa audit verify`; and, in process, a real
 * gateway and proxy on one database with `initAssembly({ mode: "proxy" })` and the governed fetch.
 */
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { AssemblyDeniedError, initAssembly } from "@aa/core";
import { openEngine } from "@aa/engine";
import { createEgressProxy, createGateway, createKey } from "@aa/gateway";
import { parsePolicy } from "@aa/policy";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const bin = new URL("../dist/bin.js", import.meta.url).pathname;
const run = promisify(execFile);
const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "aa-cli-proxy-"));
  dirs.push(dir);
  return dir;
};

const POLICY_YAML = `version: 1
default: deny
policies:
  - name: egress-loopback-ip
    action: http.request
    effect: allow
    when:
      - { field: args.host, op: in, value: ["127.0.0.1"] }
`;

let upstream: Server;
let upstreamPort: number;
const upstreamSeen: string[] = [];

beforeAll(async () => {
  upstream = createServer((req, res) => {
    upstreamSeen.push(`${req.method} ${req.url}`);
    res.end(`upstream says hi to ${req.url}`);
  });
  upstream.listen(0, "127.0.0.1");
  await once(upstream, "listening");
  upstreamPort = (upstream.address() as { port: number }).port;
});

afterAll(async () => {
  upstream.closeAllConnections();
  await new Promise((r) => upstream.close(r));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** `curl` as the child process a user would run under HTTP_PROXY; resolves even when it fails. */
async function curl(env: Record<string, string>, ...args: string[]) {
  expect(
    existsSync("/usr/bin/curl") || existsSync("/bin/curl"),
    "these tests drive curl as the child process",
  ).toBe(true);
  const clean = { ...process.env };
  for (const name of ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy"]) {
    delete clean[name];
  }
  try {
    const { stdout } = await run("curl", ["-sS", "--max-time", "20", ...args], { env: { ...clean, ...env } });
    return { code: 0, stdout, stderr: "" };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe("aa proxy (the binary)", () => {
  it("governs a child process's requests through HTTP_PROXY; the decisions are in a chain that verifies", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "aa.policy.yaml"), POLICY_YAML);
    const store = join(dir, "agent.db");
    const child = spawn(
      process.execPath,
      [bin, "--json", "proxy", "--port", "0", "--store", store, "--agent", "crawler"],
      { cwd: dir, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8");
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (c: string) => {
      stderr += c;
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    const started = await new Promise<{ url: string; identity: string }>((resolve, reject) => {
      child.stdout.on("data", (c: string) => {
        stdout += c;
        try {
          resolve(JSON.parse(stdout));
        } catch {
          // not complete yet
        }
      });
      void exited.then((code) => reject(new Error(`aa proxy exited ${code}: ${stderr}`)));
    });
    try {
      expect(started).toMatchObject({
        url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
        identity: "agent:crawler",
      });
      const env = { HTTP_PROXY: started.url, HTTPS_PROXY: started.url, http_proxy: started.url };

      const allowed = await curl(env, `http://127.0.0.1:${upstreamPort}/plain`);
      expect(allowed).toMatchObject({ code: 0, stdout: "upstream says hi to /plain" });

      const seen = upstreamSeen.length;
      const denied = await curl(env, "-w", "\n%{http_code}", `http://localhost:${upstreamPort}/secret`);
      const [body, status] = denied.stdout.split("\n");
      expect(status).toBe("403");
      expect(JSON.parse(body!).error).toMatchObject({ code: "EGRESS_DENIED", policy: "egress-loopback-ip" });

      // --proxytunnel: the way HTTPS goes through a proxy (CONNECT), here with plain HTTP inside.
      const tunnelled = await curl(env, "--proxytunnel", `http://127.0.0.1:${upstreamPort}/tunnelled`);
      expect(tunnelled).toMatchObject({ code: 0, stdout: "upstream says hi to /tunnelled" });
      const refused = await curl(env, "--proxytunnel", `http://localhost:${upstreamPort}/never`);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toMatch(/403/);
      expect(upstreamSeen.slice(seen)).toEqual(["GET /tunnelled"]);
    } finally {
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
    }

    const verify = await run(process.execPath, [bin, "--json", "audit", "verify", "--store", store], {
      cwd: dir,
    });
    expect(JSON.parse(verify.stdout)).toMatchObject({ chainValid: true });
    const list = await run(
      process.execPath,
      [bin, "--json", "audit", "list", "--store", store, "--action", "http.request"],
      { cwd: dir },
    );
    const records = JSON.parse(list.stdout) as { items?: unknown[] } | unknown[];
    const items = (Array.isArray(records) ? records : (records.items ?? [])) as {
      agent: string;
      status: string;
      args: { host: string; method: string };
    }[];
    expect(items.map((e) => [e.agent, e.status, e.args.method, e.args.host]).sort()).toEqual(
      [
        ["crawler", "executed", "GET", "127.0.0.1"],
        ["crawler", "denied", "GET", "localhost"],
        ["crawler", "executed", "CONNECT", "127.0.0.1"],
        ["crawler", "denied", "CONNECT", "localhost"],
      ].sort(),
    );
  });

  it("refuses bad options with a usage error", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "aa.policy.yaml"), POLICY_YAML);
    const both = await run(process.execPath, [bin, "proxy", "--store", "a.db", "--database", "sqlite:b.db"], {
      cwd: dir,
    }).catch((e: { code: number; stderr: string }) => e);
    expect(both).toMatchObject({ code: 2, stderr: expect.stringMatching(/--store and --database/) });
    const wide = await run(
      process.execPath,
      [bin, "proxy", "--agent", "x", "--host", "0.0.0.0", "--port", "0"],
      {
        cwd: dir,
      },
    ).catch((e: { code: number; stderr: string }) => e);
    expect(wide).toMatchObject({ code: 2, stderr: expect.stringMatching(/loopback only/) });
  });
});

describe("initAssembly with a gateway and the proxy on one database", () => {
  it("routes the process's fetch through the proxy as the key's agent, and governs assembly.fetch at the gateway", async () => {
    const dir = tempDir();
    const database = `sqlite:${join(dir, "shared.db")}`;
    const policy = parsePolicy(POLICY_YAML, { source: "test" });
    const gateway = await createGateway({ policy, database, keyCacheMs: 0 });
    const proxy = await createEgressProxy({ policy, database });
    let context: Awaited<ReturnType<typeof initAssembly>> | undefined;
    try {
      const { key } = await createKey(gateway.store, { kind: "agent", orgId: "acme", agentId: "fetcher" });
      const gatewayUrl = await gateway.listen({ port: 0 });
      const proxyUrl = (await proxy.listen({ port: 0 })).replace("://", `://agent:${key}@`);
      context = await initAssembly({
        mode: "proxy",
        gatewayUrl,
        apiKey: key,
        proxyUrl,
        adapters: [],
        root: dir,
      });

      // The global fetch: decided by the proxy (the key names the agent and the org).
      const through = await fetch(`http://127.0.0.1:${upstreamPort}/global`);
      expect(await through.text()).toBe("upstream says hi to /global");
      expect(through.headers.get("x-aa-audit-event-id")).toMatch(/\S/);
      const refused = await fetch(`http://localhost:${upstreamPort}/global`);
      expect(refused.status).toBe(403);
      expect((await refused.json()).error).toMatchObject({ code: "EGRESS_DENIED" });

      // The governed fetch: decided by the gateway first (and, in proxy mode, by the proxy again).
      const governed = await context.fetch(`http://127.0.0.1:${upstreamPort}/governed`);
      expect(await governed.text()).toBe("upstream says hi to /governed");
      const seen = upstreamSeen.length;
      const denied = await context
        .fetch(`http://localhost:${upstreamPort}/governed`)
        .catch((e: unknown) => e);
      expect(denied).toBeInstanceOf(AssemblyDeniedError);
      expect(upstreamSeen.length).toBe(seen);
    } finally {
      await context?.shutdown();
      await proxy.close();
      await gateway.close();
    }
    // An agent key does not read the audit trail: an operator's engine on the same database does.
    const engine = await openEngine({ policy, store: join(dir, "shared.db"), orgId: "acme" });
    try {
      const page = await engine.audit({ actionType: "http.request" });
      expect(page.items.map((e) => [e.agent, e.status, (e.args as { path: string }).path])).toEqual([
        ["fetcher", "executed", "/global"],
        ["fetcher", "denied", "/global"],
        ["fetcher", "executed", "/governed"],
        ["fetcher", "executed", "/governed"],
        ["fetcher", "denied", "/governed"],
      ]);
      expect((await engine.verify()).chainValid).toBe(true);
    } finally {
      await engine.close();
    }
  });
});

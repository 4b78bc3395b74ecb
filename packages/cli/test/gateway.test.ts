/** `aa gateway start` and `aa keys ...`, through the real binary over loopback HTTP. */
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { STARTER_POLICY } from "../src/commands/init.js";

const bin = new URL("../dist/bin.js", import.meta.url).pathname;
const run = promisify(execFile);
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function aa(cwd: string, ...args: string[]) {
  try {
    const { stdout, stderr } = await run(process.execPath, [bin, ...args], {
      cwd,
      env: { ...process.env, NO_COLOR: "1" },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "aa-cli-gateway-"));
  dirs.push(dir);
  return dir;
}

/** Starts `aa --json gateway start --port 0` and resolves once it printed where it listens. */
async function startGateway(cwd: string, ...extra: string[]) {
  const child = spawn(process.execPath, [bin, "--json", "gateway", "start", "--port", "0", ...extra], {
    cwd,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" },
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8");
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
  const started = await new Promise<{ url: string; database: string; keys: number; console: string | null }>(
    (resolve, reject) => {
      child.stdout.on("data", (chunk: string) => {
        stdout += chunk;
        try {
          resolve(JSON.parse(stdout));
        } catch {
          // not complete yet
        }
      });
      void exited.then((code) => reject(new Error(`aa gateway start exited ${code}: ${stderr}`)));
    },
  );
  return { child, started, exited, stderr: () => stderr };
}

describe("aa keys", { timeout: 60_000 }, () => {
  it("creates keys shown once, lists them without secrets, revokes them; exit codes mean something", async () => {
    const dir = tempDir();
    const admin = await aa(
      dir,
      "--json",
      "keys",
      "create",
      "--kind",
      "admin",
      "--org",
      "acme",
      "--name",
      "ada",
    );
    expect(admin.code).toBe(0);
    const created = JSON.parse(admin.stdout);
    expect(created).toMatchObject({ kind: "admin", orgId: "acme", name: "ada" });
    expect(created.key).toMatch(/^aa_admin_[0-9a-f]{16}_[0-9a-f]{64}$/);

    const human = await aa(
      dir,
      "keys",
      "create",
      "--kind",
      "agent",
      "--org",
      "acme",
      "--agent",
      "release-bot",
    );
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(
      /^created agent key [0-9a-f]{16} for org acme \(agent release-bot\)\naa_agent_/,
    );

    const list = await aa(dir, "--json", "keys", "list");
    expect(list.code).toBe(0);
    const keys = JSON.parse(list.stdout);
    expect(keys.map((k: { kind: string }) => k.kind)).toEqual(["admin", "agent"]);
    expect(list.stdout).not.toContain(created.key.slice(-64));
    expect(list.stdout).not.toMatch(/secretHash/);

    const table = await aa(dir, "keys", "list", "--org", "acme");
    expect(table.stdout.split("\n")[0]).toMatch(/^ID +KIND +ORG +AGENT +NAME +CREATED +REVOKED$/);

    const revoked = await aa(dir, "--json", "keys", "revoke", created.id);
    expect(revoked.code).toBe(0);
    expect(JSON.parse(revoked.stdout)).toMatchObject({ id: created.id, revokedAt: expect.any(String) });

    expect((await aa(dir, "keys", "revoke", "0000000000000000")).code).toBe(4);
    const noAgent = await aa(dir, "keys", "create", "--kind", "agent");
    expect(noAgent.code).toBe(2);
    expect(noAgent.stderr).toMatch(/needs --agent/);
    expect((await aa(dir, "keys", "create", "--kind", "root")).code).toBe(2);
    const missing = await aa(dir, "keys", "list", "--database", "sqlite:nowhere.db");
    expect(missing.code).toBe(4);
    expect(missing.stderr).toMatch(/no gateway database at .*nowhere\.db/);
  });
});

describe("aa gateway start", { timeout: 60_000 }, () => {
  it("serves decisions to a key created offline, refuses a revoked key, and closes cleanly on SIGTERM", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "aa.policy.yaml"), STARTER_POLICY);
    const agentKey = JSON.parse(
      (await aa(dir, "--json", "keys", "create", "--kind", "agent", "--agent", "release-bot")).stdout,
    );
    const gateway = await startGateway(dir);
    try {
      expect(gateway.started).toMatchObject({ database: "sqlite", keys: 1 });
      const decide = await fetch(`${gateway.started.url}/v1/actions`, {
        method: "POST",
        headers: { authorization: `Bearer ${agentKey.key}`, "content-type": "application/json" },
        body: JSON.stringify({ actionType: "read_diff", toolName: "read_diff", args: { pr: 1 } }),
      });
      expect(decide.status).toBe(200);
      expect(await decide.json()).toMatchObject({ status: "executed", policyName: expect.any(String) });

      expect((await aa(dir, "keys", "revoke", agentKey.id)).code).toBe(0);
      // The gateway trusts a verified key for its key cache time (1 s): poll, bounded.
      let status = 0;
      for (let attempt = 0; attempt < 60 && status !== 401; attempt++) {
        const whoami = await fetch(`${gateway.started.url}/v1/whoami`, {
          headers: { authorization: `Bearer ${agentKey.key}` },
        });
        status = whoami.status;
        await whoami.body?.cancel();
        if (status !== 401) await new Promise((r) => setTimeout(r, 100));
      }
      expect(status).toBe(401);
    } finally {
      gateway.child.kill("SIGTERM");
    }
    expect(await gateway.exited).toBe(0);
    // The decision is in the default org's chain, which the store commands read; verify passes.
    const verify = await aa(dir, "--json", "audit", "verify");
    expect(verify.code).toBe(0);
    expect(JSON.parse(verify.stdout)).toMatchObject({ chainValid: true, checked: 1 });
  });

  it("serves the operator console by default, and not with --no-console", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "aa.policy.yaml"), STARTER_POLICY);
    const withConsole = await startGateway(dir);
    try {
      const { url } = withConsole.started;
      expect(withConsole.started.console).toBe(`${url}/console/`);
      const root = await fetch(`${url}/`, { redirect: "manual" });
      expect([root.status, root.headers.get("location")]).toEqual([302, "/console/"]);
      const page = await fetch(`${url}/console/`);
      expect(page.status).toBe(200);
      expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
      expect(await page.text()).toContain('<script type="module" src="app.js"></script>');
      expect((await fetch(`${url}/console/app.js`)).status).toBe(200);
    } finally {
      withConsole.child.kill("SIGTERM");
    }
    expect(await withConsole.exited).toBe(0);

    const without = await startGateway(dir, "--no-console");
    try {
      expect(without.started.console).toBeNull();
      expect((await fetch(`${without.started.url}/console/`)).status).toBe(404);
      expect((await fetch(`${without.started.url}/v1/health`)).status).toBe(200);
    } finally {
      without.child.kill("SIGTERM");
    }
    expect(await without.exited).toBe(0);
  });

  it("shows a policy row edited behind the gateway in `aa posture` (exit 3) until an admin PUTs a policy", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "aa.policy.yaml"), STARTER_POLICY);
    const key = async (kind: string, ...extra: string[]) =>
      JSON.parse((await aa(dir, "--json", "keys", "create", "--kind", kind, ...extra)).stdout).key as string;
    const agentKey = await key("agent", "--agent", "release-bot");
    const adminKey = await key("admin");
    const operatorKey = await key("operator");
    const gateway = await startGateway(dir);
    const url = gateway.started.url;
    const send = (apiKey: string, method: string, path: string, body?: unknown) =>
      fetch(`${url}${path}`, {
        method,
        headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      }).then(async (r) => ({ status: r.status, body: await r.json() }));
    const readsOnly = { version: 1, policies: [{ name: "reads", action: "read_*", effect: "allow" }] };
    try {
      expect((await send(adminKey, "PUT", "/v1/policies", { policy: readsOnly })).status).toBe(200);
      const db = new DatabaseSync(join(dir, ".aa", "assembly.db"));
      db.exec("PRAGMA busy_timeout = 5000");
      db.prepare("UPDATE aa_gateway_policies SET policy = ? WHERE org_id = ?").run(
        JSON.stringify({ version: 1, policies: [{ name: "all", action: "**", effect: "allow" }] }),
        "default",
      );
      db.close();
      let reason: unknown;
      for (let attempt = 0; attempt < 80 && reason !== "POLICY_TAMPERED"; attempt++) {
        reason = (await send(agentKey, "POST", "/v1/actions", { actionType: "read_diff" })).body.denialReason;
        if (reason !== "POLICY_TAMPERED") await new Promise((r) => setTimeout(r, 100));
      }
      expect(reason).toBe("POLICY_TAMPERED");

      const posture = await aa(dir, "posture", "--gateway", url, "--api-key", operatorKey);
      expect(posture.code).toBe(3);
      expect(posture.stdout).toMatch(/chain integrity +0\/25 +chain verified .*but the policy is tampered/);
      expect(posture.stdout).toMatch(/policy TAMPERED: every call is denied POLICY_TAMPERED since /);
      expect(posture.stdout).toMatch(/does not match its hash.*PUT \/v1\/policies/);

      expect((await send(adminKey, "PUT", "/v1/policies", { policy: readsOnly })).status).toBe(200);
      const fixed = await aa(dir, "--json", "posture", "--gateway", url, "--api-key", operatorKey);
      expect(fixed.code).toBe(0);
      expect(JSON.parse(fixed.stdout).policyIntegrity).toMatchObject({ state: "intact" });
    } finally {
      gateway.child.kill("SIGTERM");
    }
    expect(await gateway.exited).toBe(0);
  });

  it("refuses a missing policy (exit 4) and a bad port (exit 2)", async () => {
    const dir = tempDir();
    const missing = await aa(dir, "gateway", "start", "--port", "0");
    expect(missing.code).toBe(4);
    expect(missing.stderr).toMatch(/no policy at .*aa\.policy\.yaml; write one with `aa init`/);
    writeFileSync(join(dir, "aa.policy.yaml"), STARTER_POLICY);
    const port = await aa(dir, "gateway", "start", "--port", "http");
    expect(port.code).toBe(2);
    expect(port.stderr).toMatch(/--port must be an integer/);
  });
});

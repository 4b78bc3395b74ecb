import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { fileURLToPath } from "node:url";
import { compilePolicy, parsePolicy } from "@aa/policy";
import { describe, expect, it } from "vitest";
import { openEngine, SQLITE_MIGRATIONS } from "../src/index.js";
import { tempDir } from "./helpers.js";

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const dir = tempDir();

describe("SQLite store across processes", () => {
  it("an allowed decision is committed before decide() resolves (survives SIGKILL)", async () => {
    const file = join(dir, "durable.db");
    const child = spawn(process.execPath, [fixture("decide-and-wait.mjs"), file], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.setEncoding("utf8");
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (chunk: string) => {
        out += chunk;
        if (out.includes("\n")) {
          child.kill("SIGKILL");
          resolve();
        }
      });
      child.once("exit", (code) => reject(new Error(`child exited early (${code})`)));
    });
    await once(child, "exit");
    const { auditEventId, status } = JSON.parse(out) as { auditEventId: string; status: string };
    expect(status).toBe("executed");
    const db = new DatabaseSync(file);
    const row = db.prepare("SELECT id, record FROM audit_events WHERE id = ?").get(auditEventId) as {
      id: string;
      record: string;
    };
    db.close();
    expect(row.id).toBe(auditEventId);
    expect(JSON.parse(row.record)).toMatchObject({ id: auditEventId, status: "executed" });
  });

  it("suppresses exactly the node:sqlite ExperimentalWarning and lets every other warning through", () => {
    const run = spawnSync(process.execPath, [fixture("emit-warnings.mjs"), join(dir, "warn.db")], {
      encoding: "utf8",
    });
    expect(run.status).toBe(0);
    expect(run.stderr).not.toMatch(/SQLite is an experimental feature/);
    expect(run.stderr).toMatch(/ExperimentalWarning: something else is experimental/);
    expect(run.stderr).toMatch(/Warning: a plain warning/);
  });

  it("a decision made by another process releases an agent waiting in this one", async () => {
    const file = join(dir, "approvals.db");
    const policy = compilePolicy(
      parsePolicy(
        "version: 1\ndefault: deny\npolicies:\n  - { name: merges, action: pr.merge, effect: require_approval }\n",
      ),
    );
    const engine = await openEngine({ policy, store: file });
    const held = await engine.decide({ agent: { id: "bot" }, actionType: "pr.merge" });
    const waiting = engine.awaitApproval(held.approvalId!, { timeoutMs: 20_000 });
    const cli = spawnSync(process.execPath, [fixture("approve.mjs"), file, held.approvalId!, "approve"], {
      encoding: "utf8",
    });
    expect(cli.status, cli.stderr).toBe(0);
    expect(await waiting).toMatchObject({ state: "approved", decidedBy: "operator" });
    expect((await engine.releaseApproval(held.approvalId!, "bot")).status).toBe("executed");
    expect(await engine.verify()).toMatchObject({ chainValid: true, checked: 3 });
    await engine.close();
  });

  it("a delegation revoked by another process denies the child and its descendants within 1 s", async () => {
    const file = join(dir, "delegation.db");
    const policy = compilePolicy(
      parsePolicy("version: 1\ndefault: deny\npolicies:\n  - { name: r, action: 'read.*', effect: allow }\n"),
    );
    const engine = await openEngine({ policy, store: file });
    const a = await engine.delegate({ agentId: "root" }, "a", { capabilities: ["read.*"] });
    const b = await engine.delegate({ agentId: "root/a", delegationToken: a.token }, "b", {
      capabilities: ["read.*"],
    });
    const call = () =>
      engine.decide({ agent: { id: "root" }, actionType: "read.x", delegationToken: b.token });
    expect((await call()).status).toBe("executed");
    const operator = spawnSync(process.execPath, [fixture("revoke-delegation.mjs"), file, a.delegation.id], {
      encoding: "utf8",
    });
    expect(operator.status, operator.stderr).toBe(0);
    expect(JSON.parse(operator.stdout)).toMatchObject({ id: a.delegation.id, state: "revoked" });
    const revokedAt = Date.now();
    let last = await call();
    while (last.status === "executed" && Date.now() - revokedAt < 1000) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      last = await call();
    }
    expect(last).toMatchObject({ status: "denied", denialReason: "DELEGATION_REVOKED" });
    expect((await engine.listDelegations()).map((d) => d.state)).toEqual(["revoked", "revoked"]);
    await engine.close();
  });

  it("refuses a file whose schema is newer than this code knows, naming both versions", async () => {
    const file = join(dir, "future.db");
    const db = new DatabaseSync(file);
    db.exec(
      "CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (99);",
    );
    db.close();
    const policy = compilePolicy(parsePolicy("version: 1\ndefault: deny\npolicies: []\n"));
    await expect(openEngine({ policy, store: file })).rejects.toMatchObject({
      code: "STORE_SCHEMA_TOO_NEW",
      message: expect.stringMatching(new RegExp(`version 99.*up to ${SQLITE_MIGRATIONS.length}\\b`)),
    });
  });

  it("keeps keys beside the database with mode 0600", async () => {
    const file = join(dir, "keys", "a.db");
    const policy = compilePolicy(parsePolicy("version: 1\ndefault: deny\npolicies: []\n"));
    const engine = await openEngine({ policy, store: file });
    await engine.close();
    const { statSync } = await import("node:fs");
    expect(statSync(join(dir, "keys", "keys.json")).mode & 0o777).toBe(0o600);
  });

  it("an embedded (SQLite) engine never loads pg; a postgres:// store reports the unreachable database", () => {
    const run = spawnSync(process.execPath, [fixture("no-pg.mjs"), join(dir, "nopg.db")], {
      encoding: "utf8",
    });
    expect(run.stderr).not.toMatch(/pg was loaded/);
    expect(run.stdout.trim()).toBe("STORE_UNAVAILABLE");
  });

  it("exports to a file that verifies offline against the published JWKS", async () => {
    const policy = compilePolicy(
      parsePolicy("version: 1\ndefault: deny\npolicies:\n  - { name: r, action: 'read.*', effect: allow }\n"),
    );
    const engine = await openEngine({ policy, store: join(dir, "export.db"), checkpointInterval: 2 });
    for (let i = 0; i < 5; i++)
      await engine.decide({ agent: { id: "a" }, actionType: "read.x", args: { i } });
    const jwks = engine.jwks();
    const out = join(dir, "audit.jsonl");
    expect(await engine.exportAudit(out)).toMatchObject({ records: 5 });
    await engine.close();
    const { verifyExport } = await import("../src/index.js");
    expect(await verifyExport(out, { jwks })).toMatchObject({
      chainValid: true,
      checked: 5,
      keySource: "provided",
    });
    const stranger = { keys: [{ ...jwks.keys[0]!, x: Buffer.alloc(32, 1).toString("base64url") }] };
    expect(await verifyExport(out, { jwks: stranger })).toMatchObject({
      chainValid: false,
      problem: expect.stringMatching(/signature/),
    });
  });

  it("several processes opening one fresh file at the same instant all open it (WAL switch race)", async () => {
    const processes = 4;
    for (let round = 0; round < 5; round++) {
      const file = join(dir, `race-${round}.db`);
      const at = Date.now() + 1500;
      const outputs = await Promise.all(
        Array.from({ length: processes }, async () => {
          const child = spawn(process.execPath, [fixture("open-at.mjs"), file, String(at)], {
            stdio: ["ignore", "pipe", "pipe"],
          });
          let out = "";
          let err = "";
          child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
            out += chunk;
          });
          child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
            err += chunk;
          });
          const [code] = await once(child, "exit");
          return { code, out: out.trim(), err: err.slice(-1000) };
        }),
      );
      for (const output of outputs) expect(output).toMatchObject({ code: 0, out: "opened" });
      const policy = compilePolicy(
        parsePolicy(
          "version: 1\ndefault: deny\npolicies:\n  - { name: reads, action: 'read.*', effect: allow }\n",
        ),
      );
      const engine = await openEngine({ policy, store: file });
      expect(await engine.verify()).toMatchObject({ chainValid: true, checked: processes });
      await engine.close();
    }
  });
});

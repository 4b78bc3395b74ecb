/**
 * The real `aa` binary in gateway mode (`--gateway` / `AA_GATEWAY_URL`) against a scripted
 * loopback gateway that records what the CLI sent; and `aa receipts verify` offline on a receipt
 * signed by the real engine.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openEngine } from "@aa/engine";
import { parsePolicy } from "@aa/policy";
import { afterEach, describe, expect, it } from "vitest";

const bin = new URL("../dist/bin.js", import.meta.url).pathname;
const KEY = "aa_operator_k9_secret";
const tempDir = () => mkdtempSync(join(tmpdir(), "aa-cli-gw-"));

function aa(args: string[], env: Record<string, string> = {}, cwd = tempDir()) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    const clean = { ...process.env };
    delete clean.AA_GATEWAY_URL;
    delete clean.AA_API_KEY;
    execFile(
      process.execPath,
      [bin, ...args],
      { cwd, env: { ...clean, NO_COLOR: "1", AA_GATEWAY_RETRY_DELAYS_MS: "0,0", ...env } },
      (error, stdout, stderr) =>
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

interface Seen {
  method: string;
  path: string;
  query: Record<string, string>;
  auth: string | undefined;
  body: unknown;
}
type Reply = { status: number; body?: unknown; raw?: string; type?: string };

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

async function gateway(route: (s: Seen) => Reply | undefined): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  server = createServer(async (req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    const url = new URL(req.url ?? "/", "http://x");
    const s: Seen = {
      method: req.method ?? "GET",
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      auth: req.headers.authorization,
      body: text ? JSON.parse(text) : undefined,
    };
    seen.push(s);
    const reply: Reply =
      s.auth !== `Bearer ${KEY}`
        ? { status: 401, body: { error: { code: "UNAUTHENTICATED", message: "unknown API key" } } }
        : (route(s) ?? {
            status: 404,
            body: { error: { code: "NOT_FOUND", message: `no route ${s.path}` } },
          });
    res.writeHead(reply.status, { "content-type": reply.type ?? "application/json" });
    res.end(reply.raw ?? JSON.stringify(reply.body));
  });
  await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

const approval = (state: string, extra: Record<string, unknown> = {}) => ({
  id: "apr_0123456789abcdef",
  agentId: "release-bot",
  actionType: "merge_pr",
  state,
  createdAt: "2026-01-01T00:00:00.000Z",
  expiresAt: "2026-01-02T00:00:00.000Z",
  auditEventId: "0190aaaa-0000-7000-8000-000000000001",
  ...extra,
});

describe("aa in gateway mode", { timeout: 60_000 }, () => {
  it("lists and approves approvals with --gateway/--api-key and with AA_GATEWAY_URL/AA_API_KEY", async () => {
    const gw = await gateway((s) => {
      if (s.method === "GET" && s.path === "/v1/approvals")
        return { status: 200, body: { approvals: [approval("pending")] } };
      if (s.method === "POST" && s.path === "/v1/approvals/apr_0123456789abcdef/approve")
        return { status: 200, body: approval("approved", { decidedBy: "operator:k9", reason: "ok" }) };
      return undefined;
    });
    const list = await aa([
      "--json",
      "approvals",
      "list",
      "--state",
      "pending",
      "--gateway",
      gw.url,
      "--api-key",
      KEY,
    ]);
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual([approval("pending")]);
    expect(gw.seen[0]).toMatchObject({
      method: "GET",
      path: "/v1/approvals",
      query: { state: "pending" },
      auth: `Bearer ${KEY}`,
    });

    const table = await aa(["approvals", "list"], { AA_GATEWAY_URL: gw.url, AA_API_KEY: KEY });
    expect(table.stdout).toMatch(/apr_0123456789abcdef\s+release-bot\s+merge_pr\s+pending/);

    const approved = await aa(["approvals", "approve", "apr_0123456789abcdef", "--reason", "ok"], {
      AA_GATEWAY_URL: gw.url,
      AA_API_KEY: KEY,
    });
    expect(approved.code).toBe(0);
    expect(approved.stdout).toMatch(/approved apr_0123456789abcdef \(merge_pr by release-bot\)/);
    // The reviewer is the key's principal: only the reason goes over the wire.
    expect(gw.seen.at(-1)!.body).toEqual({ reason: "ok" });
  });

  it("exits 6 when the gateway is unreachable or broken, 7 for a refused key, 2 for bad usage, 4 for an unknown id", async () => {
    const gw = await gateway((s) => {
      if (s.path === "/v1/posture")
        return { status: 200, raw: "<html>bad gateway</html>", type: "text/html" };
      if (s.path === "/v1/approvals/apr_missing")
        return {
          status: 404,
          body: { error: { code: "APPROVAL_NOT_FOUND", message: "no approval apr_missing" } },
        };
      if (s.path === "/v1/agents")
        return { status: 503, body: { error: { code: "GATE_UNAVAILABLE", message: "store down" } } };
      return undefined;
    });
    const broken = await aa(["posture", "--gateway", gw.url, "--api-key", KEY]);
    expect(broken.code).toBe(6);
    expect(broken.stderr).toMatch(/not JSON/);
    const down = await aa(["agents", "list", "--gateway", gw.url, "--api-key", KEY]);
    expect(down.code).toBe(6);
    expect(down.stderr).toMatch(/3 attempts/);
    expect(gw.seen.filter((s) => s.path === "/v1/agents")).toHaveLength(3);
    const refused = await aa([
      "--json",
      "audit",
      "list",
      "--gateway",
      gw.url,
      "--api-key",
      "aa_operator_k9_wrong",
    ]);
    expect(refused.code).toBe(7);
    expect(JSON.parse(refused.stdout)).toMatchObject({ error: { code: "UNAUTHENTICATED" } });
    expect((await aa(["approvals", "show", "apr_missing", "--gateway", gw.url, "--api-key", KEY])).code).toBe(
      4,
    );
    const both = await aa(["audit", "list", "--gateway", gw.url, "--store", "x.db"]);
    expect(both.code).toBe(2);
    const noKey = await aa(["audit", "list", "--gateway", gw.url]);
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toMatch(/needs an operator API key/);
    server?.closeAllConnections();
    await new Promise<void>((r) => server!.close(() => r()));
    server = undefined;
    const refusedConnection = await aa(["audit", "verify", "--gateway", gw.url, "--api-key", KEY]);
    expect(refusedConnection.code).toBe(6);
    expect(refusedConnection.stderr).toMatch(/ECONNREFUSED/);
  });

  it("verifies and exports through the gateway with progress on stderr, stdout left clean", async () => {
    const lines = [
      {
        type: "header",
        format: "aa-audit-export",
        version: 1,
        org: "acme",
        exported_at: "2026-01-01T00:00:00.000Z",
      },
      { type: "jwks", keys: [] },
      { type: "record", seq: 1, id: "a", hash: "h1", record: {} },
      { type: "record", seq: 2, id: "b", hash: "h2", record: {} },
      { type: "outcome", audit_event_id: "a", agent: "release-bot", status: "success" },
    ];
    const ndjson = `${lines.map((l) => JSON.stringify(l)).join("\n")}\n`;
    let valid = true;
    const gw = await gateway((s) => {
      if (s.path === "/v1/audit/verify")
        return {
          status: 200,
          body: valid
            ? { chainValid: true, checked: 2, firstBrokenAtRowId: null }
            : { chainValid: false, checked: 1, firstBrokenAtRowId: "b", problem: "hash mismatch at seq 2" },
        };
      if (s.path === "/v1/audit/export") return { status: 200, raw: ndjson, type: "application/x-ndjson" };
      return undefined;
    });
    const ok = await aa(["audit", "verify", "--gateway", gw.url, "--api-key", KEY, "--progress"]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/chain valid\s+2 records verified \(http:\/\/127\.0\.0\.1:\d+\/v1\)/);
    expect(ok.stderr).toMatch(/verifying http:\/\/127\.0\.0\.1:\d+\/v1 \d+\.\ds/);
    valid = false;
    const bad = await aa(["--json", "audit", "verify", "--gateway", gw.url, "--api-key", KEY]);
    expect(bad.code).toBe(3);
    expect(JSON.parse(bad.stdout)).toMatchObject({ chainValid: false, firstBrokenAtRowId: "b" });
    // No --progress and stderr is not a terminal: no progress line.
    expect(bad.stderr).toBe("");

    const dir = tempDir();
    const out = join(dir, "export.jsonl");
    const exported = await aa([
      "--json",
      "audit",
      "export",
      "-o",
      out,
      "--gateway",
      gw.url,
      "--api-key",
      KEY,
      "--progress",
    ]);
    expect(exported.code).toBe(0);
    expect(readFileSync(out, "utf8")).toBe(ndjson);
    expect(JSON.parse(exported.stdout)).toEqual({ file: out, records: 2, outcomes: 1, checkpoints: 0 });
    expect(exported.stderr).toMatch(/exported 2 records/);
    const piped = await aa(["audit", "export", "--gateway", gw.url, "--api-key", KEY]);
    expect(piped.stdout).toBe(ndjson);
  });

  it("contains and releases an agent, reads posture and pages the audit through the gateway", async () => {
    const control = (contained: boolean) => ({
      agentId: "loop-bot",
      contained,
      changedBy: "operator:k9",
      reason: contained ? "runaway" : "fixed",
      changedAt: "2026-01-01T00:00:00.000Z",
    });
    const gw = await gateway((s) => {
      if (s.path === "/v1/agents/loop-bot/contain") return { status: 200, body: control(true) };
      if (s.path === "/v1/agents/loop-bot/release") return { status: 200, body: control(false) };
      if (s.path === "/v1/agents") return { status: 200, body: { agents: [control(true)] } };
      if (s.path === "/v1/audit") {
        const records = [
          { id: "a", seq: 1, kind: "action", agent: "loop-bot", action_type: "x" },
          { id: "b", seq: 2, kind: "action", agent: "loop-bot", action_type: "y" },
        ];
        if (s.query.order !== "desc") return { status: 400, body: { error: { code: "X", message: "asc" } } };
        // Newest first as the gateway pages it: a cursor means "before seq N".
        const before = s.query.cursor === undefined ? 3 : Number(s.query.cursor.slice(1));
        const page = records
          .filter((r) => r.seq < before)
          .reverse()
          .slice(0, Number(s.query.limit));
        const last = page.at(-1);
        return {
          status: 200,
          body: { items: page, ...(last && last.seq > 1 ? { nextCursor: `d${last.seq}` } : {}) },
        };
      }
      return undefined;
    });
    const env = { AA_GATEWAY_URL: gw.url, AA_API_KEY: KEY };
    const contained = await aa(["agents", "contain", "loop-bot", "--reason", "runaway"], env);
    expect(contained.stdout).toMatch(/contained loop-bot by operator:k9: runaway/);
    expect(gw.seen.at(-1)!.body).toEqual({ reason: "runaway" });
    expect((await aa(["agents", "list"], env)).stdout).toMatch(/loop-bot\s+contained\s+operator:k9/);
    expect((await aa(["agents", "release", "loop-bot", "--reason", "fixed"], env)).code).toBe(0);
    // tail reads newest first from the head: one request for one record, never the whole chain.
    const tail = await aa(["--json", "audit", "tail", "-n", "1"], env);
    expect(JSON.parse(tail.stdout)).toEqual([expect.objectContaining({ id: "b", seq: 2 })]);
    const auditQueries = () => gw.seen.filter((s) => s.path === "/v1/audit").map((s) => s.query);
    expect(auditQueries()).toEqual([{ order: "desc", limit: "1" }]);
    // More lines than records: everything, oldest first.
    const all = await aa(["--json", "audit", "tail", "-n", "5"], env);
    expect(JSON.parse(all.stdout).map((e: { seq: number }) => e.seq)).toEqual([1, 2]);
    expect(auditQueries().slice(1)).toEqual([{ order: "desc", limit: "5" }]);
  });
});

describe("aa receipts verify", { timeout: 60_000 }, () => {
  it("verifies a receipt signed by the engine against a JWKS file or URL, and exits 3 for a tampered one", async () => {
    const dir = tempDir();
    const policy = parsePolicy(
      "version: 1\ndefault: deny\npolicies:\n  - name: reads\n    action: read_file\n    effect: allow\n",
    );
    const engine = await openEngine({ store: join(dir, "a.db"), policy });
    const decided = await engine.decide({
      agent: { id: "release-bot" },
      actionType: "read_file",
      toolName: "read_file",
    });
    const receipt = await engine.receipt(decided.auditEventId);
    const jwks = engine.jwks();
    await engine.close();
    const jwksFile = join(dir, "jwks.json");
    writeFileSync(jwksFile, JSON.stringify(jwks));

    const ok = await aa(["receipts", "verify", receipt, "--jwks", jwksFile]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/receipt valid/);
    expect(ok.stdout).toMatch(/read_file by release-bot/);

    const receiptFile = join(dir, "receipt.json");
    writeFileSync(receiptFile, JSON.stringify({ receipt }));
    const gw = await gateway(() => undefined);
    server!.removeAllListeners("request");
    server!.on("request", (_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(jwks));
    });
    const viaUrl = await aa([
      "--json",
      "receipts",
      "verify",
      receiptFile,
      "--jwks",
      `${gw.url}/v1/jwks.json`,
    ]);
    expect(viaUrl.code).toBe(0);
    expect(JSON.parse(viaUrl.stdout)).toMatchObject({
      valid: true,
      claims: { agentId: "release-bot", status: "executed" },
    });

    const [header, payload, signature] = receipt.split(".");
    const claims = JSON.parse(Buffer.from(payload!, "base64url").toString("utf8"));
    const forged = `${header}.${Buffer.from(JSON.stringify({ ...claims, agentId: "someone-else" })).toString("base64url")}.${signature}`;
    const bad = await aa(["receipts", "verify", forged, "--jwks", jwksFile]);
    expect(bad.code).toBe(3);
    expect(bad.stdout).toMatch(/receipt INVALID\s+signature verification failed/);
    expect((await aa(["receipts", "verify", "nope.txt", "--jwks", jwksFile])).code).toBe(4);
    expect((await aa(["receipts", "verify", receipt])).code).toBe(2);
  });
});

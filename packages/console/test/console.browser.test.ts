/**
 * The console end to end, in headless Chromium (Debian's /usr/bin/chromium driven by
 * playwright-core), against a real gateway on loopback with a SQLite store and real agents using
 * @aa/core's remote gate: approvals appear live and the operator's click releases the waiting
 * gate(); denials; the live audit timeline and chain status; containment from the console; wrong
 * keys; escaping of hostile data. One browser for the file, a fresh context (profile) per test.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AssemblyContext, AssemblyDeniedError, initAssembly } from "@aa/core";
import { CONSOLE_CSP, createGateway, createKey, type Gateway } from "@aa/gateway";
import { parsePolicy } from "@aa/policy";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { consoleAssetsDir } from "../src/index.js";

const CHROMIUM = process.env.AA_CHROMIUM ?? "/usr/bin/chromium";
/** Bounds a wait for the page (a hang guard, not a speed check). */
const WAIT = { timeout: 15_000 };

const POLICY = parsePolicy(
  `version: 1
default: deny
policies:
  - { name: merges, action: pr.merge, effect: require_approval }
  - { name: reads, action: "read.*", effect: allow }
`,
  { source: "console test" },
);

let dir: string;
let gateway: Gateway;
let url: string;
let browser: Browser;
const keys = {
  operator: "",
  admin: "",
  releaseBot: "",
  docsBot: "",
  xssBot: "",
  batchBot: "",
  leadBot: "",
  globexOperator: "",
};
const agents: AssemblyContext[] = [];
let context: BrowserContext | undefined;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium is missing at ${CHROMIUM}; the console's browser tests need it. Install it with \`apt-get install -y chromium\` (Debian; .ci/run does this), or set AA_CHROMIUM to a Chromium binary.`,
    );
  }
  dir = mkdtempSync(join(tmpdir(), "aa-console-"));
  gateway = await createGateway({
    policy: POLICY,
    database: `sqlite:${join(dir, "gateway.db")}`,
    keyCacheMs: 0,
    console: { assetsDir: consoleAssetsDir },
  });
  const make = async (
    kind: "agent" | "operator" | "admin",
    agentId?: string,
    name?: string,
    orgId = "acme",
  ) =>
    (
      await createKey(gateway.store, {
        kind,
        orgId,
        ...(agentId ? { agentId } : {}),
        ...(name ? { name } : {}),
      })
    ).key;
  keys.operator = await make("operator", undefined, "ops-alice");
  keys.admin = await make("admin", undefined, "admin-ada");
  keys.releaseBot = await make("agent", "release-bot");
  keys.docsBot = await make("agent", "docs-bot");
  keys.xssBot = await make("agent", "xss-bot");
  keys.batchBot = await make("agent", "batch-bot");
  keys.leadBot = await make("agent", "lead-bot");
  keys.globexOperator = await make("operator", undefined, "ops-gus", "globex");
  url = await gateway.listen({ port: 0, host: "127.0.0.1" });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // playwright-core gives every launch a fresh temporary profile (--user-data-dir).
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

afterEach(async () => {
  await context?.close();
  context = undefined;
  // One assembly per process (initAssembly): each test's agent is shut down before the next one.
  for (const agent of agents.splice(0)) await agent.shutdown();
});

afterAll(async () => {
  await browser?.close();
  for (const agent of agents.splice(0)) await agent.shutdown().catch(() => undefined);
  await gateway?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The test's agent: a governed client using the gateway (remote gate), as an agent process has. */
async function agent(key: string): Promise<AssemblyContext> {
  const root = mkdtempSync(join(dir, "agent-"));
  const ctx = await initAssembly({ mode: "sdk-only", gatewayUrl: url, apiKey: key, root, adapters: [] });
  agents.push(ctx);
  return ctx;
}

/** A fresh browser profile; every URL the page requests is recorded. */
async function openPage(): Promise<{ page: Page; requested: string[]; errors: string[] }> {
  context = await browser.newContext();
  const page = await context.newPage();
  const requested: string[] = [];
  const errors: string[] = [];
  page.on("request", (request) => requested.push(request.url()));
  page.on("pageerror", (error) => errors.push(error.message));
  page.on("dialog", (dialog) => {
    errors.push(`dialog: ${dialog.message()}`);
    void dialog.dismiss();
  });
  await page.goto(`${url}/`);
  return { page, requested, errors };
}

async function signIn(page: Page, key: string): Promise<void> {
  await page.fill("#key-input", key);
  await page.click("#key-form button[type=submit]");
  await page.locator("#stream-state[data-state=live]").waitFor(WAIT);
}

const approvalItem = (page: Page, text: string) => page.locator("#approval-list li", { hasText: text });
const auditRow = (page: Page, ...texts: string[]) =>
  texts.reduce((rows, text) => rows.filter({ hasText: text }), page.locator("#audit-rows tr"));

describe("the console served by the gateway", () => {
  it("serves the page under a strict CSP, redirects / and keeps no secret in the HTML", async () => {
    const root = await fetch(`${url}/`, { redirect: "manual" });
    expect(root.status).toBe(302);
    expect(root.headers.get("location")).toBe("/console/");
    const html = await fetch(`${url}/console/`);
    expect(html.status).toBe(200);
    expect(html.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(html.headers.get("content-security-policy")).toBe(CONSOLE_CSP);
    expect(CONSOLE_CSP).toContain("script-src 'self'");
    expect(CONSOLE_CSP).not.toContain("unsafe-inline");
    expect(html.headers.get("x-frame-options")).toBe("DENY");
    const text = await html.text();
    expect(text).not.toMatch(/aa_(operator|admin|agent)_[0-9a-f]{16}_/);
    expect(text).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // no inline script
    const missing = await fetch(`${url}/console/../package.json`);
    expect(missing.status).toBe(404);
    const unknown = await fetch(`${url}/console/secrets.txt`);
    expect(unknown.status).toBe(404);
    expect((await unknown.json()).error.code).toBe("NOT_FOUND");
  });

  it("explains a wrong key: not a key, unknown to the gateway, an agent's key", async () => {
    const { page, errors } = await openPage();
    await page.fill("#key-input", "hunter2");
    await page.click("#key-form button[type=submit]");
    await page.locator("#key-error", { hasText: "not an Agent Assembly key" }).waitFor(WAIT);

    await page.fill("#key-input", `aa_operator_${"0".repeat(16)}_${"0".repeat(64)}`);
    await page.click("#key-form button[type=submit]");
    await page.locator("#key-error", { hasText: "The gateway rejected this key" }).waitFor(WAIT);

    await page.fill("#key-input", keys.docsBot);
    await page.click("#key-form button[type=submit]");
    await page.locator("#key-error", { hasText: "This is an agent key (agent docs-bot)" }).waitFor(WAIT);
    expect(await page.locator("#console").isHidden()).toBe(true);
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    expect(errors).toEqual([]);
  });

  it("shows a held call live; the operator's approval releases the agent's gate()", async () => {
    const { page, requested, errors } = await openPage();
    await signIn(page, keys.operator);
    expect(await page.locator("#identity").textContent()).toContain("org acme · operator key");
    const bot = await agent(keys.releaseBot);

    const gated = bot.gate("pr.merge", { args: { pr: 42, branch: "main" }, gatePollIntervalMs: 50 });
    const item = approvalItem(page, "pr.merge");
    await item.waitFor(WAIT);
    expect(await item.locator(".agent").textContent()).toBe("release-bot");
    await item.locator(".args", { hasText: '"pr":42' }).waitFor(WAIT);
    expect(await page.locator("#approval-count").textContent()).toBe("1");

    await item.locator("input.reason").fill("reviewed PR 42");
    await item.locator("button.approve").click();
    const released = await gated;
    expect(released.status).toBe("executed");
    await item.waitFor({ state: "detached", ...WAIT });
    expect(await page.locator("#approval-count").textContent()).toBe("0");

    // The timeline got the three records live, newest first, with the reviewer's reason.
    await auditRow(page, "release-bot", "released after approval").waitFor(WAIT);
    await auditRow(page, "ops-alice", "approved", "reviewed PR 42").waitFor(WAIT);
    await auditRow(page, "release-bot", "held for approval", "policy merges").waitFor(WAIT);
    const seqs = await page
      .locator("#audit-rows tr")
      .evaluateAll((rows) => rows.map((row) => Number(row.getAttribute("data-seq"))));
    expect(seqs).toEqual([...seqs].sort((a, b) => b - a));

    await page.click("#verify");
    await page.locator("#chain-status[data-valid=true]", { hasText: `${seqs.length} records` }).waitFor(WAIT);
    expect(await page.locator("#chain-stale").isHidden()).toBe(true);

    // An approval decided elsewhere (here: the admin's key, as `aa approvals` would) leaves the list
    // live; records newer than the last chain check are counted until the next check.
    const second = bot.gate("pr.merge", { args: { pr: 43 }, gatePollIntervalMs: 50 });
    const other = approvalItem(page, '"pr":43');
    await other.waitFor(WAIT);
    const approvalId = await other.getAttribute("data-approval-id");
    const decided = await fetch(`${url}/v1/approvals/${approvalId}/approve`, {
      method: "POST",
      headers: { authorization: `Bearer ${keys.admin}`, "content-type": "application/json" },
      body: JSON.stringify({ reason: "approved from the CLI" }),
    });
    expect(decided.status).toBe(200);
    expect((await second).status).toBe("executed");
    await other.waitFor({ state: "detached", ...WAIT });
    await page.locator("#chain-stale", { hasText: "3 newer records not checked yet" }).waitFor(WAIT);
    await page.click("#verify");
    await page
      .locator("#chain-status[data-valid=true]", { hasText: `${seqs.length + 3} records` })
      .waitFor(WAIT);
    await page.locator("#chain-stale").waitFor({ state: "hidden", ...WAIT });

    // Posture: the score and its four parts, re-read on demand.
    await page.click("#posture-refresh");
    await page.locator("#posture-parts dd[data-part=chainIntegrity]", { hasText: "25 / 25" }).waitFor(WAIT);
    expect(await page.locator("#posture-parts dt").allTextContents()).toEqual([
      "Policy coverage",
      "Approval hygiene",
      "Anomaly rate",
      "Chain integrity",
    ]);
    expect(await page.locator("#posture-score").textContent()).toMatch(/^\d{1,3}$/);

    // The key stays in this tab's sessionStorage, never in a URL; a reload keeps the session.
    expect(await page.evaluate(() => localStorage.length)).toBe(0);
    expect(requested.filter((u) => u.includes(keys.operator) || u.includes("apiKey"))).toEqual([]);
    expect(requested.some((u) => u.endsWith("/v1/events"))).toBe(true);
    await page.reload();
    await page.locator("#stream-state[data-state=live]").waitFor(WAIT);
    await auditRow(page, "approved from the CLI").waitFor(WAIT);
    expect(errors).toEqual([]);
  });

  it("denies with the operator's reason (a reason is required), and the agent gets the denial", async () => {
    const { page, errors } = await openPage();
    await signIn(page, keys.operator);
    const bot = await agent(keys.releaseBot);
    const gated = bot.gate("pr.merge", { args: { pr: 7 }, gatePollIntervalMs: 50 });
    const outcome = gated.then(
      () => undefined,
      (error: unknown) => error,
    );
    const item = approvalItem(page, '"pr":7');
    await item.waitFor(WAIT);
    await item.locator("button.deny").click();
    await page.locator("#notice[data-kind=error]", { hasText: "A denial needs a reason" }).waitFor(WAIT);
    await item.locator("input.reason").fill("not during the freeze");
    await item.locator("button.deny").click();
    const error = await outcome;
    expect(error).toBeInstanceOf(AssemblyDeniedError);
    expect((error as AssemblyDeniedError).reason).toBe("DENIED_BY_REVIEWER");
    await item.waitFor({ state: "detached", ...WAIT });
    await auditRow(page, "ops-alice", "denied by reviewer", "not during the freeze").waitFor(WAIT);
    expect(errors).toEqual([]);
  });

  it("contains an agent from the console: its next call is denied, live; release lets it run again; delegations", async () => {
    const { page, errors } = await openPage();
    await signIn(page, keys.operator);
    const docs = await agent(keys.docsBot);
    expect((await docs.execute("read.file", { args: { path: "README.md" } })).status).toBe("executed");
    const row = page.locator('#agent-rows tr[data-agent-id="docs-bot"]');
    await row.waitFor(WAIT);
    expect(await row.locator("td").nth(1).textContent()).toBe("active");

    await row.locator("button").click();
    await page.locator("#notice[data-kind=error]", { hasText: "needs a reason" }).waitFor(WAIT);
    await row.locator("input").fill("leaking docs");
    await row.locator("button[data-action=contain]").click();
    await row.locator(".state-contained").waitFor(WAIT);
    await row.locator("td", { hasText: "contained by ops-alice — leaking docs" }).waitFor(WAIT);

    const denied = await docs.execute("read.file", { args: { path: "secrets.env" } });
    expect(denied).toMatchObject({ status: "denied", denialReason: "CIRCUIT_OPEN" });
    await auditRow(page, "docs-bot", "denied", "CIRCUIT_OPEN", "secrets.env").waitFor(WAIT);

    await row.locator("input").fill("fixed");
    await row.locator("button[data-action=release]").click();
    await row.locator(".state-active").waitFor(WAIT);
    expect((await docs.execute("read.file", { args: { path: "README.md" } })).status).toBe("executed");

    // A delegation shows up live in the delegations table.
    await docs.delegate("indexer", { capabilities: ["read.*"] });
    const delegation = page.locator("#delegation-rows tr", { hasText: "docs-bot/indexer" });
    await delegation.waitFor(WAIT);
    expect(await delegation.locator("td").allTextContents()).toEqual(
      expect.arrayContaining(["docs-bot", "read.*", "active"]),
    );
    expect(errors).toEqual([]);
  });

  it("reads the newest page first, older pages on demand, and new records live above them", async () => {
    // More records than a page (100), by an agent with its own key.
    const batch = await agent(keys.batchBot);
    for (let i = 0; i < 130; i++) {
      expect((await batch.execute("read.file", { args: { n: i } })).status).toBe("executed");
    }
    const newest = await fetch(`${url}/v1/audit?order=desc&limit=1`, {
      headers: { authorization: `Bearer ${keys.operator}` },
    });
    const head = ((await newest.json()) as { items: { seq: number }[] }).items[0]!.seq;
    expect(head).toBeGreaterThanOrEqual(130);

    const { page, requested, errors } = await openPage();
    await signIn(page, keys.operator);
    const rows = page.locator("#audit-rows tr");
    await page.locator(`#audit-rows tr[data-seq="${head}"]`).waitFor(WAIT);
    const seqs = () => rows.evaluateAll((trs) => trs.map((tr) => Number(tr.getAttribute("data-seq"))));
    const descending = (from: number, count: number) => Array.from({ length: count }, (_, i) => from - i);
    // One page, newest first: the timeline did not read the chain from its start.
    expect(await seqs()).toEqual(descending(head, 100));
    expect(await auditRow(page, "batch-bot", '"n":129').count()).toBe(1);
    const auditReads = () => requested.filter((u) => new URL(u).pathname === "/v1/audit");
    expect(auditReads().every((u) => new URL(u).searchParams.get("order") === "desc")).toBe(true);
    expect(auditReads()).toHaveLength(1);
    expect(await page.locator("#audit-end").isHidden()).toBe(true);

    // "Load older" adds the next page below; a new record arrives live above.
    const twoPages = Math.min(200, head);
    await page.click("#audit-older");
    await page.locator(`#audit-rows tr[data-seq="${head - twoPages + 1}"]`).waitFor(WAIT);
    expect(await seqs()).toEqual(descending(head, twoPages));
    expect((await batch.execute("read.file", { args: { n: "live" } })).status).toBe("executed");
    await page.locator(`#audit-rows tr[data-seq="${head + 1}"]`).waitFor(WAIT);
    expect(await seqs()).toEqual(descending(head + 1, twoPages + 1));

    // Until the start of the chain: every record once, and the button goes away.
    while (await page.locator("#audit-older").isVisible()) {
      const before = await rows.count();
      await page.click("#audit-older");
      await page.waitForFunction((n) => document.querySelectorAll("#audit-rows tr").length > n, before, WAIT);
    }
    await page.locator("#audit-end", { hasText: "start of the chain" }).waitFor(WAIT);
    expect(await seqs()).toEqual(descending(head + 1, head + 1));
    expect(auditReads().every((u) => new URL(u).searchParams.get("order") === "desc")).toBe(true);
    expect(errors).toEqual([]);
  });

  it("revokes a delegation after a confirmation: the list updates live and the child is denied", async () => {
    const { page, errors } = await openPage();
    await signIn(page, keys.operator);
    const lead = await agent(keys.leadBot);
    const child = await lead.delegate("worker", { capabilities: ["read.*"] });
    expect((await child.execute("read.file", { args: { path: "a" } })).status).toBe("executed");
    const row = page.locator("#delegation-rows tr", { hasText: "lead-bot/worker" });
    await row.locator("td.state", { hasText: "active" }).waitFor(WAIT);

    // The first click only asks; Cancel leaves the delegation active.
    await row.locator("button.revoke").click();
    await row.locator(".confirm-text", { hasText: "Revoke lead-bot/worker" }).waitFor(WAIT);
    await row.locator("button.cancel").click();
    await row.locator("button.revoke").waitFor(WAIT);
    expect((await child.execute("read.file", { args: { path: "b" } })).status).toBe("executed");

    await row.locator("button.revoke").click();
    await row.locator("button.confirm-revoke").click();
    await row.locator("td.state", { hasText: "revoked" }).waitFor(WAIT);
    await page.locator("#notice", { hasText: "Revoked lead-bot/worker" }).waitFor(WAIT);
    expect(await row.locator("button").count()).toBe(0);
    const denied = await child.execute("read.file", { args: { path: "c" } });
    expect(denied).toMatchObject({ status: "denied", denialReason: "DELEGATION_REVOKED" });
    await auditRow(page, "lead-bot/worker", "DELEGATION_REVOKED").waitFor(WAIT);
    await auditRow(page, "lead-bot/worker", "delegation revoked", "revoked by ops-alice").waitFor(WAIT);
    expect(errors).toEqual([]);
  });

  it("shows 'No delegations.' without an empty table, and the table without it", async () => {
    const { page, errors } = await openPage();
    await signIn(page, keys.globexOperator);
    // Read (an org without delegations): the message, and no table.
    await page.locator('#delegation-table[data-count="0"]').waitFor({ state: "attached", ...WAIT });
    expect(await page.locator("#delegations-empty").isVisible()).toBe(true);
    expect(await page.locator("#delegation-table").isHidden()).toBe(true);
    await page.click("#sign-out");
    const release = await agent(keys.releaseBot);
    await release.delegate("helper", { capabilities: ["read.*"] });
    await signIn(page, keys.operator);
    await page.locator("#delegation-rows tr", { hasText: "release-bot/helper" }).waitFor(WAIT);
    expect(await page.locator("#delegations-empty").isHidden()).toBe(true);
    expect(await page.locator("#delegation-table").isVisible()).toBe(true);
    expect(errors).toEqual([]);
  });

  it("renders hostile agent ids, arguments and reasons as text", async () => {
    const { page, errors } = await openPage();
    await signIn(page, keys.admin);
    const hostile = "<img src=x onerror=window.__xss=1>";
    const xss = await agent(keys.xssBot);
    const gated = xss.gate("pr.merge", { args: { title: hostile }, gatePollIntervalMs: 50 });
    const outcome = gated.then(
      () => undefined,
      (error: unknown) => error,
    );
    const item = approvalItem(page, "xss-bot");
    await item.locator(".args", { hasText: hostile }).waitFor(WAIT);
    await item.locator("input.reason").fill(`<script>window.__xss=2</script>`);
    await item.locator("button.deny").click();
    expect(await outcome).toBeInstanceOf(AssemblyDeniedError);

    // An operator can contain any agent id, including one that is markup.
    await page.fill("#contain-agent", `<img src=x onerror=window.__xss=3>`);
    await page.fill("#contain-reason", `<b onmouseover=window.__xss=4>bold</b>`);
    await page.click("#contain-form button[type=submit]");
    const hostileRow = page.locator("#agent-rows tr", { hasText: "<img src=x onerror=window.__xss=3>" });
    await hostileRow.locator(".state-contained").waitFor(WAIT);
    await auditRow(page, "<script>window.__xss=2</script>").waitFor(WAIT);
    await auditRow(page, "<b onmouseover=window.__xss=4>bold</b>").waitFor(WAIT);
    await auditRow(page, "xss-bot", "held for approval", hostile).waitFor(WAIT);

    expect(await page.evaluate(() => (window as { __xss?: number }).__xss)).toBeUndefined();
    expect(await page.locator("main img, main script, main b").count()).toBe(0);
    expect(await hostileRow.locator("td.agent").textContent()).toBe("<img src=x onerror=window.__xss=3>");
    expect(errors).toEqual([]);
  });
});

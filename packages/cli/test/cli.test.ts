import { execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { promisify } from "node:util";
import { openEngine } from "@aa/engine";
import { parsePolicy } from "@aa/policy";
import { describe, expect, it } from "vitest";
import { STARTER_POLICY } from "../src/commands/init.js";

const bin = new URL("../dist/bin.js", import.meta.url).pathname;
const run = promisify(execFile);
const waitingAgent = new URL("./fixtures/waiting-agent.mjs", import.meta.url).pathname;

/** Run the real `aa` binary; never throws, returns exit code and output. */
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

const tempDir = () => mkdtempSync(join(tmpdir(), "aa-cli-"));

/** A store with some history, written by the real engine as an agent would. */
/** The trace of the seeded store's last decision. */
const SEEDED_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";

async function seededStore(dir: string) {
  const store = join(dir, ".aa", "assembly.db");
  const engine = await openEngine({ store, policy: parsePolicy(STARTER_POLICY) });
  const agent = { id: "release-bot" };
  await engine.decide({ agent, actionType: "read_diff", toolName: "read_diff", args: { pr: 1 } });
  await engine.decide({ agent, actionType: "open_pr", toolName: "open_pr", args: { lines_changed: 120 } });
  await engine.decide({
    agent,
    actionType: "open_pr",
    toolName: "open_pr",
    args: { lines_changed: 40 },
    traceId: SEEDED_TRACE,
  });
  return { store, engine, agent };
}

describe("aa init and aa policy", () => {
  it("writes a starter policy that validates, and refuses to overwrite it", async () => {
    const dir = tempDir();
    expect((await aa(dir, "init")).code).toBe(0);
    expect(readFileSync(join(dir, "aa.policy.yaml"), "utf8")).toBe(STARTER_POLICY);
    const again = await aa(dir, "init");
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already exists; use --force/);
    const check = await aa(dir, "--json", "policy", "check");
    expect(check.code).toBe(0);
    expect(JSON.parse(check.stdout)).toMatchObject({ valid: true, policies: 3 });
  });

  it("reports policy problems with line numbers and exit code 2", async () => {
    const dir = tempDir();
    writeFileSync(
      join(dir, "aa.policy.yaml"),
      "version: 1\npolicies:\n  - name: x\n    action: a\n    efect: allow\n",
    );
    const check = await aa(dir, "policy", "check");
    expect(check.code).toBe(2);
    expect(check.stderr).toMatch(/aa\.policy\.yaml:5/);
    expect(check.stderr).toMatch(/efect/);
  });

  it("dry-runs a decision and shows each condition, exit 5 when denied", async () => {
    const dir = tempDir();
    await aa(dir, "init");
    const denied = await aa(dir, "policy", "test", "open_pr", "--args", '{"lines_changed":120}');
    expect(denied.code).toBe(5);
    expect(denied.stdout).toMatch(
      /deny\s+denied by policy "small-prs": args\.lines_changed lt 50 failed \(actual 120\)/,
    );
    expect(denied.stdout).toMatch(/small-prs\s+args\.lines_changed\s+lt\s+50\s+120\s+FAIL/);
    const allowed = await aa(dir, "--json", "policy", "test", "open_pr", "--args", '{"lines_changed":12}');
    expect(allowed.code).toBe(0);
    expect(JSON.parse(allowed.stdout)).toMatchObject({ effect: "allow", policyName: "small-prs" });
    expect((await aa(dir, "policy", "test", "open_pr", "--args", "{oops")).code).toBe(2);
  });
});

describe("aa audit", () => {
  it("lists, tails, verifies, exports and verifies the export offline", async () => {
    const dir = tempDir();
    const { engine } = await seededStore(dir);
    await engine.close();
    const list = await aa(dir, "--json", "audit", "list");
    expect(list.code).toBe(0);
    const page = JSON.parse(list.stdout) as { items: { action_type: string; status: string }[] };
    expect(page.items.map((e) => [e.action_type, e.status])).toEqual([
      ["read_diff", "executed"],
      ["open_pr", "denied"],
      ["open_pr", "executed"],
    ]);
    const traced = await aa(dir, "--json", "audit", "list", "--trace", SEEDED_TRACE);
    expect(traced.code).toBe(0);
    expect(
      (JSON.parse(traced.stdout) as { items: { trace_id: string; seq: number }[] }).items.map((e) => [
        e.seq,
        e.trace_id,
      ]),
    ).toEqual([[3, SEEDED_TRACE]]);
    expect((await aa(dir, "audit", "list", "--trace", " ")).code).toBe(2);
    const newest = await aa(dir, "--json", "audit", "list", "--newest-first", "--limit", "2");
    expect(newest.code).toBe(0);
    const newestPage = JSON.parse(newest.stdout) as { items: { seq: number }[]; nextCursor: string };
    expect(newestPage.items.map((e) => e.seq)).toEqual([3, 2]);
    const older = await aa(
      dir,
      "--json",
      "audit",
      "list",
      "--newest-first",
      "--cursor",
      newestPage.nextCursor,
    );
    expect((JSON.parse(older.stdout) as { items: { seq: number }[] }).items.map((e) => e.seq)).toEqual([1]);
    const hint = await aa(dir, "audit", "list", "--newest-first", "--limit", "1");
    expect(hint.stdout).toMatch(/more: aa audit list --newest-first --cursor \S+/);
    const table = await aa(dir, "audit", "tail", "-n", "2");
    expect(table.stdout.split("\n").filter(Boolean)).toHaveLength(3);
    expect(table.stdout).toMatch(/CONDITIONS_DENIED/);
    // tail reads from the head but prints oldest first, the newest record last.
    const tailed = await aa(dir, "--json", "audit", "tail", "-n", "2");
    expect((JSON.parse(tailed.stdout) as { seq: number }[]).map((e) => e.seq)).toEqual([2, 3]);

    const verify = await aa(dir, "audit", "verify");
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/chain valid\s+3 records verified/);

    const exportFile = join(dir, "audit.jsonl");
    expect((await aa(dir, "audit", "export", "-o", exportFile)).code).toBe(0);
    const offline = await aa(tempDir(), "--json", "audit", "verify", exportFile);
    expect(offline.code).toBe(0);
    expect(JSON.parse(offline.stdout)).toMatchObject({ chainValid: true, checked: 3, keySource: "embedded" });

    // An auditor anchors trust in keys obtained from the operator, not in the export itself.
    const keys = await aa(dir, "audit", "keys");
    const jwksFile = join(dir, "jwks.json");
    writeFileSync(jwksFile, keys.stdout);
    expect(JSON.parse(keys.stdout).keys[0]).toMatchObject({ kty: "OKP", crv: "Ed25519", alg: "EdDSA" });
    expect(JSON.parse(keys.stdout).keys[0].d).toBeUndefined();
    const anchored = await aa(tempDir(), "--json", "audit", "verify", exportFile, "--jwks", jwksFile);
    expect(JSON.parse(anchored.stdout)).toMatchObject({ chainValid: true, keySource: "provided" });

    // Rotating the signing key keeps the old public key published, so the chain still verifies.
    const rotated = await aa(dir, "audit", "keys", "--rotate");
    expect(rotated.stderr).toMatch(/rotated: new signing key \S+; 2 public keys published/);
    expect(JSON.parse(rotated.stdout).keys).toHaveLength(2);
    expect((await aa(dir, "audit", "verify")).code).toBe(0);
  });

  it("draws a determinate verify bar on stderr with --progress, leaving stdout unchanged", async () => {
    const dir = tempDir();
    const { engine, agent } = await seededStore(dir);
    // More than one verify chunk (1000 records), so the engine reports progress along the way.
    for (let i = 0; i < 2000; i += 250) {
      await Promise.all(
        Array.from({ length: 250 }, (_, j) =>
          engine.decide({ agent, actionType: "read_diff", toolName: "read_diff", args: { pr: i + j } }),
        ),
      );
    }
    const size = (await engine.verify()).checked;
    await engine.close();

    const plain = await aa(dir, "audit", "verify");
    const withBar = await aa(dir, "audit", "verify", "--progress");
    expect(withBar.code).toBe(0);
    expect(withBar.stdout).toBe(plain.stdout);
    expect(plain.stdout).toMatch(new RegExp(`chain valid\\s+${size} records verified`));
    // Not a terminal and no --progress: nothing on stderr.
    expect(plain.stderr).toBe("");
    const lines = withBar.stderr.trim().split("\n");
    for (const line of lines) expect(line).toMatch(/^verifying \[[#-]{30}\] \d+% \d+\/\d+ records \d+\.\ds$/);
    expect(lines.at(-1)).toMatch(new RegExp(`^verifying \\[#{30}\\] 100% ${size}/${size} records `));

    const json = await aa(dir, "--json", "audit", "verify");
    const jsonWithBar = await aa(dir, "--json", "audit", "verify", "--progress");
    expect(jsonWithBar.stdout).toBe(json.stdout);
    expect(JSON.parse(jsonWithBar.stdout)).toMatchObject({ chainValid: true, checked: size });
    expect(jsonWithBar.stderr).toMatch(/100% \d+\/\d+ records/);
  });

  it("exits 3 and names the broken record when the store was tampered with", async () => {
    const dir = tempDir();
    const { store, engine } = await seededStore(dir);
    await engine.close();
    const raw = new DatabaseSync(store);
    raw.exec(
      "UPDATE audit_events SET record = replace(record, '\"lines_changed\":120', '\"lines_changed\":12') WHERE seq = 2",
    );
    expect((raw.prepare("SELECT changes() AS n").get() as { n: number }).n).toBe(1);
    raw.close();
    const verify = await aa(dir, "audit", "verify");
    expect(verify.code).toBe(3);
    expect(verify.stdout).toMatch(/chain BROKEN/);
    expect(verify.stdout).toMatch(/first broken record: \S+/);
  });

  it("exits 4 when there is no store, and never creates one", async () => {
    const dir = tempDir();
    const result = await aa(dir, "audit", "list");
    expect(result.code).toBe(4);
    expect(result.stderr).toMatch(/no Agent Assembly store at .*assembly\.db/);
    expect(existsSync(join(dir, ".aa"))).toBe(false);
  });
});

describe("aa approvals", () => {
  it("lets an operator in another process approve a call an agent is waiting on", async () => {
    const dir = tempDir();
    const { engine, agent } = await seededStore(dir);
    const held = await engine.decide({
      agent,
      actionType: "merge_pr",
      toolName: "merge_pr",
      args: { pr: 9 },
    });
    expect(held.status).toBe("requested");
    const waiting = engine.awaitApproval(held.approvalId!, { timeoutMs: 30_000 });

    const list = await aa(dir, "--json", "approvals", "list", "--state", "pending");
    const pending = JSON.parse(list.stdout) as { id: string; actionType: string }[];
    expect(pending.map((a) => [a.id, a.actionType])).toEqual([[held.approvalId, "merge_pr"]]);
    const table = await aa(dir, "approvals", "list");
    expect(table.stdout).toMatch(/merge_pr\s+pending/);

    const approved = await aa(dir, "approvals", "approve", held.approvalId!, "--reviewer", "operator:alice");
    expect(approved.code).toBe(0);
    expect(approved.stdout).toMatch(/approved/);
    await expect(waiting).resolves.toMatchObject({ state: "approved", decidedBy: "operator:alice" });
    const released = await engine.releaseApproval(held.approvalId!, agent.id);
    expect(released.status).toBe("executed");
    await engine.close();
    expect((await aa(dir, "audit", "verify")).code).toBe(0);
  });

  it("refuses the requesting agent as reviewer, and denies with a reason", async () => {
    const dir = tempDir();
    const { engine, agent } = await seededStore(dir);
    const held = await engine.decide({ agent, actionType: "merge_pr", toolName: "merge_pr", args: {} });
    const self = await aa(dir, "approvals", "approve", held.approvalId!, "--reviewer", agent.id);
    expect(self.code).not.toBe(0);
    expect(self.stderr).toMatch(/approve/i);
    const denied = await aa(dir, "approvals", "deny", held.approvalId!, "--reason", "freeze week");
    expect(denied.code, denied.stderr).toBe(0);
    const show = await aa(dir, "--json", "approvals", "show", held.approvalId!);
    expect(JSON.parse(show.stdout)).toMatchObject({ state: "denied", reason: "freeze week" });
    expect((await aa(dir, "approvals", "show", "nope")).code).toBe(4);
    await engine.close();
  });
});

describe("aa audit tail --follow", () => {
  it("prints the last records' events, then events other processes append, until SIGTERM", async () => {
    const dir = tempDir();
    const { engine, agent } = await seededStore(dir);
    const child = spawn(
      process.execPath,
      [bin, "--json", "audit", "tail", "-n", "1", "--follow", "--events", "action.executed,action.denied"],
      { cwd: dir, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } },
    );
    const lines: string[] = [];
    let buffered = "";
    const waiters: { count: number; resolve: () => void }[] = [];
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      buffered += chunk;
      const parts = buffered.split("\n");
      buffered = parts.pop()!;
      lines.push(...parts.filter(Boolean));
      for (const w of waiters.filter((w) => lines.length >= w.count)) w.resolve();
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    const linesReach = (count: number) =>
      lines.length >= count
        ? Promise.resolve()
        : new Promise<void>((resolve) => waiters.push({ count, resolve }));
    try {
      await linesReach(1);
      // The seeded store's last record: open_pr executed.
      expect(JSON.parse(lines[0]!)).toMatchObject({ type: "action.executed", actionType: "open_pr", seq: 3 });
      await engine.decide({
        agent,
        actionType: "open_pr",
        toolName: "open_pr",
        args: { lines_changed: 900 },
      });
      const held = await engine.decide({ agent, actionType: "merge_pr", toolName: "merge_pr" });
      await engine.decide({ agent, actionType: "read_diff", toolName: "read_diff", args: { pr: 2 } });
      await linesReach(3);
      const events = lines.map(
        (line) => JSON.parse(line) as { type: string; actionType: string; seq: number },
      );
      // The held merge is filtered out (approval.requested is not in --events).
      expect(held.status).toBe("requested");
      expect(events.map((e) => [e.type, e.actionType])).toEqual([
        ["action.executed", "open_pr"],
        ["action.denied", "open_pr"],
        ["action.executed", "read_diff"],
      ]);
    } finally {
      child.kill("SIGTERM");
      await engine.close();
    }
    expect(await exited).toBe(0);
  });

  it("prints one readable line per event for people", async () => {
    const dir = tempDir();
    const { engine } = await seededStore(dir);
    await engine.close();
    const child = spawn(process.execPath, [bin, "audit", "tail", "-n", "2", "--follow"], {
      cwd: dir,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1" },
    });
    let output = "";
    child.stdout.setEncoding("utf8");
    const twoLines = new Promise<void>((resolve) =>
      child.stdout.on("data", (chunk: string) => {
        output += chunk;
        if (output.split("\n").filter(Boolean).length >= 2) resolve();
      }),
    );
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    await twoLines;
    child.kill("SIGINT");
    expect(await exited).toBe(0);
    const [denied, executed] = output.split("\n").filter(Boolean);
    expect(denied).toMatch(/^2 +\S+ +action\.denied +release-bot +open_pr +CONDITIONS_DENIED$/);
    expect(executed).toMatch(/^3 +\S+ +action\.executed +release-bot +open_pr$/);
  });

  it("rejects an unknown event type and filters without --follow (exit 2)", async () => {
    const dir = tempDir();
    const { engine } = await seededStore(dir);
    await engine.close();
    const unknown = await aa(dir, "audit", "tail", "--follow", "--events", "action.nope");
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown event type "action.nope"/);
    const noFollow = await aa(dir, "audit", "tail", "--events", "action.denied");
    expect(noFollow.code).toBe(2);
    expect(noFollow.stderr).toMatch(/add --follow/);
  });
});

describe("aa agents", () => {
  it("contains an agent a running agent process then sees denied, lists it, and releases it; both audited", async () => {
    const dir = tempDir();
    const { engine, store } = await seededStore(dir);
    await engine.close();
    const child = spawn(process.execPath, [waitingAgent, store, "loop-bot"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.setEncoding("utf8");
    const ready = new Promise<void>((resolve) =>
      child.stdout.on("data", (chunk: string) => {
        output += chunk;
        if (output.includes("ready\n")) resolve();
      }),
    );
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    await ready;

    expect((await aa(dir, "agents", "contain", "loop-bot")).code).toBe(2);
    const contained = await aa(
      dir,
      "agents",
      "contain",
      "loop-bot",
      "--reason",
      "runaway loop",
      "--operator",
      "ops:carol",
    );
    expect(contained.code).toBe(0);
    expect(contained.stdout).toMatch(/contained loop-bot by ops:carol: runaway loop/);
    expect(await exited).toBe(0);
    const last = JSON.parse(output.split("\n").filter(Boolean).at(-1)!) as {
      result: { status: string; denialReason: string; message: string };
      state: { contained: boolean };
    };
    expect(last.result).toMatchObject({ status: "denied", denialReason: "CIRCUIT_OPEN" });
    expect(last.result.message).toMatch(/contained by operator ops:carol \(runaway loop\)/);
    expect(last.state.contained).toBe(true);

    const table = await aa(dir, "agents", "list");
    expect(table.stdout).toMatch(/loop-bot\s+contained\s+ops:carol/);
    const self = await aa(dir, "agents", "release", "loop-bot", "--reason", "me", "--operator", "loop-bot");
    expect(self.code).toBe(2);
    expect(self.stderr).toMatch(/may not release its own containment/);
    const released = await aa(
      dir,
      "--json",
      "agents",
      "release",
      "loop-bot",
      "--reason",
      "fixed",
      "--operator",
      "ops:dave",
    );
    expect(released.code).toBe(0);
    expect(JSON.parse(released.stdout)).toMatchObject({
      agentId: "loop-bot",
      contained: false,
      changedBy: "ops:dave",
    });
    const again = await aa(dir, "--json", "agents", "release", "loop-bot", "--reason", "again");
    expect(again.code).toBe(2);
    expect(JSON.parse(again.stdout)).toMatchObject({ error: { code: "AGENT_NOT_CONTAINED" } });
    const list = await aa(dir, "--json", "agents", "list");
    expect(JSON.parse(list.stdout)).toEqual([
      expect.objectContaining({
        agentId: "loop-bot",
        contained: false,
        changedBy: "ops:dave",
        reason: "fixed",
      }),
    ]);
    const audit = await openEngine({ store, policy: parsePolicy(STARTER_POLICY) });
    const kinds = (await audit.audit({ limit: 1000 })).items
      .filter((e) => e.kind.startsWith("agent."))
      .map((e) => [e.kind, e.agent, e.reason]);
    expect(kinds).toEqual([
      ["agent.contained", "loop-bot", "runaway loop"],
      ["agent.released", "loop-bot", "fixed"],
    ]);
    await audit.close();
    expect((await aa(dir, "audit", "verify")).code).toBe(0);
    expect((await aa(tempDir(), "agents", "list")).code).toBe(4);
  });
});

describe("aa posture", () => {
  it("prints the score and its four components, as JSON too, and exits 3 once the chain is broken", async () => {
    const dir = tempDir();
    const { store, engine } = await seededStore(dir);
    await engine.decide({ agent: { id: "release-bot" }, actionType: "drop_database" });
    await engine.close();
    const human = await aa(dir, "posture");
    expect(human.code).toBe(0);
    // 4 actions: 3 matched a named policy, 2 denied (one by conditions, one by the default deny).
    expect(human.stdout).toMatch(/posture 81\/100 over 4 recent records/);
    expect(human.stdout).toMatch(/policy coverage\s+18\.8\/25 {2}3 of 4 evaluated actions/);
    expect(human.stdout).toMatch(/anomaly rate\s+12\.5\/25 {2}2 of 4 actions denied/);
    expect(human.stdout).toMatch(/chain integrity\s+25\/25 {2}chain verified/);
    const json = await aa(dir, "--json", "posture");
    expect(JSON.parse(json.stdout)).toMatchObject({
      score: 81,
      components: { approvalHygiene: { score: 25 }, chainIntegrity: { score: 25 } },
      window: { records: 4 },
    });
    const raw = new DatabaseSync(store);
    raw.exec("UPDATE audit_events SET record = replace(record, '\"pr\":1', '\"pr\":2') WHERE seq = 1");
    raw.close();
    const broken = await aa(dir, "posture");
    expect(broken.code).toBe(3);
    expect(broken.stdout).toMatch(/chain integrity\s+0\/25 {2}chain broken at record/);
  });
});

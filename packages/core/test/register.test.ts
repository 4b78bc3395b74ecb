import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { openEngine } from "@aa/engine";
import { parsePolicy } from "@aa/policy";
import { describe, expect, it } from "vitest";
import { loadRegisterConfig } from "../src/index.js";

const fixture = new URL("./fixtures/register-app/", import.meta.url).pathname;

/** A fresh app root: the fixture's package.json and node_modules, plus what the test writes. */
function appRoot(files: Record<string, string> = {}): string {
  const root = mkdtempSync(join(tmpdir(), "aa-register-"));
  copyFileSync(join(fixture, "package.json"), join(root, "package.json"));
  symlinkSync(join(fixture, "node_modules"), join(root, "node_modules"));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(root, name), text);
  return root;
}

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** `node --import @aa/core/register <app>` in `cwd`, with only the given AA_* variables. */
function runApp(
  cwd: string,
  app: string,
  env: Record<string, string>,
  onStdout?: (chunk: string, child: ReturnType<typeof spawn>) => void,
): Promise<Run> {
  const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("AA_")));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "@aa/core/register", join(fixture, app)], {
      cwd,
      env: { ...baseEnv, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      onStdout?.(chunk, child);
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

function firstLine(run: Run): Record<string, unknown> {
  expect(run.stderr).toBe("");
  return JSON.parse(run.stdout.split("\n")[0] as string) as Record<string, unknown>;
}

function checkpointCount(store: string): number {
  const db = new DatabaseSync(store, { readOnly: true });
  try {
    return (db.prepare("SELECT count(*) AS n FROM checkpoints").get() as { n: number }).n;
  } finally {
    db.close();
  }
}

const policyText = readFileSync(join(fixture, "aa.policy.yaml"), "utf8");

describe("node --import @aa/core/register", () => {
  it("configures from env, runs the adapter's register entry first, governs the app's tool calls and checkpoints the audit on exit", async () => {
    const root = appRoot();
    const store = join(root, "audit.db");
    const run = await runApp(root, "app.mjs", {
      AA_AGENT_ID: "env-bot",
      AA_POLICY: join(fixture, "aa.policy.yaml"),
      AA_STORE: store,
    });
    expect(run.code).toBe(0);
    expect(firstLine(run)).toEqual({
      register: { adapterLoadedBefore: false },
      agent: { id: "env-bot" },
      adapters: [{ name: "fake", status: "installed", entryPoints: ["fake-framework Tool.prototype.run"] }],
      small: { value: "opened 3" },
      big: { error: "AssemblyDeniedError", reason: "CONDITIONS_DENIED", policy: "small-prs" },
      ran: 1,
    });
    // The final checkpoint was signed when the process ended, over both decisions.
    expect(checkpointCount(store)).toBe(1);
    const engine = await openEngine({
      store,
      policy: parsePolicy(policyText, { source: "test", format: "yaml" }),
    });
    try {
      const verified = await engine.verify();
      expect(verified).toMatchObject({ chainValid: true, checked: 2, firstBrokenAtRowId: null });
      const audit = await engine.audit({});
      expect(audit.items.map((e) => [e.agent, e.tool, e.status]).sort()).toEqual([
        ["env-bot", "pr.open", "denied"],
        ["env-bot", "pr.open", "executed"],
      ]);
    } finally {
      await engine.close();
    }
  });

  it("configures from aa.config.json, with paths relative to the file", async () => {
    const root = appRoot({
      "policy.yaml": policyText,
      "aa.config.json": JSON.stringify({
        agent: { id: "file-bot", name: "File Bot" },
        policy: "./policy.yaml",
        store: "./file-audit.db",
      }),
    });
    const run = await runApp(root, "app.mjs", {});
    expect(run.code).toBe(0);
    expect(firstLine(run)).toMatchObject({
      agent: { id: "file-bot", name: "File Bot" },
      small: { value: "opened 3" },
      big: { error: "AssemblyDeniedError", policy: "small-prs" },
    });
    expect(checkpointCount(join(root, "file-audit.db"))).toBe(1);
  });

  it("lets env variables override the file, field by field", async () => {
    const root = appRoot({
      "policy.yaml": policyText,
      "aa.config.json": JSON.stringify({
        agent: { id: "file-bot", name: "File Bot" },
        policy: "./policy.yaml",
        store: "./file-audit.db",
        enforcementMode: "enforce",
      }),
    });
    const run = await runApp(root, "app.mjs", { AA_AGENT_ID: "env-bot", AA_ENFORCEMENT_MODE: "observe" });
    expect(run.code).toBe(0);
    // observe: the call the policy denies runs, the would-be denial is recorded.
    expect(firstLine(run)).toMatchObject({
      agent: { id: "env-bot" },
      big: { value: "opened 300" },
      ran: 2,
    });
  });

  it("refuses to start the app on a bad env value: a clear message and exit code 78", async () => {
    const root = appRoot();
    const run = await runApp(root, "app.mjs", {
      AA_MODE: "turbo",
      AA_POLICY: join(fixture, "aa.policy.yaml"),
      AA_STORE: ":memory:",
    });
    expect(run.code).toBe(78);
    expect(run.stdout).toBe("");
    expect(run.stderr).toContain(
      'invalid mode "turbo": allowed values are "auto", "sdk-only", "proxy", "ebpf"',
    );
    expect(run.stderr).toContain("refusing to start the app ungoverned");
  });

  it("refuses to start on a malformed aa.config.json, naming the file", async () => {
    const root = appRoot({ "aa.config.json": '{ "agent": ' });
    const run = await runApp(root, "app.mjs", {});
    expect(run.code).toBe(78);
    expect(run.stdout).toBe("");
    expect(run.stderr).toContain(`cannot read ${join(root, "aa.config.json")}`);
  });

  it("runs the app ungoverned, with a warning, when AA_FAILURE_MODE=open", async () => {
    const root = appRoot();
    const run = await runApp(root, "app.mjs", { AA_MODE: "turbo", AA_FAILURE_MODE: "open" });
    expect(run.code).toBe(1); // the app's own getAssembly() then fails: nothing was initialised
    expect(run.stderr).toContain('not governing this process (failure mode "open"): invalid mode "turbo"');
    expect(run.stderr).toContain("Agent Assembly is not initialised in this process");
  });

  it("writes the final checkpoint on SIGTERM, then ends the process as the signal would", async () => {
    const root = appRoot();
    const store = join(root, "audit.db");
    const run = await runApp(
      root,
      "app.mjs",
      {
        AA_AGENT_ID: "bot",
        AA_POLICY: join(fixture, "aa.policy.yaml"),
        AA_STORE: store,
        APP_WAIT_FOR_SIGNAL: "1",
      },
      (chunk, child) => {
        if (chunk.includes("ready")) child.kill("SIGTERM");
      },
    );
    expect(run.signal).toBe("SIGTERM");
    expect(checkpointCount(store)).toBe(1);
  });

  it("governs a bundled copy of the framework once the app hands it to manuallyInstrument()", async () => {
    const root = appRoot();
    const run = await runApp(root, "app-bundled.mjs", {
      AA_AGENT_ID: "bot",
      AA_POLICY: join(fixture, "aa.policy.yaml"),
      AA_STORE: ":memory:",
    });
    expect(run.code).toBe(0);
    expect(firstLine(run)).toEqual({
      before: { value: "opened 300" },
      report: {
        specifier: "fake-framework",
        adapters: [{ name: "fake", entryPoints: ["fake-framework (manual) Tool.prototype.run"] }],
      },
      after: { error: "AssemblyDeniedError", reason: "CONDITIONS_DENIED", policy: "small-prs" },
      allowed: { value: "opened 3" },
    });
  });
});

describe("loadRegisterConfig", () => {
  it("finds aa.config.json from the working directory upwards; env wins; empty variables count as unset", () => {
    const root = mkdtempSync(join(tmpdir(), "aa-register-config-"));
    writeFileSync(
      join(root, "aa.config.json"),
      JSON.stringify({ agent: { id: "file-bot" }, policy: "./p.yaml", store: ":memory:", mode: "sdk-only" }),
    );
    const nested = join(root, "a", "b");
    mkdirSync(nested, { recursive: true });
    const config = loadRegisterConfig(nested, { AA_MODE: "auto", AA_STORE: "", AA_GATEWAY_URL: undefined });
    expect(config.file).toBe(join(root, "aa.config.json"));
    expect(config.options).toEqual({
      agent: { id: "file-bot" },
      policy: join(root, "p.yaml"),
      store: ":memory:",
      mode: "auto",
    });
    expect(config.sources).toMatchObject({ mode: "env AA_MODE", policy: join(root, "aa.config.json") });
  });

  it("rejects an unknown option in the file, naming it and the file", () => {
    const root = mkdtempSync(join(tmpdir(), "aa-register-config-"));
    writeFileSync(join(root, "aa.config.json"), JSON.stringify({ agentId: "x" }));
    expect(() => loadRegisterConfig(root, {})).toThrow(/unknown option "agentId" in .*aa\.config\.json/);
  });
});

describe("adapter register entries", () => {
  /** A host root whose only dependency is an adapter package declaring `register`. */
  function hostWithRegister(register: string, registerSource: string): string {
    const root = mkdtempSync(join(tmpdir(), "aa-register-entry-"));
    writeFileSync(
      join(root, "package.json"),
      JSON.stringify({ name: "host", dependencies: { "aa-adapter-x": "1.0.0" } }),
    );
    const dir = join(root, "node_modules", "aa-adapter-x");
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, "package.json"),
      JSON.stringify({
        name: "aa-adapter-x",
        type: "module",
        agentAssembly: { adapter: "./adapter.js", register },
      }),
    );
    writeFileSync(join(dir, "register.js"), registerSource);
    mkdirSync(join(root, "node_modules", "@aa"));
    symlinkSync(join(fixture, "node_modules", "@aa", "core"), join(root, "node_modules", "@aa", "core"));
    return root;
  }

  it("finds declared entries and refuses a path outside the package", async () => {
    const { findAdapterRegisterEntries } = await import("../src/adapter-register-hooks.js");
    const good = hostWithRegister("./register.js", "");
    expect(findAdapterRegisterEntries(good)).toEqual([
      { packageName: "aa-adapter-x", file: join(good, "node_modules", "aa-adapter-x", "register.js") },
    ]);
    const escaping = hostWithRegister("./../../evil.js", "");
    expect(() => findAdapterRegisterEntries(escaping)).toThrow(
      'package "aa-adapter-x" points its register entry outside the package: ./../../evil.js',
    );
  });

  it("stops the process before the app when a register entry throws", async () => {
    const root = hostWithRegister("./register.js", 'throw new Error("loader hooks unavailable");\n');
    const run = await runApp(root, "app.mjs", { AA_AGENT_ID: "bot", AA_STORE: ":memory:" });
    expect(run.code).toBe(78);
    expect(run.stdout).toBe("");
    expect(run.stderr).toContain('could not run the register entry of "aa-adapter-x"');
    expect(run.stderr).toContain("loader hooks unavailable");
  });
});

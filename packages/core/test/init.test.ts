import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  type AssemblyContext,
  AssemblyDeniedError,
  AssemblyError,
  ConfigurationError,
  type FrameworkAdapter,
  initAssembly,
  wrapMethod,
} from "../src/index.js";

const fixtureRoot = new URL("./fixtures/host-app/", import.meta.url).pathname;

const inlinePolicy = {
  version: 1,
  default: "deny",
  policies: [
    { name: "reads", action: "read_*", effect: "allow" },
    {
      name: "small-prs",
      action: "pr.open",
      effect: "allow",
      when: [{ field: "args.size", op: "lt", value: 50 }],
    },
  ],
};

/** Three classes standing in for three frameworks, each with one method an adapter patches. */
class FrameworkA {
  run(x: number) {
    return x + 1;
  }
}
class FrameworkB {
  run(x: number) {
    return x + 2;
  }
}
class FrameworkC {
  run(x: number) {
    return x + 3;
  }
}

function patchingAdapter(
  name: string,
  target: { prototype: { run(x: number): number } },
  opts: { failInstall?: boolean; failUninstall?: boolean } = {},
): FrameworkAdapter {
  let handle: { unwrap(): boolean } | undefined;
  return {
    name,
    supportedVersions: "*",
    priority: 60,
    isAvailable: () => true,
    registerHooks(interceptor) {
      handle = wrapMethod(
        target.prototype,
        "run",
        name,
        (original) =>
          function (this: unknown, x: number) {
            return interceptor.intercept({ framework: name, toolName: `read_${name}`, args: { x } }, () =>
              original.call(this, x),
            );
          },
      );
      if (opts.failInstall) throw new Error(`${name} exploded while installing`);
      return { entryPoints: [`${name}.prototype.run`] };
    },
    unregisterHooks() {
      handle?.unwrap();
      handle = undefined;
      if (opts.failUninstall) throw new Error(`${name} could not uninstall`);
    },
  };
}

let context: AssemblyContext | undefined;
afterEach(async () => {
  await context?.shutdown().catch(() => {});
  context = undefined;
});

describe("initAssembly option validation", () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ["mode", { mode: "turbo" }, /allowed values are "auto", "sdk-only", "proxy", "ebpf"/],
    ["mode", { mode: "ebpf" }, /not available in Node\.js/],
    ["proxyUrl", { mode: "proxy" }, /no proxy is configured: start one with `aa proxy`/],
    ["proxyUrl", { mode: "proxy", proxyUrl: "https://127.0.0.1:7392" }, /must be an http:\/\/ URL/],
    ["proxyUrl", { proxyUrl: "http://127.0.0.1:7392/v1" }, /without a path, query or fragment/],
    ["proxyUrl", { proxyUrl: "127.0.0.1:7392" }, /must be an http:\/\/ URL|not a URL/],
    ["proxyUrl", { proxyUrl: "http://agent@127.0.0.1:7392" }, /key goes in the password/],
    ["proxyUrl", { mode: "sdk-only", proxyUrl: "http://127.0.0.1:7392" }, /mode is "sdk-only"/],
    ["enforcementMode", { enforcementMode: "loud" }, /"enforce", "observe", "disabled"/],
    ["failureMode", { failureMode: "sometimes" }, /"closed", "open"/],
    ["agent", { agent: { id: "" } }, /non-empty id/],
    ["adapters", { adapters: "all" }, /"auto" or a list/],
    ["root", { root: "/definitely/not/here" }, /is not a directory/],
    ["polcy", { polcy: {} }, /unknown option "polcy"/],
    [
      "policy",
      { policy: { version: 1, default: "deny", policies: [{ name: "x", action: "a", effect: "maybe" }] } },
      /invalid policy/,
    ],
    ["gatewayUrl", { gatewayUrl: "not a url" }, /not a URL/],
    ["store", { store: "postgres://x" }, /PostgreSQL is for the shared gateway/],
  ];
  for (const [option, options, message] of cases) {
    it(`rejects a bad ${option} with a ConfigurationError before any side effect`, async () => {
      const root = mkdtempSync(join(tmpdir(), "aa-core-"));
      const error = await initAssembly({
        agent: { id: "bot" },
        root,
        policy: inlinePolicy,
        ...options,
      }).catch((e) => e);
      expect(error).toBeInstanceOf(ConfigurationError);
      expect(error.option).toBe(option);
      expect(error.code).toBe("CONFIGURATION_ERROR");
      expect(error.message).toMatch(message);
      expect(existsSync(join(root, ".aa"))).toBe(false);
    });
  }

  it("says where it looked when no policy file exists", async () => {
    const root = mkdtempSync(join(tmpdir(), "aa-core-"));
    const error = await initAssembly({ agent: { id: "bot" }, root, adapters: [] }).catch((e) => e);
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error.message).toMatch(/no policy found: looked for aa\.policy\.yaml/);
  });
});

describe("initAssembly lifecycle", () => {
  it("installs in priority order and removes everything on shutdown", async () => {
    const originals = [FrameworkA.prototype.run, FrameworkB.prototype.run];
    context = await initAssembly({
      agent: { id: "bot" },
      root: fixtureRoot,
      policy: inlinePolicy,
      store: ":memory:",
      adapters: [patchingAdapter("b", FrameworkB), patchingAdapter("a", FrameworkA)],
    });
    expect(context.adapters.map((a) => [a.name, a.status, a.entryPoints])).toEqual([
      ["a", "installed", ["a.prototype.run"]],
      ["b", "installed", ["b.prototype.run"]],
    ]);
    expect(await new FrameworkA().run(1)).toBe(2);
    const page = await context.audit();
    expect(page.items).toHaveLength(1);
    await context.shutdown();
    context = undefined;
    expect([FrameworkA.prototype.run, FrameworkB.prototype.run]).toEqual(originals);
    expect(FrameworkA.prototype.run).toBe(originals[0]);
  });

  it("rolls back every earlier patch when a third adapter throws during install", async () => {
    const originals = [FrameworkA.prototype.run, FrameworkB.prototype.run, FrameworkC.prototype.run];
    const error = await initAssembly({
      agent: { id: "bot" },
      root: fixtureRoot,
      policy: inlinePolicy,
      store: ":memory:",
      adapters: [
        patchingAdapter("a", FrameworkA),
        patchingAdapter("b", FrameworkB),
        patchingAdapter("c", FrameworkC, { failInstall: true }),
      ],
    }).catch((e) => e);
    expect(error).toBeInstanceOf(AssemblyError);
    expect(error.code).toBe("ADAPTER_INSTALL_FAILED");
    expect(error.message).toMatch(/adapter "c" failed to install its hooks: c exploded/);
    expect(FrameworkA.prototype.run).toBe(originals[0]);
    expect(FrameworkB.prototype.run).toBe(originals[1]);
    expect(FrameworkC.prototype.run).toBe(originals[2]);
    // The process is clean: a new init works.
    context = await initAssembly({
      agent: { id: "bot" },
      root: fixtureRoot,
      policy: inlinePolicy,
      store: ":memory:",
      adapters: [],
    });
  });

  it("returns the same context for a compatible second call and rejects an incompatible one", async () => {
    const options = {
      agent: { id: "bot" },
      root: fixtureRoot,
      policy: inlinePolicy,
      store: ":memory:",
      adapters: [] as const,
    };
    context = await initAssembly({ ...options, adapters: [] });
    expect(await initAssembly({ ...options, adapters: [] })).toBe(context);
    const error = await initAssembly({ ...options, adapters: [], agent: { id: "other" } }).catch((e) => e);
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error.message).toMatch(/already initialised/);
  });

  it("aggregates teardown errors into one AssemblyError and still removes every other hook", async () => {
    const originalA = FrameworkA.prototype.run;
    const ctx = await initAssembly({
      agent: { id: "bot" },
      root: fixtureRoot,
      policy: inlinePolicy,
      store: ":memory:",
      adapters: [patchingAdapter("a", FrameworkA), patchingAdapter("b", FrameworkB, { failUninstall: true })],
    });
    const error = await ctx.shutdown().catch((e) => e);
    expect(error).toBeInstanceOf(AssemblyError);
    expect(error.code).toBe("SHUTDOWN_FAILED");
    expect(error.details.failures).toEqual([{ step: "unregister b", message: "b could not uninstall" }]);
    expect(FrameworkA.prototype.run).toBe(originalA);
  });

  it("supports await using", async () => {
    const original = FrameworkA.prototype.run;
    {
      await using assembly = await initAssembly({
        agent: { id: "bot" },
        root: fixtureRoot,
        policy: inlinePolicy,
        store: ":memory:",
        adapters: [patchingAdapter("a", FrameworkA)],
      });
      expect(FrameworkA.prototype.run).not.toBe(original);
      expect(assembly.adapters[0]?.status).toBe("installed");
    }
    expect(FrameworkA.prototype.run).toBe(original);
  });
});

describe("discovery and the interceptor end to end", () => {
  it("discovers a third-party adapter from the host app's dependencies and governs its tool calls", async () => {
    context = await initAssembly({ agent: { id: "bot" }, root: fixtureRoot, store: ":memory:" });
    expect(context.adapters).toEqual([
      expect.objectContaining({
        name: "fake",
        priority: 50,
        status: "installed",
        entryPoints: ["fake-framework Tool.prototype.run"],
        frameworkVersion: "1.2.3",
      }),
    ]);
    // The host's own copy of the framework, as the app imports it.
    const { Tool } = (await import(`${fixtureRoot}node_modules/fake-framework/index.js`)) as {
      Tool: new (
        name: string,
        fn: (args: { size: number }) => unknown,
      ) => { run(args: unknown): Promise<unknown> };
    };
    let ran = 0;
    const openPr = new Tool("pr.open", () => ++ran);
    await expect(openPr.run({ size: 10 })).resolves.toBe(1);
    const denied = await openPr.run({ size: 120 }).catch((e) => e);
    expect(denied).toBeInstanceOf(AssemblyDeniedError);
    expect(denied.reason).toBe("CONDITIONS_DENIED");
    expect(denied.policy).toBe("small-prs");
    expect(denied.message).toContain("args.size lt 50 (actual: 120)");
    expect(ran).toBe(1);
    const audit = await context.audit();
    expect(audit.items).toHaveLength(2);
  });

  it("also discovers the adapters an adapter package depends on", async () => {
    const { discoverAdapters } = await import("../src/discovery.js");
    const root = new URL("./fixtures/host-with-bundle/", import.meta.url).pathname;
    const found = await discoverAdapters(root);
    expect(found.map((d) => [d.adapter.name, d.packageName])).toEqual([
      ["outer", "aa-adapter-outer"],
      ["inner", "aa-adapter-inner"],
    ]);
  });

  it("reports an adapter explicitly named but not installed", async () => {
    const error = await initAssembly({
      agent: { id: "bot" },
      root: fixtureRoot,
      store: ":memory:",
      adapters: ["langchain"],
    }).catch((e) => e);
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error.message).toMatch(/adapter "langchain" was not found .*found: fake/);
  });
});

describe("governance client", () => {
  it("execute, canI, gate and whoami decide through the embedded gate", async () => {
    context = await initAssembly({
      agent: { id: "bot", name: "Bot" },
      root: fixtureRoot,
      policy: inlinePolicy,
      store: ":memory:",
      adapters: [],
    });
    const allowed = await context.execute("pr.open", { args: { size: 3 } });
    expect(allowed.status).toBe("executed");
    expect(allowed.auditEventId).not.toBe("");
    const denied = await context.execute("pr.open", { args: { size: 300 } });
    expect(denied).toMatchObject({
      status: "denied",
      denialReason: "CONDITIONS_DENIED",
      policyName: "small-prs",
    });
    expect(denied.conditionsEvaluated[0]).toMatchObject({
      field: "args.size",
      operator: "lt",
      expected: 50,
      actual: 300,
      result: false,
    });
    const unknown = await context.execute("db.drop");
    expect(unknown).toMatchObject({ status: "denied", denialReason: "NO_MATCHING_POLICY" });
    expect(await context.canI("read_file")).toMatchObject({ allowed: true });
    await expect(context.gate("db.drop")).rejects.toBeInstanceOf(AssemblyDeniedError);
    expect(await context.whoami()).toMatchObject({
      agentId: "bot",
      name: "Bot",
      gate: "embedded",
      enforcementMode: "enforce",
    });
    expect((await context.policies()).map((p) => p.name)).toEqual(["reads", "small-prs"]);
    // canI is a dry run: three decisions recorded, plus the gate() denial.
    expect((await context.audit()).items).toHaveLength(4);
    expect(await context.verify()).toMatchObject({ chainValid: true, checked: 4 });
  });

  it("observe mode runs a call the policy would deny", async () => {
    context = await initAssembly({
      agent: { id: "bot" },
      root: fixtureRoot,
      policy: inlinePolicy,
      store: ":memory:",
      adapters: [patchingAdapter("a", FrameworkA)],
      enforcementMode: "observe",
    });
    const result = await context.execute("db.drop");
    expect(result.status).toBe("executed");
    expect(result.shadow).toMatchObject({ status: "denied", denialReason: "NO_MATCHING_POLICY" });
  });
});

describe("host resolution", () => {
  it("only resolves packages the host app has installed, whatever NODE_PATH says", async () => {
    const { createHostContext } = await import("../src/host.js");
    const host = createHostContext(fixtureRoot);
    expect(host.resolve("fake-framework")).toMatch(/host-app\/node_modules\/fake-framework\/index\.js$/);
    expect(host.resolve("node:fs")).toBe("node:fs");
    // A child whose NODE_PATH points at a folder holding a package the host app does not have.
    const elsewhere = mkdtempSync(join(tmpdir(), "aa-node-path-"));
    mkdirSync(join(elsewhere, "stray-lib"));
    writeFileSync(join(elsewhere, "stray-lib", "package.json"), '{"name":"stray-lib","main":"index.js"}');
    writeFileSync(join(elsewhere, "stray-lib", "index.js"), "module.exports = 1;");
    const script = `
      const { createHostContext } = await import(${JSON.stringify(new URL("../dist/host.js", import.meta.url).href)});
      const host = createHostContext(${JSON.stringify(fixtureRoot)});
      console.log(JSON.stringify({ plain: host.require.resolve("stray-lib"), ours: host.resolve("stray-lib") ?? null }));`;
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
      env: { ...process.env, NODE_PATH: elsewhere },
      encoding: "utf8",
    });
    const { plain, ours } = JSON.parse(out) as { plain: string; ours: string | null };
    expect(plain).toContain("stray-lib");
    expect(ours).toBeNull();
  });
});

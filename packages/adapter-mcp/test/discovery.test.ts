/**
 * Discovery: a host app that depends on @aa/adapter-mcp gets it from `initAssembly()` with the default
 * `adapters: "auto"` (package.json field `agentAssembly`), at the fixed rank 99.
 */
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { discoverAdapters, initAssembly } from "@aa/core";
import { afterEach, expect, it } from "vitest";
import { TEST_POLICY } from "./helpers.js";

const PACKAGE_DIR = new URL("..", import.meta.url).pathname;
let host: string | undefined;
afterEach(() => {
  if (host) rmSync(host, { recursive: true, force: true });
  host = undefined;
});

/**
 * A host app in a temp dir: its package.json depends on the adapter (and, with `withSdk`, on the SDK),
 * linked as a package manager would.
 */
function hostApp(withSdk: boolean): string {
  host = mkdtempSync(join(tmpdir(), "aa-mcp-host-"));
  writeFileSync(
    join(host, "package.json"),
    JSON.stringify({ name: "host", private: true, dependencies: { "@aa/adapter-mcp": "*" } }),
  );
  mkdirSync(join(host, "node_modules", "@aa"), { recursive: true });
  symlinkSync(PACKAGE_DIR, join(host, "node_modules", "@aa", "adapter-mcp"), "dir");
  if (withSdk) {
    mkdirSync(join(host, "node_modules", "@modelcontextprotocol"), { recursive: true });
    const sdk = realpathSync(join(PACKAGE_DIR, "node_modules", "@modelcontextprotocol", "sdk"));
    symlinkSync(sdk, join(host, "node_modules", "@modelcontextprotocol", "sdk"), "dir");
  }
  return host;
}

it("is discovered from the host's dependencies and installs as the rank-99 backstop", async () => {
  const root = hostApp(true);
  const found = await discoverAdapters(root);
  expect(found.map((entry) => [entry.adapter.name, entry.packageName])).toEqual([["mcp", "@aa/adapter-mcp"]]);
  const assembly = await initAssembly({
    mode: "sdk-only",
    agent: { id: "auto-bot" },
    policy: TEST_POLICY,
    store: ":memory:",
    root,
  });
  try {
    expect(assembly.adapters).toEqual([
      expect.objectContaining({
        name: "mcp",
        priority: 99,
        status: "installed",
        entryPoints: expect.any(Array),
      }),
    ]);
    expect(assembly.adapters[0]!.entryPoints).toHaveLength(8);
  } finally {
    await assembly.shutdown();
  }
});

it("is reported unavailable (nothing patched) when the host has no @modelcontextprotocol/sdk", async () => {
  const root = hostApp(false);
  const assembly = await initAssembly({
    mode: "sdk-only",
    agent: { id: "auto-bot" },
    policy: TEST_POLICY,
    store: ":memory:",
    root,
  });
  try {
    expect(assembly.adapters).toEqual([
      expect.objectContaining({ name: "mcp", status: "unavailable", entryPoints: [] }),
    ]);
  } finally {
    await assembly.shutdown();
  }
});

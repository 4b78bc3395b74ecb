/** The `bundled` option and `instrumentModule` in-process, against the installed MCP SDK. */
import { createRequire } from "node:module";
import {
  type AdapterContext,
  type AssemblyContext,
  ConfigurationError,
  initAssembly,
  isWrapped,
  manuallyInstrument,
} from "@aa/core";
import * as clientModule from "@modelcontextprotocol/sdk/client/index.js";
import * as serverModule from "@modelcontextprotocol/sdk/server/index.js";
import { afterEach, describe, expect, it } from "vitest";
import { createMcpAdapter } from "../src/index.js";
import { TEST_POLICY } from "./helpers.js";

const ROOT = new URL("..", import.meta.url).pathname;
const nothingResolves: AdapterContext = {
  root: "/nowhere",
  resolve: () => undefined,
  require: createRequire("/nowhere/"),
  import: () => Promise.reject(new Error("not installed")),
};
const { Client } = clientModule;
const { Server } = serverModule;
const METHODS = [
  [Client.prototype, "callTool"],
  [Client.prototype, "request"],
  [Server.prototype, "setRequestHandler"],
  [Server.prototype, "_onrequest"],
] as const;
const current = () =>
  METHODS.map(([prototype, key]) => (prototype as unknown as Record<string, unknown>)[key]);

let context: AssemblyContext | undefined;
afterEach(async () => {
  await context?.shutdown();
  context = undefined;
});

function govern(adapter = createMcpAdapter({ bundled: true }), root = "/") {
  return initAssembly({
    mode: "sdk-only",
    agent: { id: "bot" },
    policy: TEST_POLICY,
    store: ":memory:",
    adapters: [adapter],
    root,
  });
}

describe("createMcpAdapter({ bundled })", () => {
  it("is available without the SDK in the host only when bundled", async () => {
    expect(await createMcpAdapter().isAvailable(nothingResolves)).toBe(false);
    expect(await createMcpAdapter({ bundled: true }).isAvailable(nothingResolves)).toBe(true);
  });

  it("rejects a non-boolean bundled option with a ConfigurationError", () => {
    expect(() => createMcpAdapter({ bundled: 1 as unknown as boolean })).toThrow(ConfigurationError);
  });

  it("with the SDK installed, bundled: true patches it as usual and manual hand-over adds nothing twice", async () => {
    const before = current();
    context = await govern(createMcpAdapter({ bundled: true }), ROOT);
    expect(context.adapters[0]?.entryPoints).toContain(
      "@modelcontextprotocol/sdk/client Client.prototype.callTool (esm)",
    );
    const report = await manuallyInstrument(clientModule, "@modelcontextprotocol/sdk/client/index.js");
    expect(report.adapters).toEqual([{ name: "mcp", entryPoints: [] }]);
    await context.shutdown();
    context = undefined;
    expect(current()).toEqual(before);
  });
});

describe("instrumentModule", () => {
  it("answers undefined for a namespace that is not the MCP SDK's, so manuallyInstrument fails closed", async () => {
    const adapter = createMcpAdapter({ bundled: true });
    context = await govern(adapter);
    class Client {
      connect() {}
    }
    expect(await adapter.instrumentModule?.("other-sdk", { Client })).toBeUndefined();
    await expect(manuallyInstrument({ Client }, "other-sdk")).rejects.toBeInstanceOf(ConfigurationError);
  });

  it("wraps handed-over Client and Server copies; shutdown unwraps them; 200 cycles stack nothing", async () => {
    const before = current();
    for (let cycle = 0; cycle < 200; cycle += 1) {
      const adapter = createMcpAdapter({ bundled: true });
      context = await govern(adapter);
      expect(context.adapters[0]).toMatchObject({ status: "installed", entryPoints: [] });
      const fromClient = await adapter.instrumentModule?.(undefined, clientModule);
      const fromServer = await adapter.instrumentModule?.(undefined, serverModule);
      if (cycle === 0) {
        expect(fromClient?.entryPoints).toHaveLength(2);
        expect(fromServer?.entryPoints).toHaveLength(2);
      }
      for (const method of current()) expect(isWrapped(method, "mcp")).toBe(true);
      await context.shutdown();
      context = undefined;
      expect(current()).toEqual(before);
    }
  });
});

/** The `bundled` option and `instrumentModule` in-process, against the installed @langchain/core. */
import { createRequire } from "node:module";
import {
  type AdapterContext,
  type AssemblyContext,
  ConfigurationError,
  initAssembly,
  isWrapped,
  manuallyInstrument,
} from "@aa/core";
import * as messages from "@langchain/core/messages";
import * as runnables from "@langchain/core/runnables";
import * as tools from "@langchain/core/tools";
import { afterEach, describe, expect, it } from "vitest";
import { createLangChainAdapter } from "../src/index.js";
import { TEST_POLICY } from "./helpers.js";

const ROOT = new URL("..", import.meta.url).pathname;
const nothingResolves: AdapterContext = {
  root: "/nowhere",
  resolve: () => undefined,
  require: createRequire("/nowhere/"),
  import: () => Promise.reject(new Error("not installed")),
};

let context: AssemblyContext | undefined;
afterEach(async () => {
  await context?.shutdown();
  context = undefined;
});

describe("createLangChainAdapter({ bundled })", () => {
  it("is available without @langchain/core in the host only when bundled", async () => {
    expect(await createLangChainAdapter().isAvailable(nothingResolves)).toBe(false);
    expect(await createLangChainAdapter({ bundled: true }).isAvailable(nothingResolves)).toBe(true);
  });

  it("rejects a non-boolean bundled option with a ConfigurationError", () => {
    expect(() => createLangChainAdapter({ bundled: "yes" as unknown as boolean })).toThrow(
      ConfigurationError,
    );
  });

  it("with @langchain/core installed, bundled: true patches it as usual and manual hand-over adds nothing twice", async () => {
    const original = tools.StructuredTool.prototype.call;
    context = await initAssembly({
      mode: "sdk-only",
      agent: { id: "bot" },
      policy: TEST_POLICY,
      store: ":memory:",
      adapters: [createLangChainAdapter({ bundled: true })],
      root: ROOT,
    });
    expect(context.adapters[0]?.entryPoints).toContain(
      "@langchain/core/tools StructuredTool.prototype.call (esm)",
    );
    const report = await manuallyInstrument(tools, "@langchain/core/tools");
    expect(report.adapters).toEqual([{ name: "langchain", entryPoints: [] }]);
    await context.shutdown();
    context = undefined;
    expect(tools.StructuredTool.prototype.call).toBe(original);
  });
});

describe("instrumentModule", () => {
  it("answers undefined for a namespace that is not LangChain's, so manuallyInstrument fails closed", async () => {
    const adapter = createLangChainAdapter({ bundled: true });
    context = await initAssembly({
      mode: "sdk-only",
      agent: { id: "bot" },
      policy: TEST_POLICY,
      store: ":memory:",
      adapters: [adapter],
      root: "/",
    });
    expect(await adapter.instrumentModule?.("left-pad", { leftPad: () => "" })).toBeUndefined();
    await expect(manuallyInstrument({ leftPad: () => "" }, "left-pad")).rejects.toBeInstanceOf(
      ConfigurationError,
    );
  });

  it("wraps handed-over StructuredTool and RunnableToolLike copies; shutdown unwraps them; 200 cycles stack nothing", async () => {
    const callBefore = tools.StructuredTool.prototype.call;
    const invokeBefore = runnables.RunnableToolLike.prototype.invoke;
    for (let cycle = 0; cycle < 200; cycle += 1) {
      const adapter = createLangChainAdapter({ bundled: true });
      context = await initAssembly({
        mode: "sdk-only",
        agent: { id: "bot" },
        policy: TEST_POLICY,
        store: ":memory:",
        adapters: [adapter],
        root: "/",
      });
      expect(context.adapters[0]).toMatchObject({ status: "installed", entryPoints: [] });
      const fromTools = await adapter.instrumentModule?.("@langchain/core/tools", tools);
      const fromRunnables = await adapter.instrumentModule?.("@langchain/core/runnables", runnables);
      const fromMessages = await adapter.instrumentModule?.("@langchain/core/messages", messages);
      if (cycle === 0) {
        expect(fromTools?.entryPoints).toEqual([
          "@langchain/core/tools StructuredTool.prototype.call (manual)",
        ]);
        expect(fromRunnables?.entryPoints).toEqual([
          "@langchain/core/runnables RunnableToolLike.prototype.invoke (manual)",
        ]);
        expect(fromMessages).toMatchObject({
          entryPoints: [],
          detail: expect.stringContaining("ToolMessage"),
        });
      }
      expect(isWrapped(tools.StructuredTool.prototype.call, "langchain")).toBe(true);
      expect(isWrapped(runnables.RunnableToolLike.prototype.invoke, "langchain")).toBe(true);
      await context.shutdown();
      context = undefined;
      expect(tools.StructuredTool.prototype.call).toBe(callBefore);
      expect(runnables.RunnableToolLike.prototype.invoke).toBe(invokeBefore);
    }
  });
});

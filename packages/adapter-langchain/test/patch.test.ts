/**
 * The patch itself, with a recording interceptor (the `Interceptor` contract): which entry points are
 * wrapped, what the gate is told, exact restore, idempotence, and fail-closed translation.
 */
import { createRequire } from "node:module";
import { AssemblyDeniedError, createHostContext, type Interceptor, isWrapped, type ToolCall } from "@aa/core";
import { RunnableLambda, RunnableToolLike } from "@langchain/core/runnables";
import { DynamicStructuredTool, DynamicTool, StructuredTool, tool } from "@langchain/core/tools";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { createLangChainAdapter, langchainAdapter } from "../src/index.js";

const host = createHostContext(new URL("..", import.meta.url).pathname);
const cjs = createRequire(import.meta.url)("@langchain/core/tools") as typeof import("@langchain/core/tools");
const cjsRunnables = createRequire(import.meta.url)(
  "@langchain/core/runnables",
) as typeof import("@langchain/core/runnables");

const ORIGINALS = {
  esmCall: StructuredTool.prototype.call,
  cjsCall: cjs.StructuredTool.prototype.call,
  esmToolLikeOwnInvoke: Object.getOwnPropertyDescriptor(RunnableToolLike.prototype, "invoke"),
};

/** Records every call and answers per tool name: allow (run) or deny (throw the typed error). */
class RecordingInterceptor implements Interceptor {
  readonly calls: ToolCall[] = [];
  constructor(private readonly deny: ReadonlySet<string> = new Set()) {}
  async intercept<T>(call: ToolCall, invoke: () => T | Promise<T>): Promise<T> {
    this.calls.push(call);
    if (this.deny.has(call.toolName)) {
      throw new AssemblyDeniedError({
        reason: "CONDITIONS_DENIED",
        policy: "test-policy",
        message: `Agent Assembly denied tool "${call.toolName}" (CONDITIONS_DENIED) by policy "test-policy". Failed conditions: args.amount lt 100 (actual: 500).`,
      });
    }
    return invoke();
  }
}

function adder(ran: number[]) {
  return tool(
    async ({ a, b }: { a: number; b: number }) => {
      ran.push(a + b);
      return String(a + b);
    },
    { name: "add", description: "adds", schema: z.object({ a: z.number(), b: z.number() }) },
  );
}

afterEach(async () => {
  await langchainAdapter.unregisterHooks();
});

describe("LangChain patch", () => {
  it("wraps StructuredTool.prototype.call in the ESM and the CJS build, and RunnableToolLike.invoke", async () => {
    const report = await langchainAdapter.registerHooks(new RecordingInterceptor(), host);
    expect(report.entryPoints).toEqual([
      "@langchain/core/tools StructuredTool.prototype.call (esm)",
      "@langchain/core/tools StructuredTool.prototype.call (cjs)",
      "@langchain/core/runnables RunnableToolLike.prototype.invoke (esm)",
      "@langchain/core/runnables RunnableToolLike.prototype.invoke (cjs)",
    ]);
    expect(cjs.StructuredTool).not.toBe(StructuredTool);
    expect(isWrapped(StructuredTool.prototype.call, "langchain")).toBe(true);
    expect(isWrapped(cjs.StructuredTool.prototype.call, "langchain")).toBe(true);
    expect(isWrapped(RunnableToolLike.prototype.invoke, "langchain")).toBe(true);
    expect(isWrapped(cjsRunnables.RunnableToolLike.prototype.invoke, "langchain")).toBe(true);
  });

  it("tells the gate the tool name, the raw args, the tool-call id, run name, tags and plain-JSON metadata", async () => {
    const interceptor = new RecordingInterceptor();
    await langchainAdapter.registerHooks(interceptor, host);
    const ran: number[] = [];
    const add = adder(ran);
    const message = await add.invoke(
      { name: "add", args: { a: 2, b: 3 }, id: "call-1", type: "tool_call" },
      {
        tags: ["billing"],
        metadata: { team: "payments", nested: { ok: [1, 2] }, fn: () => 1, when: new Date() },
      },
    );
    expect(ran).toEqual([5]);
    expect((message as { content: string }).content).toBe("5");
    expect(interceptor.calls).toHaveLength(1);
    const call = interceptor.calls[0]!;
    expect(call).toMatchObject({
      framework: "langchain",
      toolName: "add",
      args: { a: 2, b: 3 },
      toolCallId: "call-1",
    });
    // LangChain's own tool metadata (its version stamp) comes first, then the run's plain-JSON fields.
    expect(call.metadata).toEqual({
      versions: { "@langchain/core": expect.any(String) },
      team: "payments",
      nested: { ok: [1, 2] },
      runName: "add",
      tags: ["billing"],
    });
    expect((call.native as { tags?: unknown }).tags).toEqual(["billing"]);
  });

  it("merges run and tool tags once each (strings only) and keeps only lossless JSON metadata", async () => {
    const interceptor = new RecordingInterceptor();
    await langchainAdapter.registerHooks(interceptor, host);
    const tagged = new DynamicStructuredTool({
      name: "tagged",
      description: "t",
      schema: z.object({}),
      tags: ["tool-tag", "billing"],
      metadata: { owner: "ops", nan: Number.NaN, list: [1, "two", null], mixed: [1, () => 1] },
      func: async () => "ok",
    });
    await tagged.invoke(
      {},
      { tags: ["billing", 3 as never, "run", "billing"], metadata: { inf: Number.POSITIVE_INFINITY, n: 1 } },
    );
    const call = interceptor.calls[0]!;
    // Explicit tool metadata replaces LangChain's version stamp.
    expect(call.metadata).toEqual({
      owner: "ops",
      list: [1, "two", null],
      n: 1,
      runName: "tagged",
      tags: ["billing", "run", "tool-tag"],
    });
    // A call without tags records none.
    interceptor.calls.length = 0;
    await adder([]).invoke({ a: 1, b: 1 });
    expect(interceptor.calls[0]!.metadata).not.toHaveProperty("tags");
  });

  it("passes the raw input (before schema validation) and still lets the schema reject it after an allow", async () => {
    const interceptor = new RecordingInterceptor();
    await langchainAdapter.registerHooks(interceptor, host);
    const ran: number[] = [];
    await expect(adder(ran).invoke({ a: "two", b: 3 } as never)).rejects.toThrow(
      /did not match expected schema/,
    );
    expect(interceptor.calls[0]!.args).toEqual({ a: "two", b: 3 });
    expect(ran).toEqual([]);
  });

  it("governs every kind of tool: tool(), DynamicStructuredTool, DynamicTool, subclasses, legacy .call()", async () => {
    const interceptor = new RecordingInterceptor();
    await langchainAdapter.registerHooks(interceptor, host);
    class Upper extends StructuredTool {
      name = "upper";
      description = "upper-cases";
      schema = z.object({ text: z.string() });
      async _call({ text }: { text: string }) {
        return text.toUpperCase();
      }
    }
    const dynamic = new DynamicStructuredTool({
      name: "dyn",
      description: "d",
      schema: z.object({ n: z.number() }),
      func: async ({ n }) => `n=${n}`,
    });
    const stringTool = new DynamicTool({
      name: "echo",
      description: "e",
      func: async (input) => `echo ${input}`,
    });
    expect(await new Upper().invoke({ text: "hi" })).toBe("HI");
    expect(await dynamic.invoke({ n: 1 })).toBe("n=1");
    expect(await stringTool.invoke("x")).toBe("echo x");
    expect(await dynamic.call({ n: 2 })).toBe("n=2");
    expect(interceptor.calls.map((call) => [call.toolName, call.args])).toEqual([
      ["upper", { text: "hi" }],
      ["dyn", { n: 1 }],
      ["echo", { input: "x" }],
      ["dyn", { n: 2 }],
    ]);
  });

  it("governs runnable.asTool() tools through RunnableToolLike.invoke", async () => {
    const interceptor = new RecordingInterceptor(new Set(["double"]));
    await langchainAdapter.registerHooks(interceptor, host);
    const ran: number[] = [];
    const double = RunnableLambda.from(async ({ n }: { n: number }) => {
      ran.push(n);
      return n * 2;
    }).asTool({ name: "double", description: "doubles", schema: z.object({ n: z.number() }) });
    await expect(double.invoke({ n: 4 })).rejects.toBeInstanceOf(AssemblyDeniedError);
    const answer = await double.invoke({ name: "double", args: { n: 4 }, id: "c-9", type: "tool_call" });
    expect(answer).toMatchObject({ status: "error", tool_call_id: "c-9" });
    expect(ran).toEqual([]);
    expect(interceptor.calls.map((call) => [call.toolName, call.args, call.toolCallId])).toEqual([
      ["double", { n: 4 }, undefined],
      ["double", { n: 4 }, "c-9"],
    ]);
  });

  it("answers a denied agent call with an error ToolMessage and throws the typed error for direct calls", async () => {
    await langchainAdapter.registerHooks(new RecordingInterceptor(new Set(["add"])), host);
    const ran: number[] = [];
    const add = adder(ran);
    const answer = (await add.invoke({
      name: "add",
      args: { a: 1, b: 1 },
      id: "c-1",
      type: "tool_call",
    })) as {
      status: string;
      content: string;
      tool_call_id: string;
      artifact: { agentAssembly: { reason: string; policy: string } };
      getType(): string;
    };
    expect(answer.getType()).toBe("tool");
    expect(answer.status).toBe("error");
    expect(answer.tool_call_id).toBe("c-1");
    expect(answer.content).toContain('policy "test-policy"');
    expect(answer.content).toContain("args.amount lt 100 (actual: 500)");
    expect(answer.artifact.agentAssembly).toMatchObject({
      reason: "CONDITIONS_DENIED",
      policy: "test-policy",
    });
    await expect(add.invoke({ a: 1, b: 1 })).rejects.toMatchObject({
      name: "AssemblyDeniedError",
      reason: "CONDITIONS_DENIED",
      policy: "test-policy",
    });
    expect(ran).toEqual([]);
  });

  it('throws for agent calls too with denials: "throw"', async () => {
    const adapter = createLangChainAdapter({ denials: "throw" });
    await adapter.registerHooks(new RecordingInterceptor(new Set(["add"])), host);
    try {
      await expect(
        adder([]).invoke({ name: "add", args: { a: 1, b: 1 }, id: "c-1", type: "tool_call" }),
      ).rejects.toBeInstanceOf(AssemblyDeniedError);
    } finally {
      await adapter.unregisterHooks();
    }
  });

  it("fails closed with a clear error when a call cannot be translated (the tool does not run)", async () => {
    await langchainAdapter.registerHooks(new RecordingInterceptor(), host);
    const ran: number[] = [];
    const nameless = adder(ran);
    (nameless as { name: unknown }).name = undefined;
    await expect(nameless.invoke({ a: 1, b: 2 })).rejects.toMatchObject({
      code: "ADAPTER_TRANSLATION_FAILED",
      message: expect.stringContaining("has no name"),
    });
    expect(ran).toEqual([]);
  });

  it("lets the tool's own errors through unchanged", async () => {
    await langchainAdapter.registerHooks(new RecordingInterceptor(), host);
    const failing = tool(
      async () => {
        throw new RangeError("boom");
      },
      { name: "failing", description: "f", schema: z.object({}) },
    );
    await expect(failing.invoke({})).rejects.toThrow(RangeError);
  });

  it("restores the original methods exactly, and 1000 install/uninstall cycles stack and leak nothing", async () => {
    for (let i = 0; i < 1000; i++) {
      const interceptor = new RecordingInterceptor();
      await langchainAdapter.registerHooks(interceptor, host);
      await langchainAdapter.registerHooks(interceptor, host); // idempotent: no second wrapper
      await langchainAdapter.unregisterHooks();
    }
    expect(StructuredTool.prototype.call).toBe(ORIGINALS.esmCall);
    expect(cjs.StructuredTool.prototype.call).toBe(ORIGINALS.cjsCall);
    expect(Object.getOwnPropertyDescriptor(RunnableToolLike.prototype, "invoke")).toEqual(
      ORIGINALS.esmToolLikeOwnInvoke,
    );
    expect(Object.hasOwn(RunnableToolLike.prototype, "invoke")).toBe(false);

    // One more install: exactly one interception per call (nothing stacked by the cycles above).
    const interceptor = new RecordingInterceptor();
    await langchainAdapter.registerHooks(interceptor, host);
    await adder([]).invoke({ a: 1, b: 2 });
    expect(interceptor.calls).toHaveLength(1);
  }, 120_000); // 2000 installs resolve modules from the host each time: slow on a loaded machine

  it("leaves a pass-through when another library wrapped on top, and governs nothing after uninstall", async () => {
    const interceptor = new RecordingInterceptor(new Set(["add"]));
    await langchainAdapter.registerHooks(interceptor, host);
    const ours = StructuredTool.prototype.call;
    const seenByOther: unknown[] = [];
    StructuredTool.prototype.call = function (this: StructuredTool, ...args: Parameters<typeof ours>) {
      seenByOther.push(args[0]);
      return ours.apply(this, args);
    } as typeof ours;
    const theirs = StructuredTool.prototype.call;
    try {
      await langchainAdapter.unregisterHooks();
      expect(StructuredTool.prototype.call).toBe(theirs);
      const ran: number[] = [];
      await adder(ran).invoke({ a: 20, b: 1 });
      expect(ran).toEqual([21]);
      expect(seenByOther).toEqual([{ a: 20, b: 1 }]);
    } finally {
      StructuredTool.prototype.call = ORIGINALS.esmCall;
    }
  });

  it("is available only when the host can resolve @langchain/core, and validates its options", () => {
    expect(langchainAdapter.isAvailable(host)).toBe(true);
    // A host that cannot resolve the framework (the pnpm Node shim's NODE_PATH makes every real
    // directory resolve the workspace's copy, so the host's resolver is stubbed here).
    const emptyHost = { ...host, resolve: () => undefined };
    expect(langchainAdapter.isAvailable(emptyHost)).toBe(false);
    expect(() => createLangChainAdapter({ denials: "ignore" as never })).toThrow(/"denials" must be/);
    expect(langchainAdapter).toMatchObject({
      name: "langchain",
      priority: 0,
      targetPackage: "@langchain/core",
    });
  });
});

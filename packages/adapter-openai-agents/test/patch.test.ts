/**
 * The patch itself, with a recording interceptor (the `Interceptor` contract): which entry points are
 * wrapped, what the gate is told, MCP-derived tools, exact restore, idempotence, fail-closed
 * translation.
 */
import { createRequire } from "node:module";
import {
  AssemblyDeniedError,
  createHostContext,
  type InterceptOptions,
  type Interceptor,
  isWrapped,
  type ToolCall,
} from "@aa/core";
import { Agent, type MCPServer, run, setTracingDisabled, tool } from "@openai/agents";
import { assistantMessage, functionCall, ScriptedModel } from "@openai/agents-core/testing";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { createOpenAIAgentsAdapter, GUARDRAIL_NAME, openAIAgentsAdapter } from "../src/index.js";
import { toolResultsSentOn } from "./helpers.js";

const host = createHostContext(new URL("..", import.meta.url).pathname);
const cjs = createRequire(import.meta.url)("@openai/agents-core") as typeof import("@openai/agents-core");
const ORIGINALS = {
  esm: Agent.prototype.getAllTools,
  cjs: cjs.Agent.prototype.getAllTools,
  esmOwn: Object.getOwnPropertyDescriptor(Agent.prototype, "getAllTools"),
};

/** Records every call and answers per tool name: allow (run `invoke`) or deny (throw the typed error). */
class RecordingInterceptor implements Interceptor {
  readonly calls: { call: ToolCall; eventId?: string }[] = [];
  constructor(private readonly deny: ReadonlySet<string> = new Set()) {}
  async intercept<T>(call: ToolCall, invoke: () => T | Promise<T>, options?: InterceptOptions): Promise<T> {
    this.calls.push({ call, eventId: options?.eventId });
    if (this.deny.has(call.toolName)) {
      throw new AssemblyDeniedError({
        reason: "CONDITIONS_DENIED",
        policy: "test-policy",
        message: `Agent Assembly denied tool "${call.toolName}" (CONDITIONS_DENIED) by policy "test-policy". Failed conditions: args.n lt 10 (actual: 50).`,
      });
    }
    return invoke();
  }
}

function counter(ran: number[], name = "count") {
  return tool({
    name,
    description: "counts",
    parameters: z.object({ n: z.number() }),
    execute: async ({ n }) => {
      ran.push(n);
      return `counted ${n}`;
    },
  });
}

/** A minimal in-process MCP server: the SDK turns its tools into function tools. */
function fakeMcpServer(ran: string[]): MCPServer {
  return {
    name: "files",
    cacheToolsList: false,
    async connect() {},
    async close() {},
    async invalidateToolsCache() {},
    async listTools() {
      return [
        {
          name: "delete_file",
          description: "deletes a file",
          inputSchema: {
            type: "object",
            properties: { path: { type: "string" } },
            required: ["path"],
            additionalProperties: false,
          },
        },
      ];
    },
    async callTool(toolName, args) {
      ran.push(`${toolName} ${JSON.stringify(args)}`);
      return [{ type: "text", text: "deleted" }];
    },
  } as MCPServer;
}

beforeAll(() => setTracingDisabled(true));
afterEach(async () => {
  await openAIAgentsAdapter.unregisterHooks();
});

describe("OpenAI Agents SDK patch", () => {
  it("wraps getAllTools on the ESM and the CJS Agent (the class @openai/agents re-exports)", async () => {
    const report = await openAIAgentsAdapter.registerHooks(new RecordingInterceptor(), host);
    expect(report.entryPoints).toEqual([
      "@openai/agents-core Agent.prototype.getAllTools (esm)",
      "@openai/agents-core Agent.prototype.getAllTools (cjs)",
    ]);
    const core = await import("@openai/agents-core");
    expect(core.Agent).toBe(Agent);
    expect(cjs.Agent).not.toBe(Agent);
    expect(isWrapped(Agent.prototype.getAllTools, "openai-agents")).toBe(true);
    expect(isWrapped(cjs.Agent.prototype.getAllTools, "openai-agents")).toBe(true);
  });

  it("tells the gate the tool name, the arguments and the model's call id, once per call", async () => {
    const interceptor = new RecordingInterceptor();
    await openAIAgentsAdapter.registerHooks(interceptor, host);
    const ran: number[] = [];
    const model = new ScriptedModel([
      [functionCall("count", { n: 3 }, { callId: "call-1" })],
      [assistantMessage("done")],
    ]);
    await run(new Agent({ name: "a", model, tools: [counter(ran)] }), "go");
    expect(ran).toEqual([3]);
    // needsApproval asks first; the guardrail replays the same request under the same key.
    expect(interceptor.calls).toHaveLength(2);
    for (const { call, eventId } of interceptor.calls) {
      expect(call).toEqual({
        framework: "openai-agents",
        toolName: "count",
        args: { n: 3 },
        toolCallId: "call-1",
      });
      expect(eventId).toBe("openai-agents:count:call-1");
    }
    expect(interceptor.calls[1]!.call).toBe(interceptor.calls[0]!.call);
  });

  it("governs MCP-derived tools (function tools returned by getAllTools)", async () => {
    await openAIAgentsAdapter.registerHooks(new RecordingInterceptor(new Set(["delete_file"])), host);
    const ran: string[] = [];
    const model = new ScriptedModel([
      [functionCall("delete_file", { path: "/etc/passwd" }, { callId: "call-rm" })],
      [assistantMessage("ok")],
    ]);
    await run(new Agent({ name: "a", model, mcpServers: [fakeMcpServer(ran)] }), "clean up");
    expect(ran).toEqual([]);
    expect(toolResultsSentOn(model, 1)[0]!.output).toContain("CONDITIONS_DENIED");
  });

  it("governs each tool once however often getAllTools runs, and composes with the tool's guardrails", async () => {
    await openAIAgentsAdapter.registerHooks(new RecordingInterceptor(), host);
    const count = counter([]);
    const own = {
      type: "tool_input" as const,
      name: "own",
      run: async () => ({ behavior: { type: "allow" as const } }),
    };
    count.inputGuardrails = [own];
    const agent = new Agent({ name: "a", tools: [count] });
    for (let i = 0; i < 5; i++) await agent.getAllTools(undefined as never);
    await new Agent({ name: "b", tools: [count] }).getAllTools(undefined as never);
    expect(count.inputGuardrails.map((g) => g.name)).toEqual(["own", GUARDRAIL_NAME]);
  });

  it("fails closed with a clear error when a call cannot be translated (the tool does not run)", async () => {
    await openAIAgentsAdapter.registerHooks(new RecordingInterceptor(), host);
    const ran: number[] = [];
    const count = counter(ran);
    await new Agent({ name: "a", tools: [count] }).getAllTools(undefined as never);
    await expect(count.needsApproval(undefined as never, { n: 1 }, undefined)).rejects.toMatchObject({
      code: "ADAPTER_TRANSLATION_FAILED",
      message: expect.stringContaining("has no call id"),
    });
    expect(ran).toEqual([]);
  });

  it("restores getAllTools exactly, and 300 install/uninstall cycles stack and leak nothing", async () => {
    const count = counter([]);
    const ownNeedsApproval = count.needsApproval;
    const ownGuardrails = count.inputGuardrails;
    for (let i = 0; i < 300; i++) {
      const interceptor = new RecordingInterceptor();
      await openAIAgentsAdapter.registerHooks(interceptor, host);
      await openAIAgentsAdapter.registerHooks(interceptor, host); // idempotent: no second wrapper
      await new Agent({ name: "a", tools: [count] }).getAllTools(undefined as never);
      await openAIAgentsAdapter.unregisterHooks();
    }
    expect(Agent.prototype.getAllTools).toBe(ORIGINALS.esm);
    expect(cjs.Agent.prototype.getAllTools).toBe(ORIGINALS.cjs);
    expect(Object.getOwnPropertyDescriptor(Agent.prototype, "getAllTools")).toEqual(ORIGINALS.esmOwn);
    expect(count.needsApproval).toBe(ownNeedsApproval);
    expect(count.inputGuardrails).toBe(ownGuardrails);

    // One more install: exactly one decision and one replay per call (nothing stacked above).
    const interceptor = new RecordingInterceptor();
    await openAIAgentsAdapter.registerHooks(interceptor, host);
    const model = new ScriptedModel([
      [functionCall("count", { n: 1 }, { callId: "c" })],
      [assistantMessage("ok")],
    ]);
    await run(new Agent({ name: "a", model, tools: [count] }), "go");
    expect(interceptor.calls).toHaveLength(2);
    expect(count.inputGuardrails?.map((g) => g.name)).toEqual([GUARDRAIL_NAME]);
  });

  it("leaves a pass-through when another library wrapped on top, and governs nothing after uninstall", async () => {
    const interceptor = new RecordingInterceptor(new Set(["count"]));
    await openAIAgentsAdapter.registerHooks(interceptor, host);
    const ours = Agent.prototype.getAllTools;
    let seenByOther = 0;
    Agent.prototype.getAllTools = function (this: Agent, ...args: Parameters<typeof ours>) {
      seenByOther += 1;
      return ours.apply(this, args);
    } as typeof ours;
    const theirs = Agent.prototype.getAllTools;
    try {
      await openAIAgentsAdapter.unregisterHooks();
      expect(Agent.prototype.getAllTools).toBe(theirs);
      const ran: number[] = [];
      const model = new ScriptedModel([
        [functionCall("count", { n: 7 }, { callId: "c" })],
        [assistantMessage("ok")],
      ]);
      await run(new Agent({ name: "a", model, tools: [counter(ran)] }), "go");
      expect(ran).toEqual([7]);
      expect(seenByOther).toBeGreaterThan(0);
      expect(interceptor.calls).toEqual([]);
    } finally {
      Agent.prototype.getAllTools = ORIGINALS.esm;
    }
  });

  it("finds the agents-core copy through @openai/agents when the host root has only @openai/agents", async () => {
    const onlyAgents = {
      ...host,
      resolve: (specifier: string) =>
        specifier === "@openai/agents-core" ? undefined : host.resolve(specifier),
    };
    expect(openAIAgentsAdapter.isAvailable(onlyAgents)).toBe(true);
    const report = await openAIAgentsAdapter.registerHooks(new RecordingInterceptor(), onlyAgents);
    expect(report.entryPoints).toEqual([
      "@openai/agents-core Agent.prototype.getAllTools (esm)",
      "@openai/agents-core Agent.prototype.getAllTools (cjs)",
    ]);
    expect(isWrapped(Agent.prototype.getAllTools, "openai-agents")).toBe(true);
    expect(isWrapped(cjs.Agent.prototype.getAllTools, "openai-agents")).toBe(true);
  });

  it("refuses to install without any copy of the SDK, leaving nothing patched", async () => {
    const none = { ...host, resolve: () => undefined };
    await expect(openAIAgentsAdapter.registerHooks(new RecordingInterceptor(), none)).rejects.toMatchObject({
      code: "ADAPTER_INSTALL_FAILED",
      message: expect.stringContaining("found no copy of @openai/agents-core"),
    });
    expect(Agent.prototype.getAllTools).toBe(ORIGINALS.esm);
  });

  it("is available when the host resolves the SDK, and carries its fixed name, rank and target", () => {
    expect(openAIAgentsAdapter.isAvailable(host)).toBe(true);
    expect(openAIAgentsAdapter.isAvailable({ ...host, resolve: () => undefined })).toBe(false);
    expect(createOpenAIAgentsAdapter()).toMatchObject({
      name: "openai-agents",
      priority: 4,
      targetPackage: "@openai/agents-core",
      supportedVersions: ">=0.20.0 <0.21.0",
    });
  });
});

/**
 * Version-matrix smoke test: governs the `@langchain/core` installed in a host app (both of its
 * builds), not the workspace's copy. `scripts/version-matrix.mjs` installs each version of the
 * declared range into a temporary host and runs this file with `AA_MATRIX_HOST=<host root>`; in the
 * package's own test run (no variable) the host is this package, i.e. the workspace version.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type AssemblyContext, AssemblyDeniedError, createHostContext, initAssembly } from "@aa/core";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { LANGCHAIN_SUPPORTED_VERSIONS, langchainAdapter } from "../../src/index.js";

const HOST_ROOT = process.env.AA_MATRIX_HOST ?? new URL("../..", import.meta.url).pathname;
const host = createHostContext(HOST_ROOT);
const HOST_VERSION = (
  JSON.parse(readFileSync(join(HOST_ROOT, "node_modules", "@langchain", "core", "package.json"), "utf8")) as {
    version: string;
  }
).version;

const POLICY = {
  version: 1,
  default: "deny",
  policies: [
    {
      name: "small-transfers",
      action: "transfer",
      effect: "allow",
      when: [{ field: "args.amount", op: "lt", value: 100 }],
    },
  ],
};

type Build = "esm" | "cjs";
type Invocable = { invoke(input: unknown, config?: unknown): Promise<unknown> };
type Zod = { z: { object(shape: object): unknown; number(): unknown } };

/** One build of the host's @langchain/core, as the application would load it. */
interface HostBuild {
  tools: { tool(fn: (input: { amount: number }) => Promise<string>, fields: object): Invocable } & {
    StructuredTool: { prototype: { call: unknown } };
  };
  runnables: {
    RunnableLambda: {
      from(fn: (input: { amount: number }) => Promise<string>): { asTool(fields: object): Invocable };
    };
    RunnableToolLike: { prototype: object };
  };
  messages: { ToolMessage: abstract new (...args: never[]) => unknown };
  zod: Zod;
}

const builds: Record<Build, HostBuild> = {} as Record<Build, HostBuild>;
let originals: { esmCall: unknown; cjsCall: unknown; esmInvoke: unknown; cjsInvoke: unknown };

beforeAll(async () => {
  for (const build of ["esm", "cjs"] as const) {
    const load =
      build === "esm" ? (s: string) => host.import<unknown>(s) : async (s: string) => host.require(s);
    builds[build] = {
      tools: (await load("@langchain/core/tools")) as HostBuild["tools"],
      runnables: (await load("@langchain/core/runnables")) as HostBuild["runnables"],
      messages: (await load("@langchain/core/messages")) as HostBuild["messages"],
      zod: (await load("zod")) as Zod,
    };
  }
  // Captured before any assembly exists, to prove shutdown restores them exactly.
  originals = {
    esmCall: builds.esm.tools.StructuredTool.prototype.call,
    cjsCall: builds.cjs.tools.StructuredTool.prototype.call,
    esmInvoke: Object.getOwnPropertyDescriptor(builds.esm.runnables.RunnableToolLike.prototype, "invoke"),
    cjsInvoke: Object.getOwnPropertyDescriptor(builds.cjs.runnables.RunnableToolLike.prototype, "invoke"),
  };
});

let assembly: AssemblyContext | undefined;
afterEach(async () => {
  await assembly?.shutdown();
  assembly = undefined;
});

async function govern(): Promise<AssemblyContext> {
  assembly = await initAssembly({
    mode: "sdk-only",
    agent: { id: "matrix-bot" },
    policy: POLICY,
    store: ":memory:",
    adapters: [langchainAdapter],
    root: HOST_ROOT,
  });
  return assembly;
}

function transferTool(build: HostBuild, ran: number[]): Invocable {
  const { z } = build.zod;
  return build.tools.tool(
    async ({ amount }) => {
      ran.push(amount);
      return `sent ${amount}`;
    },
    { name: "transfer", description: "send money", schema: z.object({ amount: z.number() }) },
  );
}

function transferAsTool(build: HostBuild, ran: number[]): Invocable {
  const { z } = build.zod;
  return build.runnables.RunnableLambda.from(async ({ amount }) => {
    ran.push(amount);
    return `sent ${amount}`;
  }).asTool({ name: "transfer", description: "send money", schema: z.object({ amount: z.number() }) });
}

describe(`@langchain/core ${HOST_VERSION} (host ${HOST_ROOT})`, () => {
  it("is inside the declared range and installs on both builds", async () => {
    const context = await govern();
    const [status] = context.adapters;
    expect(status).toMatchObject({ name: "langchain", status: "installed", frameworkVersion: HOST_VERSION });
    expect(status!.entryPoints).toEqual(
      expect.arrayContaining([
        "@langchain/core/tools StructuredTool.prototype.call (esm)",
        "@langchain/core/tools StructuredTool.prototype.call (cjs)",
        "@langchain/core/runnables RunnableToolLike.prototype.invoke (esm)",
        "@langchain/core/runnables RunnableToolLike.prototype.invoke (cjs)",
      ]),
    );
    expect(LANGCHAIN_SUPPORTED_VERSIONS).toBe(langchainAdapter.supportedVersions);
  });

  describe.each(["esm", "cjs"] as const)("%s build", (buildName) => {
    it("tool(): the allowed call runs, a denied direct invoke throws AssemblyDeniedError and does not run", async () => {
      await govern();
      const ran: number[] = [];
      const transfer = transferTool(builds[buildName], ran);
      expect(await transfer.invoke({ amount: 5 })).toBe("sent 5");
      const denied = await transfer.invoke({ amount: 500 }).catch((error: unknown) => error);
      expect(denied).toBeInstanceOf(AssemblyDeniedError);
      expect((denied as AssemblyDeniedError).reason).toBe("CONDITIONS_DENIED");
      expect(ran).toEqual([5]);
    });

    it("tool(): a denied call with a tool-call id answers an error ToolMessage naming the failed condition", async () => {
      await govern();
      const ran: number[] = [];
      const transfer = transferTool(builds[buildName], ran);
      const answer = (await transfer.invoke({
        name: "transfer",
        args: { amount: 700 },
        id: "call-700",
        type: "tool_call",
      })) as { status?: unknown; content?: unknown; tool_call_id?: unknown };
      expect(answer).toBeInstanceOf(builds[buildName].messages.ToolMessage);
      expect(answer.status).toBe("error");
      expect(answer.tool_call_id).toBe("call-700");
      expect(String(answer.content)).toContain("args.amount lt 100 (actual: 700)");
      expect(ran).toEqual([]);
    });

    it("runnable.asTool(): governed like any tool", async () => {
      await govern();
      const ran: number[] = [];
      const transfer = transferAsTool(builds[buildName], ran);
      expect(await transfer.invoke({ amount: 7 })).toBe("sent 7");
      await expect(transfer.invoke({ amount: 900 })).rejects.toBeInstanceOf(AssemblyDeniedError);
      expect(ran).toEqual([7]);
    });
  });

  it("shutdown restores StructuredTool.prototype.call and RunnableToolLike.invoke exactly, on both builds", async () => {
    const context = await govern();
    expect(builds.esm.tools.StructuredTool.prototype.call).not.toBe(originals.esmCall);
    expect(builds.cjs.tools.StructuredTool.prototype.call).not.toBe(originals.cjsCall);
    await context.shutdown();
    assembly = undefined;
    expect(builds.esm.tools.StructuredTool.prototype.call).toBe(originals.esmCall);
    expect(builds.cjs.tools.StructuredTool.prototype.call).toBe(originals.cjsCall);
    expect(
      Object.getOwnPropertyDescriptor(builds.esm.runnables.RunnableToolLike.prototype, "invoke"),
    ).toEqual(originals.esmInvoke);
    expect(
      Object.getOwnPropertyDescriptor(builds.cjs.runnables.RunnableToolLike.prototype, "invoke"),
    ).toEqual(originals.cjsInvoke);
    // Ungoverned again: the call the policy would deny now runs.
    const ran: number[] = [];
    expect(await transferTool(builds.esm, ran).invoke({ amount: 600 })).toBe("sent 600");
    expect(ran).toEqual([600]);
  });
});

/**
 * Tool calls made inside a delegated context are the child's: a real LangChain tool (and a
 * `createAgent` run with a scripted model) invoked inside `child.run()` or the callback form of
 * `delegate()` is attributed to the child agent and limited by its capabilities.
 */
import { type AssemblyContext, AssemblyDeniedError, initAssembly } from "@aa/core";
import { tool } from "@langchain/core/tools";
import { createAgent } from "langchain";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { langchainAdapter } from "../src/index.js";
import { askTools, auditRecords, ScriptedChatModel, TEST_POLICY } from "./helpers.js";

const ROOT = new URL("..", import.meta.url).pathname;

let assembly: AssemblyContext | undefined;
afterEach(async () => {
  await assembly?.shutdown();
  assembly = undefined;
});

function tools() {
  const ran: string[] = [];
  const lookup = tool(
    async ({ q }: { q: string }) => {
      ran.push(`lookup ${q}`);
      return `found ${q}`;
    },
    { name: "lookup", description: "look something up", schema: z.object({ q: z.string() }) },
  );
  const transfer = tool(
    async ({ amount }: { amount: number }) => {
      ran.push(`transfer ${amount}`);
      return `sent ${amount}`;
    },
    { name: "transfer", description: "send money", schema: z.object({ amount: z.number() }) },
  );
  return { ran, lookup, transfer };
}

describe("LangChain tools inside a delegated context", () => {
  it("child.run(): calls are attributed to the child and limited by its capabilities", async () => {
    assembly = await initAssembly({
      mode: "sdk-only",
      agent: { id: "payments-bot" },
      policy: TEST_POLICY,
      store: ":memory:",
      adapters: [langchainAdapter],
      root: ROOT,
    });
    const { ran, lookup, transfer } = tools();
    await using child = await assembly.delegate("researcher", { capabilities: ["lookup"] });
    await child.run(async () => {
      expect(await lookup.invoke({ q: "rates" })).toBe("found rates");
      const denied = await transfer.invoke({ amount: 5 }).catch((error: unknown) => error);
      expect(denied).toBeInstanceOf(AssemblyDeniedError);
      expect((denied as AssemblyDeniedError).reason).toBe("NOT_DELEGATED");
    });
    // Outside run(), the same tool is the root agent's again (and the policy allows it).
    expect(await transfer.invoke({ amount: 5 })).toBe("sent 5");
    expect(ran).toEqual(["lookup rates", "transfer 5"]);
    const actions = (await auditRecords(assembly)).filter((r) => r.kind === "action");
    expect(actions.map((r) => [r.agent, r.delegation, r.action_type, r.status])).toEqual([
      ["payments-bot/researcher", ["payments-bot", "payments-bot/researcher"], "lookup", "executed"],
      ["payments-bot/researcher", ["payments-bot", "payments-bot/researcher"], "transfer", "denied"],
      ["payments-bot", ["payments-bot"], "transfer", "executed"],
    ]);
  });

  it("delegate(name, options, fn): an agent run inside the callback acts as the child; revoked afterwards", async () => {
    assembly = await initAssembly({
      mode: "sdk-only",
      agent: { id: "payments-bot" },
      policy: TEST_POLICY,
      store: ":memory:",
      adapters: [langchainAdapter],
      root: ROOT,
    });
    const { ran, lookup, transfer } = tools();
    const model = new ScriptedChatModel([
      askTools({ name: "transfer", args: { amount: 5 }, id: "call-1" }),
      askTools({ name: "lookup", args: { q: "fx" }, id: "call-2" }),
    ]);
    const agent = createAgent({ model, tools: [lookup, transfer] });
    const answer = await assembly.delegate("analyst", { capabilities: ["lookup"] }, async () => {
      const result = await agent.invoke({ messages: [{ role: "user", content: "pay and look up" }] });
      return String(result.messages.at(-1)?.content);
    });
    expect(answer).toBe("done");
    expect(ran).toEqual(["lookup fx"]);
    // The model read the denial, naming the delegation.
    expect(model.toolMessagesAt(1)[0]).toMatchObject({ status: "error" });
    expect(model.toolMessagesAt(1)[0]!.content).toContain("NOT_DELEGATED");
    const actions = (await auditRecords(assembly)).filter((r) => r.kind === "action");
    expect(actions.map((r) => [r.agent, r.action_type, r.denial_reason])).toEqual([
      ["payments-bot/analyst", "transfer", "NOT_DELEGATED"],
      ["payments-bot/analyst", "lookup", null],
    ]);
    expect((await assembly.delegations())[0]).toMatchObject({
      agentId: "payments-bot/analyst",
      state: "revoked",
    });
  });
});

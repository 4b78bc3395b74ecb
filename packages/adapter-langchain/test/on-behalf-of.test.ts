/**
 * A LangChain agent acting for a person: the ambient principal (`assembly.runAs`) reaches every
 * tool call the agent makes, policies check the user's scopes, and the audit names the user.
 * Real `createAgent`, real tools, a scripted model, the embedded gate on SQLite.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AssemblyContext, initAssembly } from "@aa/core";
import { tool } from "@langchain/core/tools";
import { createAgent } from "langchain";
import { afterAll, afterEach, expect, it } from "vitest";
import { z } from "zod";
import { langchainAdapter } from "../src/index.js";
import { askTools, ScriptedChatModel } from "./helpers.js";

const ROOT = new URL("..", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "aa-langchain-identity-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let assembly: AssemblyContext | undefined;
afterEach(async () => {
  await assembly?.shutdown();
  assembly = undefined;
});

it("a LangChain agent's tool calls carry the user it acts for; a scope the user lacks is denied to the model", async () => {
  assembly = await initAssembly({
    mode: "sdk-only",
    agent: { id: "support-bot" },
    policy: {
      version: 1,
      default: "deny",
      policies: [
        { name: "lookups", action: "lookup_order", effect: "allow", required_scopes: ["orders:read"] },
        { name: "refunds", action: "refund", effect: "allow", required_scopes: ["payments:refund"] },
      ],
    },
    store: join(dir, "assembly.db"),
    adapters: [langchainAdapter],
    root: ROOT,
  });
  const ran: string[] = [];
  const lookup = tool(
    async ({ order }: { order: string }) => {
      ran.push(`lookup ${order}`);
      return `order ${order}: delivered`;
    },
    { name: "lookup_order", description: "find an order", schema: z.object({ order: z.string() }) },
  );
  const refund = tool(
    async ({ order }: { order: string }) => {
      ran.push(`refund ${order}`);
      return `refunded ${order}`;
    },
    { name: "refund", description: "refund an order", schema: z.object({ order: z.string() }) },
  );
  const model = new ScriptedChatModel([
    askTools({ name: "lookup_order", args: { order: "A-1" }, id: "call-lookup" }),
    askTools({ name: "refund", args: { order: "A-1" }, id: "call-refund" }),
  ]);
  const agent = createAgent({ model, tools: [lookup, refund] });
  const user = { userId: "u-17", email: "kim@example.com", tenant: "shop-1", scopes: ["orders:*"] };

  const result = await assembly.runAs(user, () =>
    agent.invoke({ messages: [{ role: "user", content: "refund my order A-1" }] }),
  );

  expect(ran).toEqual(["lookup A-1"]);
  const denial = model.toolMessagesAt(2).find((message) => message.toolCallId === "call-refund");
  expect(denial).toMatchObject({ status: "error", toolCallId: "call-refund" });
  expect(denial!.content).toContain('user.scopes has_scope "payments:refund"');
  expect(result.messages.at(-1)?.content).toBe("done");
  const records = (await assembly.audit()).items;
  expect(records.map((r) => [r.tool, r.status, r.user, r.tier])).toEqual([
    ["lookup_order", "executed", { id: "u-17", email: "kim@example.com", tenant: "shop-1" }, "agent"],
    ["refund", "denied", { id: "u-17", email: "kim@example.com", tenant: "shop-1" }, "agent"],
  ]);

  // The same agent with no one behind it: rules that need a user deny UNAUTHENTICATED.
  const anonymous = await lookup.invoke({ order: "A-2" }).catch((error: unknown) => error);
  expect(anonymous).toMatchObject({ reason: "UNAUTHENTICATED" });
  expect(ran).toEqual(["lookup A-1"]);
});

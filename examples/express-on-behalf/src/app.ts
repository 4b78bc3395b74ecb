/**
 * The support app: Express, a (toy) login, and a LangChain agent that acts for whoever is logged
 * in. `setPrincipal` hands the logged-in user to Agent Assembly for the rest of the request, so
 * every tool call the agent makes is checked against that user's scopes and audited with their id.
 */

import { askTools, ScriptedChatModel } from "@aa/adapter-langchain/testing";
import type { AssemblyContext } from "@aa/core";
import { requireAgentPermission, setPrincipal } from "@aa/middleware/express";
import { tool } from "@langchain/core/tools";
import express, { type Express, type Request } from "express";
import { createAgent } from "langchain";
import { z } from "zod";

/** The app's users, by session token (a real app gets them from its identity provider). */
export interface User {
  id: string;
  email: string;
  scopes: string[];
}
export const USERS: Record<string, User> = {
  "session-ada": { id: "ada", email: "ada@shop.test", scopes: ["orders:read", "payments:refund"] },
  "session-bo": { id: "bo", email: "bo@shop.test", scopes: ["orders:read"] },
};

const ORDERS: Record<string, { total: number; status: string }> = {
  "A-1001": { total: 120, status: "delivered" },
};

/** The agent's tools. They know nothing about governance: Agent Assembly wraps every call. */
function supportTools(log: string[]) {
  const lookupOrder = tool(
    async ({ order }: { order: string }) => {
      log.push(`lookup_order ${order}`);
      const found = ORDERS[order];
      return found ? `order ${order}: ${found.status}, total ${found.total}` : `no order ${order}`;
    },
    { name: "lookup_order", description: "look an order up", schema: z.object({ order: z.string() }) },
  );
  const refundOrder = tool(
    async ({ order, amount }: { order: string; amount: number }) => {
      log.push(`refund_order ${order} ${amount}`);
      return `refunded ${amount} on ${order}`;
    },
    {
      name: "refund_order",
      description: "refund (part of) an order",
      schema: z.object({ order: z.string(), amount: z.number() }),
    },
  );
  return [lookupOrder, refundOrder];
}

export function createApp(assembly: AssemblyContext): Express {
  const app = express();
  app.use(express.json());
  // Authentication (yours): a session token in the Authorization header.
  const loggedIn = new WeakMap<Request, User>();
  app.use((req, _res, next) => {
    const user = USERS[req.headers.authorization?.replace(/^Bearer /, "") ?? ""];
    if (user !== undefined) loggedIn.set(req, user);
    next();
  });
  // From here on, everything this request does is done on behalf of the logged-in user.
  app.use(
    setPrincipal((req) => {
      const user = loggedIn.get(req);
      return user && { userId: user.id, email: user.email, scopes: user.scopes };
    }),
  );

  app.post("/support/refund", requireAgentPermission("orders:read"), async (req, res) => {
    const { order, amount } = req.body as { order: string; amount: number };
    const ran: string[] = [];
    // A scripted model stands in for the LLM: it looks the order up, then asks for the refund.
    const model = new ScriptedChatModel([
      askTools({ name: "lookup_order", args: { order }, id: "call-lookup" }),
      askTools({ name: "refund_order", args: { order, amount }, id: "call-refund" }),
    ]);
    const agent = createAgent({ model, tools: supportTools(ran) });
    await agent.invoke({ messages: [{ role: "user", content: `refund ${amount} on ${order}` }] });
    const refund = model.toolMessagesAt(2).find((message) => message.toolCallId === "call-refund");
    res.json({ ran, refund: refund && { status: refund.status, content: refund.content } });
  });

  app.get("/audit", async (_req, res) => {
    const records = (await assembly.audit({ limit: 100 })).items;
    res.json(
      records.map((r) => ({
        tool: r.tool,
        status: r.status,
        reason: r.denial_reason,
        user: r.user?.id ?? null,
      })),
    );
  });
  return app;
}

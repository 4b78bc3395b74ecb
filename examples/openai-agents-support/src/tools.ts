/** The support agent's tools. Plain OpenAI Agents SDK function tools: nothing here knows about governance. */
import { tool } from "@openai/agents";
import { z } from "zod";
import { green, say } from "./ui.js";

const ORDERS: Record<string, { item: string; total: number; status: string }> = {
  "A-1001": { item: "espresso machine", total: 180, status: "delivered damaged" },
};

export const lookupOrder = tool({
  name: "lookup_order",
  description: "Look up an order by its id",
  parameters: z.object({ order_id: z.string() }),
  execute: async ({ order_id }) => {
    const order = ORDERS[order_id];
    say(
      green("✔ ran"),
      `lookup_order → ${order_id}: ${order ? `${order.item}, ${order.total} EUR` : "not found"}`,
    );
    return JSON.stringify(order ? { order_id, ...order } : { error: `no order ${order_id}` });
  },
});

export const issueRefund = tool({
  name: "issue_refund",
  description: "Refund a customer straight away",
  parameters: z.object({ order_id: z.string(), amount: z.number(), email: z.string() }),
  execute: async ({ order_id, amount }) => {
    say(green("✔ ran"), `issue_refund → ${amount} EUR refunded on ${order_id}`);
    return `refunded ${amount} EUR on ${order_id}`;
  },
});

export const escalateRefund = tool({
  name: "escalate_refund",
  description: "Have a supervisor sign off a refund, then issue it",
  parameters: z.object({ order_id: z.string(), amount: z.number(), email: z.string(), reason: z.string() }),
  execute: async ({ order_id, amount }) => {
    say(
      green("✔ ran"),
      `escalate_refund → ${amount} EUR refunded on ${order_id} with a supervisor's sign-off`,
    );
    return `refunded ${amount} EUR on ${order_id} (supervisor sign-off)`;
  },
});

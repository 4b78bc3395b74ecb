/**
 * The bank: a plain MCP server over stdio, run by main.ts in a child process. Nothing here knows about
 * governance; the calls it receives are the ones the assistant's policy let through.
 */
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";

let balance = 4200;
const payees = new Set(["landlord"]);
/** Everything this server has done, in order: the statement `get_balance` returns. */
const statement: string[] = [];

const answer = (text: string): CallToolResult => ({ content: [{ type: "text", text }] });
const refuse = (text: string): CallToolResult => ({ isError: true, content: [{ type: "text", text }] });

const server = new McpServer({ name: "bank", version: "1.0.0" });

server.registerTool(
  "get_balance",
  { description: "The account balance and its statement", inputSchema: {} },
  async () => answer(JSON.stringify({ balance, currency: "EUR", statement, servedBy: process.pid })),
);

server.registerTool(
  "transfer",
  {
    description: "Send money to a known payee",
    inputSchema: { to: z.string(), amount: z.number().positive() },
  },
  async ({ to, amount }) => {
    if (!payees.has(to)) return refuse(`unknown payee "${to}"`);
    if (amount > balance) return refuse("insufficient funds");
    balance -= amount;
    statement.push(`transfer ${amount} EUR to ${to}`);
    return answer(`sent ${amount} EUR to ${to}; balance ${balance} EUR`);
  },
);

server.registerTool(
  "add_payee",
  { description: "Register a new payee", inputSchema: { name: z.string(), iban: z.string() } },
  async ({ name }) => {
    payees.add(name);
    statement.push(`add_payee ${name}`);
    return answer(`payee "${name}" added`);
  },
);

await server.connect(new StdioServerTransport());

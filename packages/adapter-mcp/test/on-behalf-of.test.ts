/**
 * MCP tool calls made inside `runAs` carry the user too (the interceptor reads the ambient
 * principal for every adapter): client and server in-process, the real embedded gate.
 */
import { type AssemblyContext, initAssembly, runAs } from "@aa/core";
import { afterEach, expect, it } from "vitest";
import { mcpAdapter } from "../src/index.js";
import { auditRecords, bankServer, connect, type Ran, textOf } from "./helpers.js";

const ROOT = new URL("..", import.meta.url).pathname;
let assembly: AssemblyContext | undefined;
afterEach(async () => {
  await assembly?.shutdown();
  assembly = undefined;
});

it("an MCP client's calls inside runAs are decided and audited for that user", async () => {
  assembly = await initAssembly({
    mode: "sdk-only",
    agent: { id: "mcp-bot" },
    policy: {
      version: 1,
      default: "deny",
      policies: [
        { name: "transfers", action: "transfer", effect: "allow", required_scopes: ["payments:transfer"] },
      ],
    },
    store: ":memory:",
    adapters: [mcpAdapter],
    root: ROOT,
  });
  const ran: Ran = [];
  const { client } = await connect(bankServer(ran));
  try {
    const allowed = await runAs({ userId: "ada", scopes: ["payments:*"] }, () =>
      client.callTool({ name: "transfer", arguments: { amount: 5 } }),
    );
    expect(textOf(allowed)).toContain("transfer done");
    const denied = await runAs({ userId: "bo", scopes: [] }, () =>
      client.callTool({ name: "transfer", arguments: { amount: 5 } }),
    );
    expect(denied.isError).toBe(true);
    expect(textOf(denied)).toContain('user.scopes has_scope "payments:transfer"');
    const anonymous = await client.callTool({ name: "transfer", arguments: { amount: 5 } });
    expect(textOf(anonymous)).toContain("UNAUTHENTICATED");
    expect(ran).toEqual(['bank:transfer {"amount":5}']);
    // Client and server run in this process, so both sides decide (see the adapter's README); the
    // server side of Ada's call runs in her request's async context and is audited for her too.
    const records = await auditRecords(assembly);
    expect(
      records.map((r) => [
        (r.metadata as { mcpSide?: string }).mcpSide,
        (r.user as { id: string } | null)?.id ?? null,
        r.denial_reason,
      ]),
    ).toEqual([
      ["client", "ada", null],
      ["server", "ada", null],
      ["client", "bo", "CONDITIONS_DENIED"],
      ["client", null, "UNAUTHENTICATED"],
    ]);
  } finally {
    await client.close();
  }
});

/**
 * Agent Assembly over MCP: a bank assistant (an MCP client) calls a bank's MCP server, governed by
 * aa.policy.yaml. The server runs in a child process over stdio and knows nothing about governance.
 *   1. an allowed call (get_balance, a small transfer): sent to the server
 *   2. a denied call (a 2,500 EUR transfer): answered `isError: true` with the failed condition, never sent
 *   3. a call held for approval (add_payee), approved by an operator loop with `assembly.approve`
 *   4. the audit trail, printed and verified
 */
import { rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type AssemblyContext, initAssembly } from "@aa/core";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { bold, cyan, dim, green, heading, red, say, short, yellow } from "./ui.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
const store = join(root, ".aa", "assembly.db");

/** The operator: approves every held call it sees (in real life: a person at `aa approvals`). */
function startOperator(assembly: AssemblyContext): { stop(): void } {
  let stopped = false;
  void (async () => {
    while (!stopped) {
      for (const approval of await assembly.listApprovals({ state: "pending" })) {
        say(
          yellow("⏸ held"),
          `${approval.actionType} waits for a human (approval ${approval.id.slice(0, 8)}…)`,
        );
        say(yellow("👤 operator"), `approves ${approval.id.slice(0, 8)}… ("payee verified by phone")`);
        await assembly.approve(approval.id, "operator:demo", "payee verified by phone");
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  return {
    stop() {
      stopped = true;
    },
  };
}

/** The text of a tool result's first content item. */
function textOf(result: unknown): string {
  const content = (result as { content?: { type: string; text?: string }[] }).content;
  return content?.[0]?.text ?? "";
}

rmSync(join(root, ".aa"), { recursive: true, force: true }); // a fresh trail for each run

heading("Agent Assembly example: an MCP bank assistant under policy");
const assembly = await initAssembly({ agent: { id: "bank-assistant" }, root, store });
for (const adapter of assembly.adapters) {
  say(green("✔ hooked"), `${adapter.name} ${dim(`(${adapter.entryPoints.length} entry points)`)}`);
}
say(dim("policy"), dim("balance allowed, transfers < 1000 EUR, new payees need review"));

// The bank runs in its own process; only this process (the client) is governed.
const client = new Client({ name: "bank-assistant", version: "1.0.0" });
await client.connect(
  new StdioClientTransport({ command: process.execPath, args: [join(here, "bank-server.js")] }),
);
const server = client.getServerVersion();
say(green("✔ connected"), `MCP server "${server?.name}" ${server?.version} over stdio`);

/** One step of the scripted assistant: call a tool, narrate what came back. */
async function call(name: string, args: Record<string, unknown>) {
  say(cyan("▸ agent"), `calls ${name} ${short(args)}`);
  const result = await client.callTool({ name, arguments: args });
  if (result.isError) say(red("✘ denied"), short(textOf(result), 220));
  else say(green("◂ server"), short(textOf(result), 160));
  return result;
}

heading("The assistant works (scripted, no API key)");
const operator = startOperator(assembly);
try {
  await call("get_balance", {});
  await call("transfer", { to: "landlord", amount: 250 });
  const denied = await call("transfer", { to: "landlord", amount: 2500 });
  const meta = (denied._meta as { agentAssembly?: { policy?: string } } | undefined)?.agentAssembly;
  say(
    dim("  isError"),
    dim(`${denied.isError} (policy ${meta?.policy}); the request never left this process`),
  );
  await call("add_payee", { name: "acme-supplies", iban: "DE89370400440532013000" });
  const final = await call("get_balance", {});
  const { statement } = JSON.parse(textOf(final)) as { statement: string[] };
  say(dim("statement"), `the server ran: ${statement.join("; ")}`);
} finally {
  operator.stop();
  await client.close();
}

heading("The audit trail (hash-chained, account numbers masked)");
const trail = await assembly.audit({ limit: 100 });
for (const event of trail.items) {
  const [label, paint] =
    event.kind === "action"
      ? [event.status ?? "", event.status === "executed" ? green : event.status === "denied" ? red : yellow]
      : [event.kind.replace("approval.", ""), event.kind === "approval.approved" ? green : yellow];
  const detail =
    event.kind === "approval.approved" || event.kind === "approval.denied"
      ? `by ${event.agent}: ${event.reason ?? ""}`
      : event.kind === "approval.released"
        ? "the approved call ran, once"
        : event.denial_reason
          ? `${event.denial_reason} (${event.policy_name})`
          : `policy ${event.policy_name}`;
  console.log(
    `  #${String(event.seq).padEnd(3)}${paint(label.padEnd(10))} ${event.action_type.padEnd(12)} ${detail.padEnd(40)} ${dim(short(event.args, 56))}`,
  );
}
const verified = await assembly.verify();
say(
  verified.chainValid ? green("✔ verify") : red("✘ verify"),
  `chainValid: ${verified.chainValid} (${verified.checked} records checked)`,
);
await assembly.shutdown(); // writes a signed checkpoint
console.log(`\n${bold("Look around:")} ${dim(`npx -y pnpm@10.34.8 aa audit list --store ${store}`)}`);

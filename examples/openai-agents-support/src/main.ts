/**
 * Agent Assembly with the OpenAI Agents SDK: an unchanged support agent, governed by aa.policy.yaml.
 *   1. an allowed call (lookup_order)
 *   2. a denied call (a 180 EUR refund): the model reads the failed condition and escalates instead
 *   3. a held call (escalate_refund): the run stops with an interruption, the app approves it with
 *      `approveInterruption` and resumes; the call runs once
 *   4. the audit trail, printed and verified
 */
import { rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { approveInterruption, gateApprovalFor } from "@aa/adapter-openai-agents";
import { initAssembly } from "@aa/core";
import { Agent, run, setTracingDisabled } from "@openai/agents";
import { supportModel } from "./model.js";
import { escalateRefund, issueRefund, lookupOrder } from "./tools.js";
import { bold, dim, green, heading, red, say, short, yellow } from "./ui.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const store = join(root, ".aa", "assembly.db");

setTracingDisabled(true); // no OpenAI account: nothing to export traces to
rmSync(join(root, ".aa"), { recursive: true, force: true }); // a fresh trail for each run

heading("Agent Assembly example: an OpenAI Agents support agent under policy");
const assembly = await initAssembly({ agent: { id: "support-agent" }, root, store });
for (const adapter of assembly.adapters) {
  say(
    green("✔ hooked"),
    `${adapter.name} ${dim(`(${adapter.entryPoints.length} entry points, ${adapter.frameworkVersion ?? "?"})`)}`,
  );
}
say(dim("policy"), dim("lookups allowed, refunds up to 50 EUR, escalations need a supervisor"));

heading("The agent works (scripted model, no API key)");
const agent = new Agent({
  name: "support",
  instructions: "Help customers with their orders.",
  model: supportModel(),
  tools: [lookupOrder, issueRefund, escalateRefund],
});
let result = await run(agent, "Order A-1001 arrived damaged. Please refund me.");

// A held call is an SDK interruption; the app is the reviewer's UI.
while (result.interruptions.length > 0) {
  for (const interruption of result.interruptions) {
    // The gate's approval that holds this call (what `aa approvals list` shows an operator).
    const approvalId = await gateApprovalFor(assembly, interruption);
    const approval = approvalId ? await assembly.getApproval(approvalId) : undefined;
    say(
      yellow("⏸ held"),
      `${interruption.name} stops the run: approval ${approvalId?.slice(0, 8)}… (${approval?.policyName}, ${approval?.state})`,
    );
    say(yellow("👤 operator"), `approves ${interruption.name} ("photos of the damage checked")`);
    await approveInterruption(
      assembly,
      result.state,
      interruption,
      "operator:demo",
      "photos of the damage checked",
    );
  }
  say(dim("resume"), dim("run(agent, result.state)"));
  result = await run(agent, result.state);
}
say(bold("final"), String(result.finalOutput));

heading("The audit trail (hash-chained, e-mail addresses masked)");
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
    `  #${String(event.seq).padEnd(3)}${paint(label.padEnd(10))} ${event.action_type.padEnd(16)} ${detail.padEnd(44)} ${dim(short(event.args, 48))}`,
  );
}
const verified = await assembly.verify();
say(
  verified.chainValid ? green("✔ verify") : red("✘ verify"),
  `chainValid: ${verified.chainValid} (${verified.checked} records checked)`,
);
await assembly.shutdown(); // writes a signed checkpoint
console.log(`\n${bold("Look around:")} ${dim(`npx -y pnpm@10.34.8 aa audit list --store ${store}`)}`);

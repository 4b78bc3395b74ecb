/**
 * Agent Assembly with the Vercel AI SDK: an unchanged `generateText` tool loop, governed by
 * aa.policy.yaml. Started with `node --import @aa/adapter-vercel-ai/register` (see package.json), so
 * the adapter can hook `ai` before this module imports it.
 *   1. an allowed call (get_forecast)
 *   2. a denied call (heating to 30 °C): the model reads the `execution-denied` result and corrects itself
 *   3. a held call (broadcast_alert): the run stops with a `tool-approval-request`; the app answers the
 *      gate with `answerGateApproval` and the SDK with a `tool-approval-response`, and resumes
 *   4. the audit trail, printed and verified
 */
import { rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { answerGateApproval, gateApprovalIdFor } from "@aa/adapter-vercel-ai";
import { initAssembly } from "@aa/core";
import { generateText, type ModelMessage, stepCountIs } from "ai";
import { weatherModel } from "./model.js";
import { tools } from "./tools.js";
import { bold, dim, green, heading, red, say, short, yellow } from "./ui.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const store = join(root, ".aa", "assembly.db");

rmSync(join(root, ".aa"), { recursive: true, force: true }); // a fresh trail for each run

heading("Agent Assembly example: a Vercel AI SDK weather assistant under policy");
const assembly = await initAssembly({ agent: { id: "weather-assistant" }, root, store });
for (const adapter of assembly.adapters) {
  say(
    green("✔ hooked"),
    `${adapter.name} ${dim(`(${adapter.entryPoints.length} entry points, ai ${adapter.frameworkVersion ?? "?"})`)}`,
  );
}
say(dim("policy"), dim("forecasts allowed, heating up to 24 °C, neighbourhood alerts need review"));

heading("The assistant works (mock model, no API key)");
const model = weatherModel();
const messages: ModelMessage[] = [
  { role: "user", content: "A storm is coming tonight: heat the house to 30 °C and warn the neighbours." },
];
let result = await generateText({ model, tools, messages, stopWhen: stepCountIs(10) });

// A held call ends the run with a tool-approval-request in its final step; the app is the reviewer's UI.
// (A denial shows up as an automatic request answered `approved: false` in its own step: not a question.)
for (;;) {
  const requests = result.finalStep.content.filter(
    (part): part is Extract<typeof part, { type: "tool-approval-request" }> =>
      part.type === "tool-approval-request" && part.isAutomatic !== true,
  );
  if (requests.length === 0) break;
  messages.push(...result.responseMessages); // every step's messages, not only the last step's
  for (const request of requests) {
    // The gate's approval that holds this call (what `aa approvals list` shows an operator).
    const approvalId = gateApprovalIdFor(request.toolCall.toolCallId);
    const approval = approvalId ? await assembly.getApproval(approvalId) : undefined;
    say(
      yellow("⏸ held"),
      `${request.toolCall.toolName} stops the run: approval ${approvalId?.slice(0, 8)}… (${approval?.policyName}, ${approval?.state})`,
    );
    say(yellow("👤 operator"), `approves ${request.toolCall.toolName} ("wording checked")`);
    await answerGateApproval(assembly, {
      toolCallId: request.toolCall.toolCallId,
      approved: true,
      reviewer: "operator:demo",
      reason: "wording checked",
    });
    messages.push({
      role: "tool",
      content: [{ type: "tool-approval-response", approvalId: request.approvalId, approved: true }],
    });
  }
  say(dim("resume"), dim("generateText({ ..., messages: [...history, tool-approval-response] })"));
  result = await generateText({ model, tools, messages, stopWhen: stepCountIs(10) });
}
say(bold("final"), result.text);

heading("The audit trail (hash-chained, the PIN masked)");
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
    `  #${String(event.seq).padEnd(3)}${paint(label.padEnd(10))} ${event.action_type.padEnd(16)} ${detail.padEnd(38)} ${dim(short(event.args, 52))}`,
  );
}
const verified = await assembly.verify();
say(
  verified.chainValid ? green("✔ verify") : red("✘ verify"),
  `chainValid: ${verified.chainValid} (${verified.checked} records checked)`,
);
await assembly.shutdown(); // writes a signed checkpoint
console.log(`\n${bold("Look around:")} ${dim(`npx -y pnpm@10.34.8 aa audit list --store ${store}`)}`);

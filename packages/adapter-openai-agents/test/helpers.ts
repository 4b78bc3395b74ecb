/** Test helpers: the test policy, the tools of the test agent, and what the model was sent. */
import type { AssemblyContext } from "@aa/core";
import { tool } from "@openai/agents";
import type { ScriptedModel } from "@openai/agents-core/testing";
import { z } from "zod";

/** The policy every test uses: small transfers allowed, lookups allowed, deploys held for review. */
export const TEST_POLICY = {
  version: 1,
  default: "deny",
  policies: [
    {
      name: "small-transfers",
      action: "transfer",
      effect: "allow",
      when: [{ field: "args.amount", op: "lt", value: 100 }],
    },
    { name: "lookups", action: "lookup", effect: "allow" },
    { name: "deploys-need-review", action: "deploy", effect: "require_approval" },
  ],
};

/** The tools of the test agent; `ran` records every real execution. */
export function bankTools(overrides: { transferNeedsApproval?: boolean } = {}) {
  const ran: string[] = [];
  const transfer = tool({
    name: "transfer",
    description: "send money",
    parameters: z.object({ amount: z.number(), to: z.string() }),
    needsApproval: overrides.transferNeedsApproval ?? false,
    execute: async ({ amount, to }) => {
      ran.push(`transfer ${amount} to ${to}`);
      return `sent ${amount} to ${to}`;
    },
  });
  const deploy = tool({
    name: "deploy",
    description: "deploy a service",
    parameters: z.object({ service: z.string() }),
    execute: async ({ service }) => {
      ran.push(`deploy ${service}`);
      return `deployed ${service}`;
    },
  });
  return { ran, transfer, deploy };
}

/** The `function_call_result` items the model was sent on its `index`-th call (0-based). */
export function toolResultsSentOn(model: ScriptedModel, index: number): { callId: string; output: string }[] {
  const input = model.calls[index]?.request.input;
  if (!Array.isArray(input)) return [];
  return input
    .filter(
      (item): item is Extract<typeof item, { type: "function_call_result" }> =>
        item.type === "function_call_result",
    )
    .map((item) => ({ callId: item.callId, output: outputText(item.output) }));
}

function outputText(output: unknown): string {
  if (typeof output === "string") return output;
  if (output && typeof output === "object" && "text" in output)
    return String((output as { text: unknown }).text);
  return JSON.stringify(output);
}

/** Pending approvals of the assembly. */
export async function pendingApprovals(assembly: AssemblyContext) {
  return assembly.listApprovals({ state: "pending" });
}

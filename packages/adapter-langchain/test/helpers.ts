/** Test helpers: the scripted model (from the public testing entry), the test policy, audit access. */
import type { AssemblyContext } from "@aa/core";

export { askTools, pendingApprovals, ScriptedChatModel, type ScriptedToolCall } from "../src/testing.js";

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

/** Audit records of the assembly (first page, enough for a test). */
export async function auditRecords(assembly: AssemblyContext): Promise<Record<string, unknown>[]> {
  const page = await assembly.audit({ limit: 1000 });
  return page.items as unknown as Record<string, unknown>[];
}

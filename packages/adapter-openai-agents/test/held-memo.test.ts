/**
 * The process-local memo of held calls (call → gate approval id) is bounded to 10 000 calls: the
 * oldest goes first, and a forgotten call is looked up in the real assembly's audit trail instead.
 */
import { type AssemblyContext, initAssembly } from "@aa/core";
import { afterEach, describe, expect, it } from "vitest";
import { rememberHeld } from "../src/approvals.js";
import { gateApprovalFor, openAIAgentsAdapter } from "../src/index.js";
import { eventIdFor } from "../src/translate.js";
import { TEST_POLICY } from "./helpers.js";

const ROOT = new URL("..", import.meta.url).pathname;
let assembly: AssemblyContext | undefined;
afterEach(async () => {
  await assembly?.shutdown();
  assembly = undefined;
});

const deployCall = (callId: string) => ({ rawItem: { type: "function_call", callId, name: "deploy" } });

describe("held-call memo", () => {
  it("remembers the last 10 000 held calls, forgetting the oldest first", async () => {
    assembly = await initAssembly({
      mode: "sdk-only",
      agent: { id: "payments-bot" },
      policy: TEST_POLICY,
      store: ":memory:",
      adapters: [openAIAgentsAdapter],
      root: ROOT,
    });
    const gate = assembly;
    const approvalOf = (callId: string) => gateApprovalFor(gate, deployCall(callId));
    const hold = (callId: string) => rememberHeld(eventIdFor("deploy", callId), `approval-${callId}`);
    // 10 001 held calls: the 10 001st evicts the first.
    for (let i = 0; i <= 10_000; i++) hold(`memo-${i}`);
    // Forgotten here, and not in the audit trail either (these approvals were never recorded).
    expect(await approvalOf("memo-0")).toBeUndefined();
    expect(await approvalOf("memo-1")).toBe("approval-memo-1");
    expect(await approvalOf("memo-10000")).toBe("approval-memo-10000");
    // Remembering a held call again does not make it newer: memo-1 is still the oldest.
    hold("memo-1");
    hold("memo-10001");
    expect(await approvalOf("memo-1")).toBeUndefined();
    expect(await approvalOf("memo-2")).toBe("approval-memo-2");
  });
});

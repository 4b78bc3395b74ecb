/**
 * The adapter's process-local memos are bounded to 10 000 calls, the oldest going first: held calls
 * (call → gate approval id; a forgotten one is looked up in the audit trail instead) and the calls
 * `needsApproval` decided (the guardrail replays exactly that request).
 */
import { type AssemblyContext, initAssembly } from "@aa/core";
import { Agent, RunContext, setTracingDisabled } from "@openai/agents";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { rememberHeld } from "../src/approvals.js";
import { gateApprovalFor, openAIAgentsAdapter } from "../src/index.js";
import { eventIdFor } from "../src/translate.js";
import { bankTools, TEST_POLICY } from "./helpers.js";

const ROOT = new URL("..", import.meta.url).pathname;
let assembly: AssemblyContext | undefined;
beforeAll(() => setTracingDisabled(true));
afterEach(async () => {
  await assembly?.shutdown();
  assembly = undefined;
});

const deployCall = (callId: string) => ({ rawItem: { type: "function_call", callId, name: "deploy" } });

async function govern() {
  assembly = await initAssembly({
    mode: "sdk-only",
    agent: { id: "payments-bot" },
    policy: TEST_POLICY,
    store: ":memory:",
    adapters: [openAIAgentsAdapter],
    root: ROOT,
  });
  return assembly;
}

describe("bounded memos", () => {
  it("the guardrail replays the last 10 000 decided calls; an evicted one is translated again", async () => {
    await govern();
    const { transfer } = bankTools();
    // The SDK's own getAllTools (patched by the adapter) hands out the governed tool.
    await new Agent({ name: "bank", tools: [transfer] }).getAllTools(new RunContext());
    const guardrail = transfer.inputGuardrails?.at(-1);
    if (!guardrail || typeof transfer.needsApproval !== "function")
      throw new Error("transfer is not governed");
    const context = new RunContext();
    // 10 001 allowed transfers decided by needsApproval: the 10 001st evicts the first decided call.
    for (let i = 0; i <= 10_000; i++)
      expect(await transfer.needsApproval(context, { amount: 50, to: "bob" }, `decided-${i}`)).toBe(false);
    // The guardrail is handed other arguments than the ones decided (as if the model's call changed):
    // a remembered call replays its decided request (allowed, same idempotency key) ...
    const check = (callId: string) =>
      guardrail.run({
        agent: undefined as never,
        context,
        toolCall: { type: "function_call", name: "transfer", callId, arguments: '{"amount":500,"to":"eve"}' },
      } as never);
    expect(await check("decided-1")).toEqual({ behavior: { type: "allow" } });
    expect(await check("decided-10000")).toEqual({ behavior: { type: "allow" } });
    // ... the evicted one is translated from these arguments, and the gate refuses its decided key
    // for a different request: the model is told, the tool does not run.
    expect(await check("decided-0")).toEqual({
      behavior: {
        type: "rejectContent",
        message: expect.stringContaining(
          'idempotency key (eventId) "openai-agents:transfer:decided-0" was already used for a different request',
        ),
      },
    });
  });

  it("remembers the last 10 000 held calls, forgetting the oldest first", async () => {
    const gate = await govern();
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

/**
 * OpenAI Agents SDK agents governed end to end: the real `initAssembly` (embedded gate, inline
 * policy, in-memory store) and `run(agent, ...)` driven by the SDK's own `ScriptedModel`.
 */
import { type AssemblyContext, initAssembly } from "@aa/core";
import { Agent, defineToolInputGuardrail, run, setTracingDisabled, tool } from "@openai/agents";
import { assistantMessage, functionCall, ScriptedModel } from "@openai/agents-core/testing";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import {
  approveInterruption,
  GUARDRAIL_NAME,
  openAIAgentsAdapter,
  rejectInterruption,
} from "../src/index.js";
import { bankTools, pendingApprovals, TEST_POLICY, toolResultsSentOn } from "./helpers.js";

const ROOT = new URL("..", import.meta.url).pathname;
const ORIGINAL_GET_ALL_TOOLS = Agent.prototype.getAllTools;

let assembly: AssemblyContext | undefined;
beforeAll(() => setTracingDisabled(true));
afterEach(async () => {
  await assembly?.shutdown();
  assembly = undefined;
});

async function govern(overrides: { enforcementMode?: "enforce" | "observe" } = {}) {
  assembly = await initAssembly({
    mode: "sdk-only",
    agent: { id: "payments-bot" },
    policy: TEST_POLICY,
    store: ":memory:",
    enforcementMode: overrides.enforcementMode ?? "enforce",
    adapters: [openAIAgentsAdapter],
    root: ROOT,
  });
  return assembly;
}

describe("OpenAI Agents SDK under Agent Assembly", () => {
  it("reports the entry points it really wrapped (ESM and CJS builds of agents-core)", async () => {
    const context = await govern();
    expect(context.adapters).toEqual([
      expect.objectContaining({
        name: "openai-agents",
        priority: 4,
        status: "installed",
        frameworkVersion: expect.stringMatching(/^0\.20\./),
        entryPoints: [
          "@openai/agents-core Agent.prototype.getAllTools (esm)",
          "@openai/agents-core Agent.prototype.getAllTools (cjs)",
        ],
      }),
    ]);
  });

  it("runs an allowed call, blocks a denied one, and the model reads the failed condition", async () => {
    const context = await govern();
    const { ran, transfer } = bankTools();
    const model = new ScriptedModel([
      [functionCall("transfer", { amount: 500, to: "bob" }, { callId: "call-big" })],
      [functionCall("transfer", { amount: 50, to: "bob" }, { callId: "call-small" })],
      [assistantMessage("done")],
    ]);
    const result = await run(new Agent({ name: "payer", model, tools: [transfer] }), "pay bob");

    expect(ran).toEqual(["transfer 50 to bob"]);
    const [denial] = toolResultsSentOn(model, 1);
    expect(denial!.callId).toBe("call-big");
    expect(denial!.output).toContain('policy "small-transfers"');
    expect(denial!.output).toContain("args.amount lt 100 (actual: 500)");
    expect(toolResultsSentOn(model, 2).at(-1)).toEqual({ callId: "call-small", output: "sent 50 to bob" });
    expect(result.finalOutput).toBe("done");
    expect(result.toolInputGuardrailResults.map((r) => [r.guardrail.name, r.output.behavior.type])).toEqual([
      [GUARDRAIL_NAME, "rejectContent"],
      [GUARDRAIL_NAME, "allow"],
    ]);
    // One audit event per tool call: the guardrail replays the decision needsApproval got.
    const records = (await context.audit()).items;
    expect(records.map((r) => [r.kind, r.status, r.tool_call_id, r.args])).toEqual([
      ["action", "denied", "call-big", { amount: 500, to: "bob" }],
      ["action", "executed", "call-small", { amount: 50, to: "bob" }],
    ]);
  });

  it("holds a call: the run returns an interruption; approved through the gate, it runs once on resume", async () => {
    const context = await govern();
    const { ran, deploy } = bankTools();
    const model = new ScriptedModel([
      [functionCall("deploy", { service: "api" }, { callId: "call-deploy" })],
      [assistantMessage("shipped")],
    ]);
    const agent = new Agent({ name: "shipper", model, tools: [deploy] });
    const first = await run(agent, "ship");
    expect(ran).toEqual([]);
    expect(first.interruptions).toHaveLength(1);
    const [pending] = await pendingApprovals(context);
    expect(pending).toMatchObject({
      actionType: "deploy",
      policyName: "deploys-need-review",
      state: "pending",
    });

    const outcome = await approveInterruption(context, first.state, first.interruptions[0]!, "alice");
    expect(outcome).toEqual({ approvalId: pending!.id });
    expect(await context.getApproval(pending!.id)).toMatchObject({ state: "approved", decidedBy: "alice" });

    const resumed = await run(agent, first.state);
    expect(resumed.interruptions).toHaveLength(0);
    expect(resumed.finalOutput).toBe("shipped");
    expect(ran).toEqual(["deploy api"]);
    expect(toolResultsSentOn(model, 1)).toEqual([{ callId: "call-deploy", output: "deployed api" }]);
    expect(await context.getApproval(pending!.id)).toMatchObject({ consumedAt: expect.any(String) });
    const kinds = (await context.audit()).items.map((r) => [r.kind, r.status]);
    expect(kinds.filter(([kind]) => kind === "action")).toHaveLength(1);
  });

  it("holds a call: rejected through the gate, it never runs and the model reads the reviewer's refusal", async () => {
    const context = await govern();
    const { ran, deploy } = bankTools();
    const model = new ScriptedModel([
      [functionCall("deploy", { service: "api" }, { callId: "call-deploy" })],
      [assistantMessage("not shipped")],
    ]);
    const agent = new Agent({ name: "shipper", model, tools: [deploy] });
    const first = await run(agent, "ship");
    const [pending] = await pendingApprovals(context);
    await rejectInterruption(context, first.state, first.interruptions[0]!, "alice", "not on a Friday");
    expect(await context.getApproval(pending!.id)).toMatchObject({ state: "denied", decidedBy: "alice" });

    const resumed = await run(agent, first.state);
    expect(resumed.finalOutput).toBe("not shipped");
    expect(ran).toEqual([]);
    const [refusal] = toolResultsSentOn(model, 1);
    expect(refusal!.callId).toBe("call-deploy");
    expect(refusal!.output).toContain("DENIED_BY_REVIEWER");
    expect(refusal!.output).toContain("not on a Friday");
  });

  it("an interruption approved only in the SDK does not release the call: the guardrail waits for the gate", async () => {
    const context = await govern();
    const { ran, deploy } = bankTools();
    const model = new ScriptedModel([
      [functionCall("deploy", { service: "web" }, { callId: "call-deploy" })],
      [assistantMessage("shipped")],
    ]);
    const agent = new Agent({ name: "shipper", model, tools: [deploy] });
    const first = await run(agent, "ship");
    first.state.approve(first.interruptions[0]!); // the app's own UI, no reviewer recorded
    const resuming = run(agent, first.state);
    const [pending] = await pendingApprovals(context);
    expect(pending).toMatchObject({ actionType: "deploy" });
    expect(ran).toEqual([]);
    // The reviewer decides through the gate (what `aa approvals deny` does): the run ends, the call never ran.
    await context.deny(pending!.id, "operator", "no");
    const resumed = await resuming;
    expect(ran).toEqual([]);
    expect(resumed.finalOutput).toBe("shipped");
    expect(toolResultsSentOn(model, 1)[0]!.output).toContain("DENIED_BY_REVIEWER");
  });

  it("the tool's own needsApproval still asks, and the tool's own guardrail still rejects", async () => {
    await govern();
    const { ran, transfer } = bankTools({ transferNeedsApproval: true });
    const lookupRan: string[] = [];
    const lookup = tool({
      name: "lookup",
      description: "look up an account",
      parameters: z.object({ account: z.string() }),
      inputGuardrails: [
        defineToolInputGuardrail({
          name: "no-secret-accounts",
          run: async ({ toolCall }) =>
            toolCall.arguments.includes("secret")
              ? { behavior: { type: "rejectContent", message: "secret accounts are off limits" } }
              : { behavior: { type: "allow" } },
        }),
      ],
      execute: async ({ account }) => {
        lookupRan.push(account);
        return `account ${account}: ok`;
      },
    });
    const model = new ScriptedModel([
      [
        functionCall("lookup", { account: "secret-1" }, { callId: "call-secret" }),
        functionCall("lookup", { account: "a-2" }, { callId: "call-open" }),
        functionCall("transfer", { amount: 5, to: "bob" }, { callId: "call-small" }),
      ],
      [assistantMessage("done")],
    ]);
    const agent = new Agent({ name: "payer", model, tools: [lookup, transfer] });
    const first = await run(agent, "go");
    // The gate allows the transfer, but the tool itself asks for approval: the app decides alone.
    expect(first.interruptions.map((i) => i.name)).toEqual(["transfer"]);
    const outcome = await approveInterruption(assembly!, first.state, first.interruptions[0]!, "alice");
    expect(outcome).toEqual({});
    const resumed = await run(agent, first.state);
    expect(resumed.finalOutput).toBe("done");
    expect(ran).toEqual(["transfer 5 to bob"]);
    expect(lookupRan).toEqual(["a-2"]);
    const results = toolResultsSentOn(model, 1);
    expect(results).toContainEqual({ callId: "call-secret", output: "secret accounts are off limits" });
    expect(results).toContainEqual({ callId: "call-open", output: "account a-2: ok" });
  });

  it("a denial wins over the tool's own needsApproval: nobody is asked, the model reads the denial", async () => {
    await govern();
    const { ran, transfer } = bankTools({ transferNeedsApproval: true });
    const model = new ScriptedModel([
      [functionCall("transfer", { amount: 900, to: "eve" }, { callId: "call-big" })],
      [assistantMessage("ok")],
    ]);
    const result = await run(new Agent({ name: "payer", model, tools: [transfer] }), "pay");
    expect(result.interruptions).toHaveLength(0);
    expect(ran).toEqual([]);
    expect(toolResultsSentOn(model, 1)[0]!.output).toContain("args.amount lt 100 (actual: 900)");
  });

  it("governs streamed runs and agents exposed as tools (agent.asTool())", async () => {
    await govern();
    const { ran, transfer } = bankTools();
    const expertModel = new ScriptedModel([[assistantMessage("the expert says hi")]]);
    const expert = new Agent({ name: "expert", model: expertModel }).asTool({
      toolName: "ask_expert",
      toolDescription: "ask the expert",
    });
    const model = new ScriptedModel([
      [
        functionCall("ask_expert", { input: "hello" }, { callId: "call-expert" }),
        functionCall("transfer", { amount: 20, to: "bob" }, { callId: "call-pay" }),
      ],
      [assistantMessage("done")],
    ]);
    const streamed = await run(new Agent({ name: "payer", model, tools: [expert, transfer] }), "go", {
      stream: true,
    });
    for await (const _event of streamed) {
      // drain the stream
    }
    await streamed.completed;
    expect(streamed.finalOutput).toBe("done");
    expect(ran).toEqual(["transfer 20 to bob"]);
    expect(expertModel.calls).toHaveLength(0);
    const results = toolResultsSentOn(model, 1);
    expect(results.find((r) => r.callId === "call-expert")!.output).toContain("NO_MATCHING_POLICY");
    expect(results).toContainEqual({ callId: "call-pay", output: "sent 20 to bob" });
  });

  it("observe mode runs everything and records the would-be denial", async () => {
    const context = await govern({ enforcementMode: "observe" });
    const { ran, transfer } = bankTools();
    const model = new ScriptedModel([
      [functionCall("transfer", { amount: 500, to: "bob" }, { callId: "c-1" })],
      [assistantMessage("ok")],
    ]);
    await run(new Agent({ name: "payer", model, tools: [transfer] }), "pay");
    expect(ran).toEqual(["transfer 500 to bob"]);
    const records = (await context.audit()).items;
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      tool_call_id: "c-1",
      status: "executed",
      mode: "observe",
      shadow: { status: "denied", denialReason: "CONDITIONS_DENIED" },
    });
  });

  it("shutdown restores getAllTools and the tools exactly; tools obtained after shutdown are ungoverned", async () => {
    const context = await govern();
    const { ran, transfer } = bankTools();
    const ownNeedsApproval = transfer.needsApproval;
    const ownGuardrails = transfer.inputGuardrails;
    const agent = new Agent({ name: "payer", tools: [transfer] });
    await agent.getAllTools(undefined as never);
    expect(Agent.prototype.getAllTools).not.toBe(ORIGINAL_GET_ALL_TOOLS);
    expect(transfer.needsApproval).not.toBe(ownNeedsApproval);
    expect(transfer.inputGuardrails?.map((g) => g.name)).toEqual([GUARDRAIL_NAME]);

    await context.shutdown();
    assembly = undefined;
    expect(Agent.prototype.getAllTools).toBe(ORIGINAL_GET_ALL_TOOLS);
    expect(transfer.needsApproval).toBe(ownNeedsApproval);
    expect(transfer.inputGuardrails).toBe(ownGuardrails);

    const model = new ScriptedModel([
      [functionCall("transfer", { amount: 500, to: "bob" }, { callId: "c-after" })],
      [assistantMessage("ok")],
    ]);
    await run(new Agent({ name: "payer", model, tools: [transfer] }), "pay");
    expect(ran).toEqual(["transfer 500 to bob"]);
    expect(transfer.inputGuardrails).toBe(ownGuardrails);
  });
});

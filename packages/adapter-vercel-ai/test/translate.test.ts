/** The pure translation rules: status normalisation, composition, resume detection, the gate-answer helper. */
import { ConfigurationError } from "@aa/core";
import { describe, expect, it } from "vitest";
import { governedToolApproval } from "../src/approval.js";
import { answerGateApproval } from "../src/held-calls.js";
import { composeStatuses, isApprovedResume, normalizeStatus, toToolCall } from "../src/translate.js";

describe("normalizeStatus", () => {
  it("follows the SDK: undefined is not-applicable, strings become {type}", () => {
    expect(normalizeStatus(undefined)).toEqual({ type: "not-applicable" });
    expect(normalizeStatus("approved")).toEqual({ type: "approved" });
    expect(normalizeStatus({ type: "denied", reason: "no" })).toEqual({ type: "denied", reason: "no" });
  });

  it("rejects what is not a ToolApprovalStatus, naming it", () => {
    expect(() => normalizeStatus("maybe")).toThrow('unknown status "maybe"');
    expect(() => normalizeStatus(42)).toThrow("toolApproval returned 42");
  });
});

describe("composeStatuses (caller, gate)", () => {
  const denied = { type: "denied", reason: "gate says no" } as const;
  it("a denial from either wins, the gate's first", () => {
    expect(composeStatuses({ type: "approved" }, denied)).toEqual(denied);
    expect(composeStatuses({ type: "denied", reason: "caller" }, denied)).toEqual(denied);
    expect(composeStatuses({ type: "denied", reason: "caller" }, { type: "not-applicable" })).toEqual({
      type: "denied",
      reason: "caller",
    });
  });

  it("then user approval from either, then the caller's approval", () => {
    expect(composeStatuses({ type: "approved" }, { type: "user-approval", reason: "held" })).toEqual({
      type: "user-approval",
      reason: "held",
    });
    expect(composeStatuses({ type: "user-approval", reason: "mine" }, { type: "not-applicable" })).toEqual({
      type: "user-approval",
      reason: "mine",
    });
    expect(composeStatuses({ type: "approved", reason: "ok" }, { type: "not-applicable" })).toEqual({
      type: "approved",
      reason: "ok",
    });
    expect(composeStatuses({ type: "not-applicable" }, { type: "not-applicable" })).toEqual({
      type: "not-applicable",
    });
  });
});

describe("isApprovedResume", () => {
  const request = {
    role: "assistant",
    content: [
      { type: "tool-call", toolCallId: "c1", toolName: "deploy", input: {} },
      { type: "tool-approval-request", approvalId: "a1", toolCallId: "c1" },
    ],
  };
  it("is true only when the trailing tool message approves this call's request", () => {
    const approved = {
      role: "tool",
      content: [{ type: "tool-approval-response", approvalId: "a1", approved: true }],
    };
    const refused = {
      role: "tool",
      content: [{ type: "tool-approval-response", approvalId: "a1", approved: false }],
    };
    expect(isApprovedResume([request, approved], "c1")).toBe(true);
    expect(isApprovedResume([request, approved], "c2")).toBe(false);
    expect(isApprovedResume([request, refused], "c1")).toBe(false);
    expect(isApprovedResume([approved, request], "c1")).toBe(false);
    expect(isApprovedResume(undefined, "c1")).toBe(false);
  });
});

describe("toToolCall", () => {
  it("carries name, input, id and plain-JSON tool metadata", () => {
    expect(
      toToolCall({
        toolName: "deploy",
        toolCallId: "c1",
        input: { service: "api" },
        toolMetadata: { team: "infra", fn: () => 1 },
        dynamic: true,
      }),
    ).toEqual({
      framework: "vercel-ai",
      toolName: "deploy",
      toolCallId: "c1",
      args: { service: "api" },
      metadata: { team: "infra", dynamic: true },
    });
  });

  it("fails closed: a call without a tool name is denied, the gate is not asked", async () => {
    let asked = false;
    const interceptor = {
      intercept: async <T>(_call: unknown, invoke: () => T | Promise<T>) => {
        asked = true;
        return invoke();
      },
    };
    const settings = { interceptor, approvals: "user-approval" } as const;
    const approval = governedToolApproval(undefined, settings);
    const status = await approval({ toolCall: { toolCallId: "c1", input: {} }, messages: [] });
    expect(status).toEqual({
      type: "denied",
      reason:
        "Agent Assembly could not translate this tool call, so it was not run: the tool call has no toolName",
    });
    expect(asked).toBe(false);
    // governing an already governed approval again (same settings) returns it: no double gate
    expect(governedToolApproval(approval, settings)).toBe(approval);
  });
});

describe("governedToolApproval with a malformed caller answer", () => {
  it("denies the call, naming the mistake, and does not ask the gate", async () => {
    let asked = false;
    const interceptor = {
      intercept: async <T>(_call: unknown, invoke: () => T | Promise<T>) => {
        asked = true;
        return invoke();
      },
    };
    const approval = governedToolApproval(() => "maybe", { interceptor, approvals: "user-approval" });
    const status = await approval({
      toolCall: { toolName: "lookup", toolCallId: "c1", input: {} },
      messages: [],
    });
    expect(status).toEqual({
      type: "denied",
      reason: 'Agent Assembly refused the call: toolApproval returned the unknown status "maybe"',
    });
    expect(asked).toBe(false);
  });
});

describe("answerGateApproval", () => {
  const calls: string[] = [];
  const assembly = {
    approve: async (id: string, reviewer: string) => calls.push(`approve ${id} by ${reviewer}`),
    deny: async (id: string, reviewer: string, reason?: string) =>
      calls.push(`deny ${id} by ${reviewer}: ${reason}`),
  };

  it("answers the gate's approval with the app's reviewer", async () => {
    await answerGateApproval(assembly, { approvalId: "ap1", approved: true, reviewer: "alice" });
    await answerGateApproval(assembly, { approvalId: "ap2", approved: false, reviewer: "bob", reason: "no" });
    expect(calls).toEqual(["approve ap1 by alice", "deny ap2 by bob: no"]);
    // a call the gate did not hold in this process needs no answer
    expect(
      await answerGateApproval(assembly, { toolCallId: "unknown", approved: true, reviewer: "alice" }),
    ).toBe(undefined);
  });

  it("rejects malformed answers with a ConfigurationError naming the field", async () => {
    const bad = [
      [{ approvalId: "x", approved: "yes", reviewer: "a" }, "approved"],
      [{ approvalId: "x", approved: true, reviewer: " " }, "reviewer"],
      [{ approved: true, reviewer: "a" }, "toolCallId"],
    ] as const;
    for (const [answer, option] of bad) {
      const error = await answerGateApproval(assembly, answer as never).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigurationError);
      expect(error).toMatchObject({ option });
    }
  });
});

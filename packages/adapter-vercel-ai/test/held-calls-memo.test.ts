/**
 * The process-local memo of calls answered with `user-approval` (tool-call id → idempotency key and
 * gate approval) is bounded to 10 000 calls: the oldest goes first; remembering a call again makes
 * it the newest.
 */
import { describe, expect, it } from "vitest";
import { recallCall, rememberCall } from "../src/held-calls.js";
import { gateApprovalIdFor } from "../src/index.js";

describe("held-call memo", () => {
  it("remembers the last 10 000 calls, forgetting the oldest first", () => {
    const remember = (id: string) =>
      rememberCall(id, { eventId: `event-${id}`, approvalId: `approval-${id}` });
    // 10 001 calls: the 10 001st evicts the first.
    for (let i = 0; i <= 10_000; i++) remember(`memo-${i}`);
    expect(recallCall("memo-0")).toBeUndefined();
    expect(gateApprovalIdFor("memo-0")).toBeUndefined();
    expect(recallCall("memo-1")).toEqual({ eventId: "event-memo-1", approvalId: "approval-memo-1" });
    expect(gateApprovalIdFor("memo-10000")).toBe("approval-memo-10000");
    // Remembered again, memo-1 becomes the newest: the next call evicts memo-2 instead.
    remember("memo-1");
    remember("memo-10001");
    expect(gateApprovalIdFor("memo-1")).toBe("approval-memo-1");
    expect(gateApprovalIdFor("memo-2")).toBeUndefined();
    expect(gateApprovalIdFor("memo-3")).toBe("approval-memo-3");
  });
});

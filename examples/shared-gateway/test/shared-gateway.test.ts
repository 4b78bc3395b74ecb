/**
 * End to end across processes: a real gateway process (SQLite), a real LangChain agent governed
 * through `gatewayUrl` (scripted model), and an operator approving the held release with the real
 * `aa approvals approve --gateway` from another process; then the chain verifies through the gateway.
 */
import { expect, it } from "vitest";
import { runSharedGatewayDemo } from "../dist/run.js";

it("governs a LangChain agent through a gateway process; an operator approves with aa --gateway", {
  timeout: 120_000,
}, async () => {
  const result = await runSharedGatewayDemo();
  expect(result.agent).toMatchObject({ agent: "release-bot", gate: "remote" });
  // Allowed, denied (never ran), allowed, then held, approved from another process and run once.
  expect(result.agent.ran).toEqual(["read_changes", "open_pr api", "merge_release v2.4.0"]);
  expect(result.agent.deniedMessage?.status).toBe("error");
  expect(result.agent.deniedMessage?.content).toMatch(
    /denied tool "open_pr".*args\.lines_changed lt 50 \(actual: 120\)/,
  );
  expect(result.agent.mergeMessage?.content).toBe("released v2.4.0");
  expect(result.pendingSeen).toEqual([
    expect.objectContaining({ actionType: "merge_release", agentId: "release-bot" }),
  ]);
  expect(result.approveOutput).toMatch(/approved apr_\S+ \(merge_release by release-bot\)/);
  // One chain on the gateway: 4 decisions, the approval and the release, verified.
  expect(result.auditKinds).toEqual([
    "action",
    "action",
    "action",
    "action",
    "approval.approved",
    "approval.released",
  ]);
  expect(result.verifyOutput).toMatch(/chain valid\s+6 records verified/);
});

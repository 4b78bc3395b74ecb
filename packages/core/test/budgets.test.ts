/**
 * Budgets through the governance client: the policy file's `budgets:` section denies calls over
 * the calls budget (`BUDGET_EXCEEDED`), `reserve()` / `reconcile()` hold tokens and cost, and
 * `whoami().budgets` shows the usage.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { type AssemblyContext, AssemblyDeniedError, AssemblyError, initAssembly } from "../src/index.js";

const fixtureRoot = new URL("./fixtures/host-app/", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "aa-core-budgets-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const policy = {
  version: 1,
  default: "deny",
  policies: [{ name: "reads", action: "read_*", effect: "allow" }],
  budgets: {
    calls: { limit: 2, window: "1h" },
    tokens: { limit: 1000, window: "1d" },
    cost: { limit: 0.5, window: "1d" },
  },
};

let context: AssemblyContext | undefined;
afterEach(async () => {
  await context?.shutdown().catch(() => {});
  context = undefined;
});

describe("budgets through the governance client", () => {
  it("denies calls over the calls budget with BUDGET_EXCEEDED and shows usage in whoami", async () => {
    context = await initAssembly({
      agent: { id: "bot" },
      root: fixtureRoot,
      policy,
      store: join(dir, "calls.db"),
      adapters: [],
    });
    expect((await context.whoami()).budgets.calls).toMatchObject({ limit: 2, windowMs: 3_600_000, used: 0 });
    expect(await context.execute("read_file")).toMatchObject({ status: "executed" });
    expect(await context.gate("read_file")).toMatchObject({ status: "executed" });
    expect(await context.canI("read_file")).toMatchObject({
      allowed: false,
      denialReason: "BUDGET_EXCEEDED",
    });
    const error = await context.gate("read_file").catch((e) => e);
    expect(error).toBeInstanceOf(AssemblyDeniedError);
    expect(error.reason).toBe("BUDGET_EXCEEDED");
    expect(error.message).toContain("2 executed calls per 3600000 ms");
    expect((await context.whoami()).budgets.calls).toMatchObject({ used: 2 });
    const audit = await context.audit();
    expect(audit.items.map((e) => e.denial_reason)).toEqual([null, null, "BUDGET_EXCEEDED"]);
  });

  it("reserve() holds tokens and cost before an LLM call and reconcile() records what it used", async () => {
    context = await initAssembly({
      agent: { id: "bot" },
      root: fixtureRoot,
      policy,
      store: join(dir, "tokens.db"),
      adapters: [],
    });
    const reservation = await context.reserve({ tokens: 800, cost: 0.25 });
    expect(reservation).toMatchObject({ tokens: 800, cost: 0.25 });
    expect((await context.whoami()).budgets).toMatchObject({
      tokens: { used: 0, reserved: 800 },
      cost: { used: 0, reserved: 0.25 },
    });
    const refused = await context.reserve({ tokens: 300 }).catch((e) => e);
    expect(refused).toBeInstanceOf(AssemblyError);
    expect(refused).toMatchObject({ code: "BUDGET_EXCEEDED", details: { kind: "tokens", limit: 1000 } });
    await reservation.reconcile({ tokens: 640, cost: 0.2 });
    expect((await context.whoami()).budgets).toMatchObject({
      tokens: { used: 640, reserved: 0 },
      cost: { used: 0.2, reserved: 0 },
    });
    await expect(reservation.reconcile({ tokens: 1 })).rejects.toMatchObject({
      code: "RESERVATION_NOT_FOUND",
    });
    await expect(context.reserve({ tokens: -5 })).rejects.toMatchObject({ code: "INVALID_REQUEST" });
    const next = await context.reserve({ tokens: 360 });
    await next.reconcile({ tokens: 360 });
    await expect(context.reserve({ tokens: 1 })).rejects.toMatchObject({ code: "BUDGET_EXCEEDED" });
  });
});

/**
 * The example for real: the Express app on a loopback port, a LangChain agent (scripted model)
 * acting for whoever is logged in, governed by the example's aa.policy.yaml.
 */
import type { AddressInfo } from "node:net";
import { type AssemblyContext, initAssembly } from "@aa/core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createApp } from "../src/app.js";

const root = new URL("..", import.meta.url).pathname;
let assembly: AssemblyContext;
let base: string;
let close: () => Promise<void>;
beforeAll(async () => {
  assembly = await initAssembly({ agent: { id: "support-agent" }, root, store: ":memory:" });
  const server = createApp(assembly).listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  close = () => new Promise<void>((resolve) => server.close(() => resolve()));
});
afterAll(async () => {
  await close();
  await assembly.shutdown();
});

const refund = async (token: string | undefined, amount: number) => {
  const response = await fetch(`${base}/support/refund`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ order: "A-1001", amount }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
};

it("the agent acts for the logged-in user: their scopes decide, the audit names them", async () => {
  expect(assembly.adapters).toContainEqual(
    expect.objectContaining({ name: "langchain", status: "installed" }),
  );
  // Ada may refund: the agent's refund runs.
  const ada = await refund("session-ada", 50);
  expect(ada).toMatchObject({
    status: 200,
    body: { ran: ["lookup_order A-1001", "refund_order A-1001 50"], refund: { status: "success" } },
  });
  // Bo may read orders but not refund: the same agent's refund is denied, and the model is told why.
  const bo = await refund("session-bo", 50);
  expect(bo.status).toBe(200);
  expect(bo.body.ran).toEqual(["lookup_order A-1001"]);
  expect(bo.body.refund).toMatchObject({ status: "error" });
  expect((bo.body.refund as { content: string }).content).toContain(
    'user.scopes has_scope "payments:refund"',
  );
  // Nobody logged in: the route itself refuses (requireAgentPermission).
  const anonymous = await refund(undefined, 50);
  expect(anonymous).toMatchObject({ status: 401, body: { error: { code: "UNAUTHENTICATED" } } });

  const audit = (await (await fetch(`${base}/audit`)).json()) as {
    tool: string;
    status: string;
    reason: string | null;
    user: string | null;
  }[];
  expect(audit).toEqual([
    { tool: "lookup_order", status: "executed", reason: null, user: "ada" },
    { tool: "refund_order", status: "executed", reason: null, user: "ada" },
    { tool: "lookup_order", status: "executed", reason: null, user: "bo" },
    { tool: "refund_order", status: "denied", reason: "CONDITIONS_DENIED", user: "bo" },
  ]);
  expect((await assembly.verify()).chainValid).toBe(true);
});

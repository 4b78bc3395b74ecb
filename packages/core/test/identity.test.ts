/**
 * Acting on behalf of people through core: `runAs` (ambient, AsyncLocalStorage) and `onBehalfOf`
 * (per call) reach every governed call (the interceptor, execute/gate/canI), survive async hops,
 * and only ever narrow. On a real embedded engine (SQLite file).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  type AssemblyContext,
  AssemblyDeniedError,
  currentPrincipal,
  initAssembly,
  type Principal,
  runAs,
} from "../src/index.js";
import { capturingAdapter } from "./capturing-adapter.js";

const fixtureRoot = new URL("./fixtures/host-app/", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "aa-core-identity-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TOOLS = ["flights_book", "flights_cancel", "hotels_book", "payments_refund"] as const;
const SCOPE_OF: Record<(typeof TOOLS)[number], string> = {
  flights_book: "flights:book",
  flights_cancel: "flights:cancel",
  hotels_book: "hotels:book",
  payments_refund: "payments:refund",
};
const policy = {
  version: 1,
  default: "deny",
  policies: [
    ...TOOLS.map((tool) => ({
      name: tool,
      action: tool,
      effect: "allow",
      required_scopes: [SCOPE_OF[tool]],
    })),
    { name: "search", action: "search", effect: "allow" },
  ],
};

let context: AssemblyContext | undefined;
afterEach(async () => {
  await context?.shutdown().catch(() => {});
  context = undefined;
});

async function setup(extraPolicy: Record<string, unknown> = {}) {
  const adapter = capturingAdapter();
  context = await initAssembly({
    agent: { id: "travel-agent" },
    root: fixtureRoot,
    policy: { ...policy, ...extraPolicy },
    store: join(dir, `identity-${Math.random()}.db`),
    adapters: [adapter],
  });
  const interceptor = adapter.interceptor!;
  const tool = (toolName: string) =>
    interceptor.intercept({ framework: "test", toolName, args: {} }, () => `${toolName} done`);
  return { ctx: context, tool };
}

const ada: Principal = { userId: "ada", email: "ada@example.com", tenant: "acme", scopes: ["flights:*"] };

describe("runAs and onBehalfOf", () => {
  it("every governed call inside runAs carries the user: tool calls, execute, gate, canI", async () => {
    const { ctx, tool } = await setup();
    await ctx.runAs(ada, async () => {
      expect(currentPrincipal()).toEqual(ada);
      await expect(tool("flights_book")).resolves.toBe("flights_book done");
      const denied = await tool("hotels_book").catch((e: unknown) => e);
      expect(denied).toBeInstanceOf(AssemblyDeniedError);
      expect((denied as AssemblyDeniedError).reason).toBe("CONDITIONS_DENIED");
      expect((denied as AssemblyDeniedError).message).toContain(
        'Failed conditions: user.scopes has_scope "hotels:book" (actual: ["flights:*"])',
      );
      expect(await ctx.execute("flights_cancel")).toMatchObject({ status: "executed" });
      await expect(ctx.gate("flights_book")).resolves.toMatchObject({ status: "executed" });
      expect(await ctx.canI("payments_refund")).toMatchObject({
        allowed: false,
        denialReason: "CONDITIONS_DENIED",
      });
    });
    // Outside runAs no one is named: rules that need a user deny UNAUTHENTICATED.
    expect(currentPrincipal()).toBeUndefined();
    const anonymous = await tool("flights_book").catch((e: unknown) => e);
    expect(anonymous).toMatchObject({ reason: "UNAUTHENTICATED" });
    expect(await ctx.execute("search")).toMatchObject({ status: "executed" });
    const records = (await ctx.audit()).items;
    expect(records.map((r) => [r.action_type, r.user?.id ?? null])).toEqual([
      ["flights_book", "ada"],
      ["hotels_book", "ada"],
      ["flights_cancel", "ada"],
      ["flights_book", "ada"],
      ["flights_book", null],
      ["search", null],
    ]);
    expect(records[0]!.user).toEqual({ id: "ada", email: "ada@example.com", tenant: "acme" });
  });

  it("assembly.hasPermission checks the ambient user's scopes with wildcards", async () => {
    const { ctx } = await setup();
    expect(ctx.hasPermission("flights:book")).toBe(false);
    await ctx.runAs(ada, async () => {
      expect(ctx.hasPermission("flights:book")).toBe(true);
      expect(ctx.hasPermission("flights:cancel:all")).toBe(true);
      expect(ctx.hasPermission("hotels:book")).toBe(false);
      expect(ctx.hasPermission("not a permission")).toBe(false);
    });
  });

  it("survives async hops: timers, Promise.all, nested async work (what sub-agents do)", async () => {
    const { ctx, tool } = await setup();
    const subAgent = async (name: string) => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      await Promise.resolve();
      return [name, currentPrincipal()?.userId, await tool("flights_book")];
    };
    const results = await runAs(ada, () =>
      Promise.all([subAgent("a"), subAgent("b"), (async () => subAgent("c"))()]),
    );
    expect(results).toEqual([
      ["a", "ada", "flights_book done"],
      ["b", "ada", "flights_book done"],
      ["c", "ada", "flights_book done"],
    ]);
    expect((await ctx.audit()).items.every((r) => r.user?.id === "ada")).toBe(true);
  });

  it("onBehalfOf names the user per call; inside runAs it may only narrow", async () => {
    const { ctx } = await setup();
    expect(
      await ctx.execute("hotels_book", { onBehalfOf: { userId: "bo", scopes: ["hotels:*"] } }),
    ).toMatchObject({
      status: "executed",
    });
    await ctx.runAs(ada, async () => {
      // Same user asking for more than runAs granted: the scopes are intersected, so no widening.
      const wider = await ctx.execute("hotels_book", {
        onBehalfOf: { userId: "ada", scopes: ["hotels:*", "flights:book"] },
      });
      expect(wider).toMatchObject({ status: "denied", denialReason: "CONDITIONS_DENIED" });
      const narrowed = await ctx.canI("flights_cancel", {
        onBehalfOf: { userId: "ada", scopes: ["flights:book"] },
      });
      expect(narrowed.allowed).toBe(false);
      expect(
        (await ctx.canI("flights_book", { onBehalfOf: { userId: "ada", scopes: ["flights:book"] } })).allowed,
      ).toBe(true);
      // Another user is refused outright.
      await expect(ctx.execute("search", { onBehalfOf: { userId: "mallory" } })).rejects.toMatchObject({
        code: "PRINCIPAL_MISMATCH",
      });
      expect(() => runAs({ userId: "ada", tenant: "globex" }, () => 1)).toThrow(
        expect.objectContaining({ code: "PRINCIPAL_MISMATCH" }),
      );
      // A nested runAs for the same user narrows for the code inside it only.
      await runAs({ userId: "ada", scopes: ["flights:cancel", "payments:refund"] }, async () => {
        expect(currentPrincipal()).toEqual({
          userId: "ada",
          email: "ada@example.com",
          tenant: "acme",
          scopes: ["flights:cancel"],
        });
        expect((await ctx.canI("payments_refund")).allowed).toBe(false);
      });
      expect(currentPrincipal()?.scopes).toEqual(["flights:*"]);
    });
    expect((await ctx.audit()).items.map((r) => r.user?.id)).toEqual(["bo", "ada"]);
  });

  it("rejects malformed principals with INVALID_PRINCIPAL naming the field", async () => {
    const { ctx } = await setup();
    expect(() => runAs({ userId: "" }, () => 1)).toThrow(
      expect.objectContaining({ code: "INVALID_PRINCIPAL" }),
    );
    expect(() => runAs({ userId: "u", scopes: ["a b"] }, () => 1)).toThrow(/principal\.scopes/);
    expect(() => runAs(null as unknown as Principal, () => 1)).toThrow(
      expect.objectContaining({ code: "INVALID_PRINCIPAL" }),
    );
    await expect(
      ctx.execute("search", { onBehalfOf: { userId: 5 } as unknown as Principal }),
    ).rejects.toMatchObject({
      code: "INVALID_PRINCIPAL",
      message: expect.stringContaining("onBehalfOf.userId"),
    });
    // The principal is copied and frozen: changing the caller's object later changes nothing.
    const mutable: Principal = { userId: "ada", scopes: ["flights:book"] };
    await runAs(mutable, async () => {
      mutable.userId = "eve";
      mutable.scopes!.push("*");
      expect(currentPrincipal()).toEqual({ userId: "ada", scopes: ["flights:book"] });
    });
  });
});

describe("narrowing, never widening (property)", () => {
  type Tree = { scopes: string[]; children: Tree[] };
  const scopePool = fc.constantFrom(
    "flights:*",
    "flights:book",
    "flights:cancel",
    "hotels:book",
    "payments:refund",
    "*",
  );
  const tree: fc.Arbitrary<Tree> = fc.letrec<{ node: Tree }>((tie) => ({
    node: fc.record({
      scopes: fc.uniqueArray(scopePool, { maxLength: 4 }),
      children: fc.oneof(
        { depthSize: "small", withCrossShrink: true },
        fc.constant([]),
        fc.array(tie("node"), { maxLength: 2 }),
      ),
    }),
  })).node;

  it("a tool the user may not use stays forbidden in every sub-agent, at any depth (up to 8)", async () => {
    const { ctx } = await setup();
    const allowedTools = async () => {
      const out = new Set<string>();
      for (const tool of TOOLS) if ((await ctx.canI(tool)).allowed) out.add(tool);
      return out;
    };
    let deepest = 0;
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(scopePool, { maxLength: 3 }), tree, async (userScopes, root) => {
        const walk = async (node: Tree, depth: number, parentAllowed: Set<string>): Promise<void> => {
          if (depth > 8) return;
          deepest = Math.max(deepest, depth);
          // Each hop tries to act with its own scopes (possibly wider than it was given): runAs narrows.
          await runAs({ userId: "ada", scopes: node.scopes }, async () => {
            const allowed = await allowedTools();
            for (const tool of allowed)
              expect(parentAllowed.has(tool), `${tool} widened at depth ${depth}`).toBe(true);
            for (const child of node.children) await walk(child, depth + 1, allowed);
          });
        };
        await runAs({ userId: "ada", scopes: userScopes }, async () => {
          const userAllowed = await allowedTools();
          for (const tool of TOOLS) {
            const userHolds = userScopes.some(
              (s) => s === "*" || s === SCOPE_OF[tool] || s === `${SCOPE_OF[tool].split(":")[0]}:*`,
            );
            expect(userAllowed.has(tool)).toBe(userHolds);
          }
          await walk(root, 1, userAllowed);
        });
      }),
      { numRuns: 40 },
    );
    expect(deepest).toBeGreaterThanOrEqual(3);
  });
});

describe("rate limits under fan-out", () => {
  it("parallel workers acting for one user cannot exceed the user's limit; another user has their own", async () => {
    const { ctx, tool } = await setup({ rate_limits: { user: { limit: 5, window: "1h" } } });
    const worker = (n: number) =>
      (async () => {
        await new Promise((resolve) => setTimeout(resolve, n % 3));
        return tool("flights_book").then(
          () => "executed",
          (error: AssemblyDeniedError) => error.reason,
        );
      })();
    const [adaResults, boResults] = await Promise.all([
      runAs(ada, () => Promise.all(Array.from({ length: 12 }, (_, n) => worker(n)))),
      runAs({ userId: "bo", scopes: ["flights:book"] }, () =>
        Promise.all(Array.from({ length: 3 }, (_, n) => worker(n))),
      ),
    ]);
    expect(adaResults.filter((r) => r === "executed")).toHaveLength(5);
    expect(adaResults.filter((r) => r === "RATE_LIMITED")).toHaveLength(7);
    expect(boResults).toEqual(["executed", "executed", "executed"]);
    const denial = (await ctx.audit({ limit: 100 })).items.find((r) => r.denial_reason === "RATE_LIMITED");
    expect(denial?.user?.id).toBe("ada");
  });
});

describe("through delegation (delegate / parallel)", () => {
  it("a child's tool calls keep the user; authority is the user's scopes ∩ the child's capabilities", async () => {
    const { ctx, tool } = await setup();
    await ctx.runAs(ada, async () => {
      await using child = await ctx.delegate("booker", { capabilities: ["flights_book", "hotels_book"] });
      const results = await child.run(async () =>
        Promise.all(
          ["flights_book", "flights_cancel", "hotels_book"].map((name) =>
            tool(name).then(
              () => "executed",
              (error: AssemblyDeniedError) => error.reason,
            ),
          ),
        ),
      );
      // flights_book: scope and capability; flights_cancel: scope, no capability; hotels_book: capability, no scope.
      expect(results).toEqual(["executed", "NOT_DELEGATED", "CONDITIONS_DENIED"]);
      // The child's own client acts for the same user too, and cannot switch users.
      expect(await child.execute("flights_book")).toMatchObject({ status: "executed" });
      await expect(
        child.execute("flights_book", { onBehalfOf: { userId: "mallory" } }),
      ).rejects.toMatchObject({
        code: "PRINCIPAL_MISMATCH",
      });
    });
    const records = (await ctx.audit({ limit: 100 })).items.filter((r) => r.kind === "action");
    expect(records.map((r) => [r.agent, r.tier, r.user?.id])).toEqual([
      ["travel-agent/booker", "sub-agent", "ada"],
      ["travel-agent/booker", "sub-agent", "ada"],
      ["travel-agent/booker", "sub-agent", "ada"],
      ["travel-agent/booker", "sub-agent", "ada"],
    ]);
  });

  it("parallel(...) workers acting for one user cannot exceed the user's rate limit", async () => {
    const { ctx, tool } = await setup({ rate_limits: { user: { limit: 4, window: "1h" } } });
    const specs = Array.from({ length: 5 }, (_, i) => ({ name: `worker-${i}`, capabilities: ["flights_*"] }));
    const perWorker = await ctx.runAs(ada, () =>
      ctx.parallel(specs, (child) =>
        child.run(() =>
          Promise.all(
            [1, 2, 3].map(() =>
              tool("flights_book").then(
                () => "executed",
                (error: AssemblyDeniedError) => error.reason,
              ),
            ),
          ),
        ),
      ),
    );
    const all = perWorker.flat();
    expect(all.filter((r) => r === "executed")).toHaveLength(4);
    expect(all.filter((r) => r === "RATE_LIMITED")).toHaveLength(11);
    const limited = (await ctx.audit({ limit: 100 })).items.filter((r) => r.denial_reason === "RATE_LIMITED");
    expect(new Set(limited.map((r) => r.user?.id))).toEqual(new Set(["ada"]));
    expect(limited.every((r) => r.tier === "sub-agent")).toBe(true);
  });
});

describe("with a gateway", () => {
  it("sends the ambient principal with each decision (the gateway's engine applies it)", async () => {
    const { startLoopbackGateway, errorBody, executed, WHOAMI } = await import("./loopback-gateway.js");
    const KEY = "aa_agent_k1_secretsecret";
    const gateway = await startLoopbackGateway((r) => {
      if (r.headers.authorization !== `Bearer ${KEY}`)
        return { status: 401, body: errorBody("UNAUTHENTICATED", "no") };
      if (r.path === "/v1/whoami") return { status: 200, body: WHOAMI };
      if (r.path === "/v1/actions") return { status: 200, body: executed() };
      return { status: 404, body: errorBody("NOT_FOUND", r.path) };
    });
    try {
      const adapter = capturingAdapter();
      context = await initAssembly({
        root: fixtureRoot,
        gatewayUrl: gateway.url,
        apiKey: KEY,
        adapters: [adapter],
      });
      await runAs(ada, () =>
        adapter.interceptor!.intercept({ framework: "test", toolName: "flights_book", args: {} }, () => "ok"),
      );
      await context.execute("search");
      const bodies = gateway.requests.filter((r) => r.path === "/v1/actions").map((r) => r.body);
      expect(bodies).toMatchObject([
        { actionType: "flights_book", principal: ada },
        { actionType: "search" },
      ]);
      expect(bodies[1]).not.toHaveProperty("principal");
    } finally {
      await context?.shutdown().catch(() => {});
      context = undefined;
      await gateway.close();
    }
  });
});

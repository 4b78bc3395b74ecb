/**
 * The middleware on real Express, Fastify and Hono servers over loopback HTTP, with a real
 * embedded assembly: the principal set from the authenticated request reaches the route and every
 * governed call it makes, concurrent requests never see each other's user, and
 * requireAgentPermission answers 401 / 403 JSON.
 */
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { type AssemblyContext, currentPrincipal, initAssembly, type Principal } from "@aa/core";
import { serve } from "@hono/node-server";
import express from "express";
import fastify from "fastify";
import { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as forExpress from "../src/express.js";
import * as forFastify from "../src/fastify.js";
import * as forHono from "../src/hono.js";

const USERS: Record<string, Principal> = {
  "token-ada": {
    userId: "ada",
    email: "ada@acme.test",
    tenant: "acme",
    scopes: ["payments:*", "orders:read"],
  },
  "token-bo": { userId: "bo", tenant: "acme", scopes: ["orders:read"] },
  "token-cy": { userId: "cy", tenant: "globex", scopes: ["payments:refund"] },
};
const userOf = (authorization: string | undefined) => USERS[authorization?.replace(/^Bearer /, "") ?? ""];

let assembly: AssemblyContext;
beforeAll(async () => {
  assembly = await initAssembly({
    agent: { id: "support-agent" },
    root: new URL("..", import.meta.url).pathname,
    store: ":memory:",
    adapters: [],
    policy: {
      version: 1,
      default: "deny",
      policies: [
        {
          name: "refunds",
          action: "refund",
          effect: "allow",
          required_scopes: ["payments:refund"],
          when: [{ field: "user.tenant", op: "eq", value: "acme" }],
        },
      ],
    },
  });
});
afterAll(async () => {
  await assembly.shutdown();
});

/** What every app's routes do, whatever the framework. */
const routes = {
  async whoami() {
    await sleep(Math.floor(Math.random() * 10));
    return { userId: currentPrincipal()?.userId ?? null };
  },
  async refund() {
    const result = await assembly.execute("refund");
    const record = (await assembly.audit({ limit: 1000 })).items.find((r) => r.id === result.auditEventId);
    return { status: result.status, user: record?.user ?? null };
  },
};

interface Server {
  url: string;
  close(): Promise<void>;
}

const servers: Record<string, () => Promise<Server>> = {
  async express() {
    const app = express();
    app.use(forExpress.setPrincipal((req) => userOf(req.headers.authorization)));
    app.get("/whoami", async (_req, res) => {
      res.json(await routes.whoami());
    });
    app.post("/refunds", forExpress.requireAgentPermission("payments:refund"), async (_req, res) => {
      res.json(await routes.refund());
    });
    app.post(
      "/refunds-checked",
      forExpress.requireAgentPermission("payments:refund", { action: "refund" }),
      async (_req, res) => {
        res.json(await routes.refund());
      },
    );
    const server = app.listen(0, "127.0.0.1");
    await new Promise((resolve) => server.once("listening", resolve));
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
  },
  async fastify() {
    const app = fastify();
    app.addHook(
      "preHandler",
      forFastify.setPrincipal((request) => userOf(request.headers.authorization)),
    );
    app.get("/whoami", () => routes.whoami());
    app.post("/refunds", { preHandler: forFastify.requireAgentPermission("payments:refund") }, () =>
      routes.refund(),
    );
    app.post(
      "/refunds-checked",
      { preHandler: forFastify.requireAgentPermission("payments:refund", { action: "refund" }) },
      () => routes.refund(),
    );
    const url = await app.listen({ port: 0, host: "127.0.0.1" });
    return { url, close: () => app.close() };
  },
  async hono() {
    const app = new Hono();
    app.use(forHono.setPrincipal((c) => userOf(c.req.header("authorization"))));
    app.get("/whoami", async (c) => c.json(await routes.whoami()));
    app.post("/refunds", forHono.requireAgentPermission("payments:refund"), async (c) =>
      c.json(await routes.refund()),
    );
    app.post(
      "/refunds-checked",
      forHono.requireAgentPermission("payments:refund", { action: "refund" }),
      async (c) => c.json(await routes.refund()),
    );
    const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" });
    await new Promise((resolve) => server.once("listening", resolve));
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
  },
};

describe.each(Object.keys(servers))("%s", (framework) => {
  let server: Server;
  beforeAll(async () => {
    server = await servers[framework]!();
  });
  afterAll(async () => {
    await server.close();
  });
  const call = async (method: string, path: string, token?: string) => {
    const response = await fetch(server.url + path, {
      method,
      headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  it("each concurrent request sees its own user, and anonymous requests none", async () => {
    const tokens = ["token-ada", "token-bo", undefined, "token-cy"];
    const requests = Array.from({ length: 24 }, (_, i) => tokens[i % tokens.length]);
    const answers = await Promise.all(requests.map((token) => call("GET", "/whoami", token)));
    expect(answers.map((a) => a.body.userId)).toEqual(
      requests.map((token) => (token ? userOf(token)!.userId : null)),
    );
  });

  it("requireAgentPermission: 401 without a user, 403 without the permission, else the governed call runs for the user", async () => {
    const anonymous = await call("POST", "/refunds");
    expect(anonymous).toMatchObject({
      status: 401,
      body: { error: { code: "UNAUTHENTICATED", details: { permission: "payments:refund" } } },
    });
    const bo = await call("POST", "/refunds", "token-bo");
    expect(bo).toMatchObject({
      status: 403,
      body: {
        error: { code: "PERMISSION_DENIED", details: { permission: "payments:refund", userId: "bo" } },
      },
    });
    expect((bo.body.error as { message: string }).message).toBe(
      "User bo does not hold the permission payments:refund",
    );
    const ada = await call("POST", "/refunds", "token-ada");
    expect(ada).toEqual({
      status: 200,
      body: { status: "executed", user: { id: "ada", email: "ada@acme.test", tenant: "acme" } },
    });
  });

  it("with action, the agent must also be allowed by the gate for that user", async () => {
    // cy holds the permission, but the policy allows refunds for acme users only.
    const cy = await call("POST", "/refunds-checked", "token-cy");
    expect(cy).toMatchObject({
      status: 403,
      body: {
        error: {
          code: "PERMISSION_DENIED",
          details: { action: "refund", denialReason: "CONDITIONS_DENIED", userId: "cy" },
        },
      },
    });
    expect((await call("POST", "/refunds-checked", "token-ada")).status).toBe(200);
  });
});

describe("setup errors", () => {
  it("a malformed permission or resolver fails when the route is defined, not per request", () => {
    expect(() => forExpress.requireAgentPermission("payments refund")).toThrow(
      expect.objectContaining({ code: "INVALID_PERMISSION" }),
    );
    expect(() => forHono.requireAgentPermission("")).toThrow(/must not be empty/);
    expect(() => forFastify.setPrincipal("user" as never)).toThrow(
      expect.objectContaining({ code: "INVALID_REQUEST" }),
    );
  });
});

/**
 * Egress on the client side, over loopback: `mode: "proxy"` routes the global `fetch` and the
 * children's HTTP_PROXY through a proxy (here a small recording forward proxy; the real `aa proxy`
 * is exercised end to end in @aa/cli's tests), and `shutdown()` puts back exactly what was there.
 * The governed `fetch` decides before anything leaves the process.
 */
import { once } from "node:events";
import { mkdtempSync } from "node:fs";
import { createServer, request as httpRequest, type IncomingMessage, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getGlobalDispatcher } from "undici";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { installEgressProxy, PROXY_ENV_VARIABLES } from "../src/egress.js";
import { type AssemblyContext, AssemblyDeniedError, AssemblyError, initAssembly } from "../src/index.js";

const policy = {
  version: 1,
  default: "deny",
  policies: [
    {
      name: "egress-loopback",
      action: "http.request",
      effect: "allow",
      when: [{ field: "args.host", op: "in", value: ["127.0.0.1"] }],
    },
  ],
};

let upstream: Server;
let upstreamUrl: string;
const upstreamSeen: string[] = [];
/** A minimal forward proxy that records the absolute URIs it forwards. */
let recorder: Server;
let recorderUrl: string;
const proxied: { url: string; proxyAuthorization: string | undefined }[] = [];

async function listen(server: Server): Promise<string> {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

beforeAll(async () => {
  upstream = createServer((req, res) => {
    upstreamSeen.push(`${req.method} ${req.url}`);
    res.end(`hello from upstream ${req.url}`);
  });
  upstreamUrl = await listen(upstream);
  recorder = createServer((req: IncomingMessage, res) => {
    proxied.push({ url: req.url ?? "", proxyAuthorization: req.headers["proxy-authorization"] });
    const target = new URL(req.url ?? "");
    const forwarded = httpRequest(
      { host: target.hostname, port: target.port, path: target.pathname + target.search, method: req.method },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, { "x-recorded": "yes" });
        answer.pipe(res);
      },
    );
    req.pipe(forwarded);
  });
  recorderUrl = await listen(recorder);
});

afterAll(async () => {
  upstream.closeAllConnections();
  recorder.closeAllConnections();
  await new Promise((r) => upstream.close(r));
  await new Promise((r) => recorder.close(r));
});

let context: AssemblyContext | undefined;
afterEach(async () => {
  await context?.shutdown().catch(() => {});
  context = undefined;
});

const root = () => mkdtempSync(join(tmpdir(), "aa-core-egress-"));

describe('mode "proxy"', () => {
  it("routes the global fetch and the children's proxy variables through the proxy until shutdown", async () => {
    const dispatcherBefore = getGlobalDispatcher();
    const envBefore = Object.fromEntries(PROXY_ENV_VARIABLES.map((n) => [n, process.env[n]]));
    const proxyUrl = recorderUrl.replace("://", "://agent:s3cret@");
    context = await initAssembly({
      mode: "proxy",
      proxyUrl,
      agent: { id: "bot" },
      root: root(),
      policy,
      store: ":memory:",
      adapters: [],
    });
    for (const name of PROXY_ENV_VARIABLES) expect(process.env[name]).toBe(proxyUrl);
    expect(getGlobalDispatcher()).not.toBe(dispatcherBefore);

    const response = await fetch(`${upstreamUrl}/through?x=1`);
    expect(await response.text()).toBe("hello from upstream /through?x=1");
    expect(response.headers.get("x-recorded")).toBe("yes");
    expect(proxied.at(-1)).toEqual({
      url: `${upstreamUrl}/through?x=1`,
      proxyAuthorization: `Basic ${Buffer.from("agent:s3cret").toString("base64")}`,
    });

    await context.shutdown();
    context = undefined;
    expect(getGlobalDispatcher()).toBe(dispatcherBefore);
    expect(Object.fromEntries(PROXY_ENV_VARIABLES.map((n) => [n, process.env[n]]))).toEqual(envBefore);
    const count = proxied.length;
    expect(await (await fetch(`${upstreamUrl}/direct`)).text()).toBe("hello from upstream /direct");
    expect(proxied.length).toBe(count);
  });

  it('mode "auto" uses AA_PROXY_URL, and leaves a variable someone else changed meanwhile', async () => {
    process.env.AA_PROXY_URL = recorderUrl;
    const before = process.env.HTTPS_PROXY;
    try {
      context = await initAssembly({
        agent: { id: "bot" },
        root: root(),
        policy,
        store: ":memory:",
        adapters: [],
      });
      expect(process.env.HTTP_PROXY).toBe(recorderUrl);
      process.env.HTTPS_PROXY = "http://someone-else:1";
      await context.shutdown();
      context = undefined;
      expect(process.env.HTTPS_PROXY).toBe("http://someone-else:1");
      expect(process.env.HTTP_PROXY).toBe(undefined);
    } finally {
      delete process.env.AA_PROXY_URL;
      if (before === undefined) delete process.env.HTTPS_PROXY;
      else process.env.HTTPS_PROXY = before;
    }
  });

  it("installs all or nothing: a failure leaves the dispatcher and every variable as they were", () => {
    const dispatcherBefore = getGlobalDispatcher();
    const values: Record<string, string | undefined> = { HTTP_PROXY: "http://old:1" };
    const env = new Proxy(values, {
      set(target, name, value) {
        if (name === "https_proxy") throw new Error("read-only environment");
        target[name as string] = value;
        return true;
      },
    }) as NodeJS.ProcessEnv;
    expect(() => installEgressProxy(recorderUrl, env)).toThrow(/read-only environment/);
    expect({ ...values }).toEqual({ HTTP_PROXY: "http://old:1" });
    expect(getGlobalDispatcher()).toBe(dispatcherBefore);
  });
});

describe("governed fetch", () => {
  it("sends an allowed request once decided, and denies another host before anything leaves", async () => {
    context = await initAssembly({
      mode: "sdk-only",
      agent: { id: "bot" },
      root: root(),
      policy,
      store: ":memory:",
      adapters: [],
    });
    const allowed = await context.fetch(`${upstreamUrl}/governed`, { method: "POST", body: "x" });
    expect(await allowed.text()).toBe("hello from upstream /governed");

    const seen = upstreamSeen.length;
    const port = new URL(upstreamUrl).port;
    const denied = await context.fetch(`http://localhost:${port}/nope`).catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(AssemblyDeniedError);
    expect(denied).toMatchObject({
      reason: "CONDITIONS_DENIED",
      policy: "egress-loopback",
      conditions: [expect.objectContaining({ field: "args.host", actual: "localhost", result: false })],
    });
    expect(upstreamSeen.length).toBe(seen);

    const page = await context.audit({ actionType: "http.request" });
    expect(page.items.map((e) => [e.status, e.args])).toEqual([
      [
        "executed",
        {
          method: "POST",
          scheme: "http",
          host: "127.0.0.1",
          port: Number(port),
          url: `${upstreamUrl}/governed`,
          path: "/governed",
        },
      ],
      ["denied", expect.objectContaining({ host: "localhost", method: "GET" })],
    ]);
    expect((await context.verify()).chainValid).toBe(true);
  });

  it("takes a Request, and refuses a URL that is not http(s) egress", async () => {
    context = await initAssembly({
      mode: "sdk-only",
      agent: { id: "bot" },
      root: root(),
      policy,
      store: ":memory:",
      adapters: [],
    });
    const response = await context.fetch(new Request(`${upstreamUrl}/req`, { method: "PUT", body: "y" }));
    expect(response.status).toBe(200);
    expect(upstreamSeen.at(-1)).toBe("PUT /req");
    const error = await context.fetch("data:text/plain,hi").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AssemblyError);
    expect(error).toMatchObject({ code: "INVALID_EGRESS_URL" });
  });
});

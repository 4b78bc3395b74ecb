/**
 * Egress: the network layer of `mode: "proxy"` (route the process's requests, and its children's,
 * through `aa proxy`) and the governed `fetch` (one gate decision before a request leaves).
 */
// The subpath, not the package root: a process using a gateway must not load the engine's stores.
import { EGRESS_ACTION_TYPE, type EgressArgs, egressArgsForUrl } from "@aa/engine/egress";
import { type Dispatcher, getGlobalDispatcher, ProxyAgent, setGlobalDispatcher } from "undici";
import { AssemblyError } from "./errors.js";

/** The variables children (curl, Python, Go, undici's EnvHttpProxyAgent, ...) read for a proxy. */
export const PROXY_ENV_VARIABLES = ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] as const;

/**
 * Routes this process's `fetch` (undici's global dispatcher, which Node's `fetch` uses) through the
 * proxy, and points children at it through HTTP_PROXY / HTTPS_PROXY. All or nothing: a failure
 * leaves the dispatcher and the environment as they were. Returns the undo, which puts back
 * exactly what was there (a dispatcher or a variable someone changed after us is left as it is).
 */
export function installEgressProxy(
  proxyUrl: string,
  env: NodeJS.ProcessEnv = process.env,
): { undo: () => Promise<void> } {
  // Plain http:// targets go to the proxy as absolute-URI requests (so the policy sees the URL);
  // https:// targets through a CONNECT tunnel (the proxy never sees inside TLS).
  const agent = new ProxyAgent({ uri: proxyUrl, proxyTunnel: false });
  const previousDispatcher: Dispatcher = getGlobalDispatcher();
  const previousEnv = PROXY_ENV_VARIABLES.map((name) => [name, env[name]] as const);
  try {
    for (const name of PROXY_ENV_VARIABLES) env[name] = proxyUrl;
    setGlobalDispatcher(agent);
  } catch (error) {
    restoreEnv(env, previousEnv, proxyUrl);
    void agent.close().catch(() => undefined);
    throw error;
  }
  return {
    async undo() {
      restoreEnv(env, previousEnv, proxyUrl);
      if (getGlobalDispatcher() === agent) setGlobalDispatcher(previousDispatcher);
      await agent.close();
    },
  };
}

function restoreEnv(
  env: NodeJS.ProcessEnv,
  previous: ReadonlyArray<readonly [string, string | undefined]>,
  ours: string,
): void {
  for (const [name, value] of previous) {
    if (env[name] !== ours) continue;
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
}

/** The proxy URL without its credentials, for messages and fingerprints. */
export function displayProxyUrl(proxyUrl: string): string {
  const url = new URL(proxyUrl);
  if (url.username !== "" || url.password !== "") {
    url.username = "***";
    url.password = "";
  }
  return url.href;
}

/**
 * What a governed `fetch(input, init)` is about to request: the egress args the gate decides on.
 * Throws `AssemblyError` `INVALID_EGRESS_URL` for a URL that is not http(s) egress.
 */
export function egressArgsOfFetch(input: unknown, init: RequestInit | undefined): EgressArgs {
  let url: URL;
  let method = init?.method;
  try {
    if (typeof Request !== "undefined" && input instanceof Request) {
      url = new URL(input.url);
      method ??= input.method;
    } else if (input instanceof URL) {
      url = input;
    } else {
      url = new URL(String(input));
    }
  } catch (cause) {
    throw new AssemblyError(
      "INVALID_EGRESS_URL",
      `assembly.fetch needs an absolute http(s) URL, got ${JSON.stringify(String(input)).slice(0, 300)}`,
      {},
      { cause },
    );
  }
  const args = egressArgsForUrl(method ?? "GET", url);
  if (typeof args === "string") {
    throw new AssemblyError(
      "INVALID_EGRESS_URL",
      `assembly.fetch governs network egress: ${args}; use the plain fetch for it`,
      { protocol: url.protocol },
    );
  }
  return args;
}

export { EGRESS_ACTION_TYPE };

/**
 * `initAssembly` options: their public type and their validation. Validation has no side effects
 * beyond reading the policy file, so a bad value is reported before anything is installed.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, extname, join, resolve as resolvePath } from "node:path";
import type { PolicyDocument } from "@aa/policy";
import { PolicyValidationError, parsePolicy, validatePolicy } from "@aa/policy";
import { ConfigurationError } from "./errors.js";
import type { FrameworkAdapter } from "./types.js";

export type Mode = "auto" | "sdk-only" | "proxy" | "ebpf";
export type EnforcementMode = "enforce" | "observe" | "disabled";
export type FailureMode = "closed" | "open";

/** Options of `initAssembly`. Every field is optional. */
export interface AssemblyOptions {
  /**
   * `auto` (default): in-process hooks, plus the egress proxy when one is configured (`proxyUrl` /
   * `AA_PROXY_URL`). `sdk-only`: in-process hooks only. `proxy`: hooks, and every request of the
   * process and its children goes through the egress proxy (`aa proxy`), which needs `proxyUrl`.
   */
  mode?: Mode;
  /**
   * URL of the egress proxy (`aa proxy`), e.g. `http://127.0.0.1:7392`; with agent keys, the key
   * as password: `http://agent:<key>@127.0.0.1:7392`. Default: `AA_PROXY_URL`. The process's
   * `fetch` (undici's global dispatcher) and its children (HTTP_PROXY / HTTPS_PROXY) use it until
   * `shutdown()`. See docs/egress.md.
   */
  proxyUrl?: string;
  /** `enforce` (default): denials block. `observe`: everything runs, would-be decisions are recorded. `disabled`: no evaluation (hermetic tests only). */
  enforcementMode?: EnforcementMode;
  /** The agent this process acts as. Default: `AA_AGENT_ID`, else the host package name. */
  agent?: { id: string; name?: string };
  /**
   * URL of a shared gateway (`aa gateway start`), e.g. `http://127.0.0.1:7391`. Default:
   * `AA_GATEWAY_URL`. Without it, the embedded gate decides in-process. With it, the gateway holds
   * the policy and the audit trail, so `policy` and `store` must not be set.
   */
  gatewayUrl?: string;
  /** The agent's API key for the gateway (`aa keys create`). Default: `AA_API_KEY`. Required with `gatewayUrl`. */
  apiKey?: string;
  /**
   * Gateway client tuning: waits before each retry of a request that failed with a network error,
   * a timeout or a 5xx (default `[1000, 2000, 4000]`), and the limit of one attempt (default 30 000 ms).
   */
  gatewayClient?: { retryDelaysMs?: readonly number[]; requestTimeoutMs?: number };
  /** Embedded: a policy file path, or an inline policy object. Default: `aa.policy.yaml` found from the root upwards. */
  policy?: string | Record<string, unknown>;
  /**
   * Embedded, policy from a file: reload it when the file changes (default false). The next call is
   * decided by the new policy and the change is recorded (`policy.changed`); a file that does not
   * load leaves the last good policy in force, with a warning (`AA_POLICY_RELOAD_FAILED`).
   */
  watchPolicy?: boolean;
  /** Embedded: SQLite file path or `":memory:"`. Default `.aa/assembly.db` under the root. */
  store?: string;
  /** `"auto"` (default): discover adapters from the host's dependencies; or an explicit list. */
  adapters?: "auto" | ReadonlyArray<FrameworkAdapter | string>;
  /** Root of the host application. Default `process.cwd()`. */
  root?: string;
  /** `closed` (default): when the gate cannot decide, deny. `open`: run the call, audited with a marker. */
  failureMode?: FailureMode;
}

/** Where decisions are made when a gateway is configured. */
export interface ResolvedGateway {
  url: string;
  apiKey: string;
  retryDelaysMs?: readonly number[];
  requestTimeoutMs?: number;
}

/** Options after validation, with defaults applied. */
export interface ResolvedOptions {
  mode: "auto" | "sdk-only" | "proxy";
  /** The egress proxy to route through, or undefined (no network layer). */
  proxyUrl: string | undefined;
  enforcementMode: EnforcementMode;
  /**
   * The agent this process acts as. With a gateway it may be undefined here: the API key names the
   * agent (`GET /v1/whoami`), and a given id must match it.
   */
  agent: { id: string; name?: string } | undefined;
  /** The shared gateway; undefined for the embedded gate. */
  gateway: ResolvedGateway | undefined;
  /** The policy (embedded only; a gateway holds its own). */
  policy: PolicyDocument | undefined;
  /** Where the policy came from (file path or "inline"), for messages. */
  policySource: string;
  /** The policy file to watch for changes (`watchPolicy`), or undefined. */
  watchPolicyFile: string | undefined;
  store: string;
  adapters: "auto" | ReadonlyArray<FrameworkAdapter | string>;
  root: string;
  failureMode: FailureMode;
}

const KNOWN_OPTIONS = new Set([
  "mode",
  "enforcementMode",
  "agent",
  "gatewayUrl",
  "apiKey",
  "gatewayClient",
  "policy",
  "store",
  "adapters",
  "root",
  "failureMode",
  "watchPolicy",
  "proxyUrl",
]);

/** File names looked for when no `policy` option is given, in this order. */
export const POLICY_FILE_NAMES = ["aa.policy.yaml", "aa.policy.yml", "aa.policy.json"];

function oneOf<T extends string>(option: string, value: unknown, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (typeof value === "string" && (allowed as readonly string[]).includes(value)) return value as T;
  throw new ConfigurationError(
    option,
    `invalid ${option} ${JSON.stringify(value)}: allowed values are ${allowed.map((a) => `"${a}"`).join(", ")}`,
    { allowed, received: value },
  );
}

/** Validate `options` and apply defaults. Throws `ConfigurationError` naming the first bad option. */
export function resolveOptions(
  options: AssemblyOptions = {},
  env: NodeJS.ProcessEnv = process.env,
): ResolvedOptions {
  if (options === null || typeof options !== "object") {
    throw new ConfigurationError(
      "options",
      'initAssembly expects an options object, e.g. initAssembly({ agent: { id: "my-bot" } })',
    );
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) {
      throw new ConfigurationError(
        key,
        `unknown option "${key}"; known options are ${[...KNOWN_OPTIONS].join(", ")}`,
        {
          allowed: [...KNOWN_OPTIONS],
        },
      );
    }
  }
  const mode = oneOf("mode", options.mode, ["auto", "sdk-only", "proxy", "ebpf"] as const, "auto");
  if (mode === "ebpf") {
    throw new ConfigurationError(
      "mode",
      'mode "ebpf" is not available in Node.js (it needs a kernel agent); use "sdk-only" for in-process hooks or "auto"',
      { allowed: ["auto", "sdk-only", "proxy"] },
    );
  }
  const proxyUrl = resolveProxyUrl(mode, options.proxyUrl, env);
  const enforcementMode = oneOf(
    "enforcementMode",
    options.enforcementMode,
    ["enforce", "observe", "disabled"] as const,
    "enforce",
  );
  const failureMode = oneOf("failureMode", options.failureMode, ["closed", "open"] as const, "closed");

  if (options.root !== undefined && typeof options.root !== "string") {
    throw new ConfigurationError("root", "root must be a directory path string");
  }
  const root = resolvePath(options.root ?? process.cwd());
  if (!existsSync(root) || !statSync(root).isDirectory()) {
    throw new ConfigurationError("root", `root ${root} is not a directory`, { received: options.root });
  }

  const gateway = resolveGateway(options, env);
  const agent = resolveAgent(options.agent, root, env, gateway !== undefined);

  if (options.store !== undefined && (typeof options.store !== "string" || options.store === "")) {
    throw new ConfigurationError("store", 'store must be a SQLite file path or ":memory:"', {
      received: options.store,
    });
  }
  if (typeof options.store === "string" && options.store.startsWith("postgres")) {
    throw new ConfigurationError(
      "store",
      "the embedded gate stores to SQLite; PostgreSQL is for the shared gateway (aa gateway start --database postgres://...)",
    );
  }
  if (gateway !== undefined) {
    // Silently ignoring a local policy or store would let someone believe it is enforced here.
    for (const option of ["policy", "store"] as const) {
      if (options[option] !== undefined) {
        throw new ConfigurationError(
          option,
          `${option} is set together with the gateway ${gateway.url}: with a gateway, the gateway holds the policy and the audit trail. Remove ${option} (from the code, aa.config.json or AA_${option.toUpperCase()}), or remove gatewayUrl / AA_GATEWAY_URL to use the embedded gate`,
          { gatewayUrl: gateway.url },
        );
      }
    }
  }
  const store =
    options.store === ":memory:"
      ? ":memory:"
      : resolvePath(root, options.store ?? join(".aa", "assembly.db"));

  const adapters = resolveAdapters(options.adapters);
  const { policy, policySource } =
    gateway === undefined
      ? loadPolicy(options.policy, root)
      : { policy: undefined, policySource: `gateway ${gateway.url}` };
  const watchPolicyFile = resolveWatchPolicy(options.watchPolicy, gateway, policySource);
  return {
    mode,
    proxyUrl,
    enforcementMode,
    agent,
    gateway,
    policy,
    policySource,
    watchPolicyFile,
    store,
    adapters,
    root,
    failureMode,
  };
}

function resolveGateway(options: AssemblyOptions, env: NodeJS.ProcessEnv): ResolvedGateway | undefined {
  const rawUrl = options.gatewayUrl ?? (env.AA_GATEWAY_URL || undefined);
  if (rawUrl === undefined) {
    if (options.gatewayClient !== undefined) {
      throw new ConfigurationError("gatewayClient", "gatewayClient applies to a gateway; set gatewayUrl too");
    }
    return undefined;
  }
  const source = options.gatewayUrl === undefined ? "AA_GATEWAY_URL" : "gatewayUrl";
  let url: URL;
  try {
    url = new URL(String(rawUrl));
  } catch {
    throw new ConfigurationError(
      "gatewayUrl",
      `${source} ${JSON.stringify(rawUrl)} is not a URL; expected e.g. "http://127.0.0.1:7391"`,
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ConfigurationError("gatewayUrl", `${source} must be http: or https:, got ${url.protocol}`);
  }
  if (options.apiKey !== undefined && typeof options.apiKey !== "string") {
    throw new ConfigurationError("apiKey", "apiKey must be a string");
  }
  const apiKey = options.apiKey ?? (env.AA_API_KEY || undefined);
  if (apiKey === undefined || apiKey === "") {
    throw new ConfigurationError(
      "apiKey",
      `a gateway (${url.origin}) needs an API key: pass apiKey or set AA_API_KEY (create one with aa keys create --kind agent)`,
    );
  }
  const client = options.gatewayClient;
  if (client !== undefined && (client === null || typeof client !== "object")) {
    throw new ConfigurationError(
      "gatewayClient",
      "gatewayClient must be { retryDelaysMs?: number[], requestTimeoutMs?: number }",
    );
  }
  const delays = client?.retryDelaysMs;
  if (
    delays !== undefined &&
    (!Array.isArray(delays) ||
      delays.length > 10 ||
      delays.some((d) => typeof d !== "number" || !Number.isFinite(d) || d < 0))
  ) {
    throw new ConfigurationError(
      "gatewayClient",
      "gatewayClient.retryDelaysMs must be at most 10 non-negative numbers of ms, e.g. [1000, 2000, 4000]",
      { received: delays },
    );
  }
  const timeout = client?.requestTimeoutMs;
  if (timeout !== undefined && (typeof timeout !== "number" || !Number.isFinite(timeout) || timeout <= 0)) {
    throw new ConfigurationError(
      "gatewayClient",
      "gatewayClient.requestTimeoutMs must be a positive number of ms",
      {
        received: timeout,
      },
    );
  }
  return {
    url: url.href,
    apiKey,
    ...(delays === undefined ? {} : { retryDelaysMs: [...delays] }),
    ...(timeout === undefined ? {} : { requestTimeoutMs: timeout }),
  };
}

function resolveProxyUrl(
  mode: "auto" | "sdk-only" | "proxy",
  option: unknown,
  env: NodeJS.ProcessEnv,
): string | undefined {
  if (option !== undefined && typeof option !== "string") {
    throw new ConfigurationError("proxyUrl", 'proxyUrl must be a URL string, e.g. "http://127.0.0.1:7392"', {
      received: typeof option,
    });
  }
  if (mode === "sdk-only") {
    // sdk-only means in-process hooks only: AA_PROXY_URL (set for the whole machine, say) is not used.
    if (option !== undefined) {
      throw new ConfigurationError(
        "proxyUrl",
        'proxyUrl is set but mode is "sdk-only" (in-process hooks only); use mode "proxy" or "auto" to route egress through the proxy, or remove proxyUrl',
      );
    }
    return undefined;
  }
  const raw = option ?? (env.AA_PROXY_URL || undefined);
  if (raw === undefined) {
    if (mode === "proxy") {
      throw new ConfigurationError(
        "proxyUrl",
        'mode "proxy" routes egress through the egress proxy, but no proxy is configured: start one with `aa proxy` and pass proxyUrl: "http://127.0.0.1:7392" or set AA_PROXY_URL',
      );
    }
    return undefined;
  }
  const source = option === undefined ? "AA_PROXY_URL" : "proxyUrl";
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigurationError(
      "proxyUrl",
      `${source} is not a URL; expected the address of \`aa proxy\`, e.g. "http://127.0.0.1:7392"`,
    );
  }
  if (url.protocol !== "http:") {
    throw new ConfigurationError(
      "proxyUrl",
      `${source} must be an http:// URL (the proxy speaks plain HTTP on loopback; HTTPS goes through it in CONNECT tunnels), got ${url.protocol}`,
      { allowed: ["http:"] },
    );
  }
  if ((url.pathname !== "/" && url.pathname !== "") || url.search !== "" || url.hash !== "") {
    throw new ConfigurationError(
      "proxyUrl",
      `${source} must be a proxy address only (scheme, optional credentials, host, port), without a path, query or fragment; e.g. "http://127.0.0.1:7392"`,
    );
  }
  if (url.username !== "" && url.password === "") {
    throw new ConfigurationError(
      "proxyUrl",
      `${source} has a user but no password: the agent API key goes in the password, e.g. "http://agent:<key>@127.0.0.1:7392"`,
    );
  }
  return url.href.replace(/\/$/, "");
}

function resolveAgent(
  agent: AssemblyOptions["agent"],
  root: string,
  env: NodeJS.ProcessEnv,
  remote: boolean,
): { id: string; name?: string } | undefined {
  if (agent === undefined) {
    const fromEnv = env.AA_AGENT_ID;
    if (fromEnv) return { id: fromEnv };
    // The gateway names the agent from its key; the host package name is only a local default.
    if (remote) return undefined;
    const name = readHostName(root);
    if (name) return { id: name };
    throw new ConfigurationError("agent", 'no agent id: pass agent: { id: "my-bot" } or set AA_AGENT_ID');
  }
  if (agent === null || typeof agent !== "object" || typeof agent.id !== "string" || agent.id.trim() === "") {
    throw new ConfigurationError(
      "agent",
      'agent must be { id: string, name?: string } with a non-empty id, e.g. { id: "release-bot" }',
      {
        received: agent,
      },
    );
  }
  if (agent.name !== undefined && typeof agent.name !== "string") {
    throw new ConfigurationError("agent", "agent.name must be a string");
  }
  return agent.name === undefined ? { id: agent.id } : { id: agent.id, name: agent.name };
}

function readHostName(root: string): string | undefined {
  try {
    const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { name?: unknown };
    return typeof pkg.name === "string" && pkg.name !== "" ? pkg.name : undefined;
  } catch {
    return undefined;
  }
}

function resolveAdapters(value: AssemblyOptions["adapters"]): ResolvedOptions["adapters"] {
  if (value === undefined || value === "auto") return "auto";
  if (!Array.isArray(value)) {
    throw new ConfigurationError(
      "adapters",
      'adapters must be "auto" or a list of adapter objects or names',
      { received: value },
    );
  }
  for (const [i, entry] of value.entries()) {
    if (typeof entry === "string") continue;
    if (entry === null || typeof entry !== "object" || typeof (entry as FrameworkAdapter).name !== "string") {
      throw new ConfigurationError(
        "adapters",
        `adapters[${i}] must be a FrameworkAdapter object or an adapter name`,
        { index: i },
      );
    }
  }
  return value;
}

function resolveWatchPolicy(
  value: unknown,
  gateway: ResolvedGateway | undefined,
  policySource: string,
): string | undefined {
  if (value === undefined || value === false) return undefined;
  if (value !== true) {
    throw new ConfigurationError(
      "watchPolicy",
      `watchPolicy must be true or false, got ${JSON.stringify(value)}`,
    );
  }
  if (gateway !== undefined) {
    throw new ConfigurationError(
      "watchPolicy",
      "watchPolicy applies to the embedded gate only: a gateway's policy is changed by its admins (PUT /v1/policies); remove watchPolicy or gatewayUrl",
    );
  }
  if (policySource === "inline") {
    throw new ConfigurationError(
      "watchPolicy",
      'watchPolicy needs a policy file, but the policy was given inline; pass policy: "./aa.policy.yaml" or remove watchPolicy',
    );
  }
  return policySource;
}

function loadPolicy(
  value: AssemblyOptions["policy"],
  root: string,
): { policy: PolicyDocument; policySource: string } {
  try {
    if (value !== undefined && typeof value === "object" && value !== null) {
      return { policy: validatePolicy(value, { source: "inline policy" }), policySource: "inline" };
    }
    if (value !== undefined && typeof value !== "string") {
      throw new ConfigurationError("policy", "policy must be a file path or a policy object");
    }
    const file = value !== undefined ? resolvePath(root, value) : findPolicyFile(root);
    if (!file) {
      throw new ConfigurationError(
        "policy",
        `no policy found: looked for ${POLICY_FILE_NAMES.join(", ")} in ${root} and its parents. Create one (aa init writes a commented starter) or pass policy: "./path/to/aa.policy.yaml"`,
      );
    }
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (cause) {
      throw new ConfigurationError(
        "policy",
        `cannot read policy file ${file}: ${(cause as Error).message}`,
        { file },
        { cause },
      );
    }
    const format = extname(file) === ".json" ? "json" : "yaml";
    return { policy: parsePolicy(text, { source: file, format }), policySource: file };
  } catch (error) {
    if (error instanceof PolicyValidationError) {
      throw new ConfigurationError(
        "policy",
        `invalid policy:\n${error.message}`,
        { issues: error.issues },
        { cause: error },
      );
    }
    throw error;
  }
}

/** The first policy file found in `root` or one of its parents. */
export function findPolicyFile(root: string): string | undefined {
  let dir = resolvePath(root);
  for (;;) {
    for (const name of POLICY_FILE_NAMES) {
      const candidate = join(dir, name);
      if (existsSync(candidate)) return candidate;
    }
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/**
 * Configuration for `node --import @aa/core/register`: an `aa.config.json` found from the working
 * directory upwards, overridden field by field by `AA_*` environment variables. Only reading and
 * merging happens here; `initAssembly` validates the result with its usual `ConfigurationError`s.
 *
 * JSON, not `aa.config.mjs`: the register hook runs before the app, and a config module could import
 * the very frameworks that must not be loaded before their hooks are in place.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve as resolvePath } from "node:path";
import { ConfigurationError } from "./errors.js";
import type { AssemblyOptions, FailureMode } from "./options.js";

/** The config file name looked for from `process.cwd()` upwards. */
export const CONFIG_FILE_NAME = "aa.config.json";

/** Environment variables the register entry reads, and the option each one sets. */
export const CONFIG_ENV_VARIABLES = {
  AA_AGENT_ID: "agent",
  AA_POLICY: "policy",
  AA_STORE: "store",
  AA_MODE: "mode",
  AA_ENFORCEMENT_MODE: "enforcementMode",
  AA_FAILURE_MODE: "failureMode",
  AA_GATEWAY_URL: "gatewayUrl",
  AA_API_KEY: "apiKey",
  AA_PROXY_URL: "proxyUrl",
} as const;

/** Options a config file may set: the JSON-expressible `initAssembly` options. */
const FILE_OPTIONS = new Set([
  "mode",
  "enforcementMode",
  "agent",
  "gatewayUrl",
  "apiKey",
  "policy",
  "store",
  "adapters",
  "root",
  "failureMode",
  "watchPolicy",
  "proxyUrl",
]);

/** Options that are paths: in a config file they are relative to the file's directory. */
const PATH_OPTIONS = ["policy", "store", "root"] as const;

export interface RegisterConfig {
  /** Options for `initAssembly`, env over file. */
  options: AssemblyOptions;
  /** The config file read, if one was found. */
  file?: string;
  /** Which source set each option, e.g. `{ policy: "env AA_POLICY", store: "aa.config.json" }`. */
  sources: Record<string, string>;
}

/** The first `aa.config.json` in `cwd` or one of its parents. */
export function findConfigFile(cwd: string): string | undefined {
  let dir = resolvePath(cwd);
  for (;;) {
    const candidate = join(dir, CONFIG_FILE_NAME);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/**
 * Read `aa.config.json` (if any) and the `AA_*` variables; env wins over the file. An empty
 * variable counts as unset. Throws `ConfigurationError` for an unreadable or malformed file.
 */
export function loadRegisterConfig(
  cwd: string = process.cwd(),
  env: NodeJS.ProcessEnv = process.env,
): RegisterConfig {
  const options: Record<string, unknown> = {};
  const sources: Record<string, string> = {};
  const file = findConfigFile(cwd);
  if (file) {
    for (const [key, value] of Object.entries(readConfigFile(file))) {
      options[key] = value;
      sources[key] = file;
    }
  }
  for (const [variable, option] of Object.entries(CONFIG_ENV_VARIABLES)) {
    const value = env[variable];
    if (value === undefined || value === "") continue;
    // The id alone from the env: a name from the file belongs to another id.
    options[option] = option === "agent" ? { id: value } : value;
    sources[option] = `env ${variable}`;
  }
  return { options: options as AssemblyOptions, ...(file ? { file } : {}), sources };
}

function readConfigFile(file: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (cause) {
    throw new ConfigurationError(
      "config",
      `cannot read ${file}: ${(cause as Error).message}; it must be a JSON object, e.g. { "agent": { "id": "my-bot" }, "policy": "./aa.policy.yaml" }`,
      { file },
      { cause },
    );
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new ConfigurationError("config", `${file} must contain a JSON object of initAssembly options`, {
      file,
    });
  }
  const config = { ...(parsed as Record<string, unknown>) };
  for (const key of Object.keys(config)) {
    if (!FILE_OPTIONS.has(key)) {
      throw new ConfigurationError(
        key,
        `unknown option "${key}" in ${file}; known options are ${[...FILE_OPTIONS].join(", ")}`,
        { file, allowed: [...FILE_OPTIONS] },
      );
    }
  }
  const base = dirname(file);
  for (const key of PATH_OPTIONS) {
    const value = config[key];
    if (typeof value === "string" && !(key === "store" && value === ":memory:")) {
      config[key] = resolvePath(base, value);
    }
  }
  return config;
}

/**
 * The failure mode for the register entry itself (what to do when configuration or install
 * fails): `AA_FAILURE_MODE`, else the file's `failureMode`, else `closed`. Never throws: it is read
 * when something already went wrong.
 */
export function safelyReadRegisterFailureMode(cwd: string, env: NodeJS.ProcessEnv): FailureMode {
  if (env.AA_FAILURE_MODE) return env.AA_FAILURE_MODE === "open" ? "open" : "closed";
  try {
    const file = findConfigFile(cwd);
    if (!file) return "closed";
    const parsed = JSON.parse(readFileSync(file, "utf8")) as { failureMode?: unknown };
    return parsed?.failureMode === "open" ? "open" : "closed";
  } catch {
    return "closed";
  }
}

/**
 * Runs a scenario script in a child Node process, with the import hook registered by
 * `--import` before the script imports `ai` (an ESM namespace cannot be hooked afterwards).
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);
const FIXTURES = new URL("./fixtures/", import.meta.url);
const REGISTER = new URL("../dist/register.js", import.meta.url).pathname;

export interface ScenarioOptions {
  /** Register the import hook with `--import` (default true). */
  withHook?: boolean;
  args?: string[];
}

/** Run `test/fixtures/<name>` (`.mjs` unless the name has an extension); resolves to the JSON object it reported on its last line. */
export async function runScenario<T = Record<string, unknown>>(
  name: string,
  options: ScenarioOptions = {},
): Promise<T> {
  const script = new URL(name.includes(".") ? name : `${name}.mjs`, FIXTURES).pathname;
  const flags = options.withHook === false ? [] : ["--import", REGISTER];
  const { stdout } = await run(process.execPath, [...flags, script, ...(options.args ?? [])], {
    cwd: new URL("..", import.meta.url).pathname,
    maxBuffer: 16 * 1024 * 1024,
  });
  const last = stdout.trim().split("\n").at(-1) ?? "";
  return JSON.parse(last) as T;
}

/** Opening the embedded store as an operator (never as an agent: the CLI makes no decisions). */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { validatePolicy } from "@aa/policy";
import type { Command } from "commander";
import { CliError, ExitCode } from "./output.js";

export const DEFAULT_STORE = ".aa/assembly.db";

const OPERATOR_POLICY = validatePolicy(
  { version: 1, default: "deny", policies: [] },
  { source: "aa (operator)" },
);

export function addStoreOption(command: Command): Command {
  return command.option("--store <file>", "embedded SQLite store of the agent", DEFAULT_STORE);
}

type OperatorEngine = Awaited<ReturnType<typeof import("@aa/engine")["openEngine"]>>;

/** Open an existing store; a missing file is an error (reading must never create an empty store). */
export async function openOperatorEngine(storeOption: string): Promise<OperatorEngine> {
  const store = resolve(storeOption);
  if (!existsSync(store)) {
    throw new CliError(
      `no Agent Assembly store at ${store}; run the agent first, or pass --store <file> (default ${DEFAULT_STORE})`,
      ExitCode.NOT_FOUND,
    );
  }
  const { openEngine } = await import("@aa/engine");
  // An operator makes no decisions: the engine gets a policy that allows nothing, and opening it
  // records no policy change (it is not the policy the agents' chain is decided by).
  return openEngine({ store, policy: OPERATOR_POLICY, policyChangeAtOpen: "none" });
}

/** Run `fn` with an operator engine and always close it. */
export async function withEngine<T>(
  storeOption: string,
  fn: (engine: OperatorEngine) => Promise<T>,
): Promise<T> {
  const engine = await openOperatorEngine(storeOption);
  try {
    return await fn(engine);
  } finally {
    await engine.close();
  }
}

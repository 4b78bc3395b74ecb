import type { CompiledPolicy, PolicyRule } from "../src/index.js";
import { compilePolicy, parsePolicy, validatePolicy } from "../src/index.js";

/** Compiles an inline list of policies (validated exactly like a file). */
export function compileRules(policies: PolicyRule[]): CompiledPolicy {
  return compilePolicy(validatePolicy({ version: 1, default: "deny", policies }));
}

export function compileYaml(text: string): CompiledPolicy {
  return compilePolicy(parsePolicy(text, { source: "aa.policy.yaml" }));
}

/** Runs `fn` and returns the error it throws (fails the test when it does not throw). */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error("expected the call to throw");
}

/** Thrown by `compileRedactor` when a rule or option is invalid; names the rule and what is wrong. */
export class RedactionRuleError extends Error {
  override readonly name = "RedactionRuleError";
  constructor(
    message: string,
    /** Index of the offending rule in the rules array, when the problem is a rule. */
    readonly ruleIndex?: number,
    /** The offending path, when the problem is a path. */
    readonly path?: string,
  ) {
    super(message);
  }
}

/**
 * @aa/policy: the Agent Assembly policy language. Parse and validate a policy file, compile it, and
 * evaluate calls to decisions with per-condition results. Pure: no I/O.
 */

export { compilePolicy } from "./compile.js";
export { parseDuration } from "./duration.js";
export { formatPolicyIssue, PolicyValidationError } from "./errors.js";
export { matchesAction } from "./glob.js";
export { hashPolicyDocument } from "./hash.js";
export { parsePolicy, validatePolicy } from "./parse.js";
export {
  describeInvalidPermission,
  describeInvalidPrincipal,
  hasPermission,
  intersectScopes,
  permissionMatches,
} from "./permissions.js";
export { parseRedactPath } from "./redact-path.js";
export type * from "./types.js";

/** Checks a decision request before anything is evaluated or recorded. */
import { describePrincipalProblem } from "./identity.js";
import type { DecisionRequest } from "./types.js";

/** What is wrong with the request, for the caller, or undefined when it is well formed. */
export function describeRequestProblem(request: DecisionRequest): string | undefined {
  if (request === null || typeof request !== "object") return "the decision request must be an object";
  if (!request.agent || typeof request.agent.id !== "string" || request.agent.id === "") {
    return "request.agent.id must be a non-empty string naming the calling agent";
  }
  if (typeof request.actionType !== "string" || request.actionType === "") {
    return "request.actionType must be a non-empty string (e.g. the tool name)";
  }
  if (
    request.eventId !== undefined &&
    (typeof request.eventId !== "string" || request.eventId === "" || request.eventId.length > 256)
  ) {
    return "request.eventId (idempotency key) must be a non-empty string of at most 256 characters";
  }
  if (request.metadata !== undefined && (request.metadata === null || typeof request.metadata !== "object")) {
    return "request.metadata must be an object";
  }
  if (request.mcpServer !== undefined && typeof request.mcpServer !== "string") {
    return "request.mcpServer must be a string (the MCP server name)";
  }
  if (
    request.enforcementMode !== undefined &&
    request.enforcementMode !== "enforce" &&
    request.enforcementMode !== "observe" &&
    request.enforcementMode !== "disabled"
  ) {
    return "request.enforcementMode must be enforce, observe or disabled";
  }
  if (request.principal !== undefined) return describePrincipalProblem(request.principal);
  return undefined;
}

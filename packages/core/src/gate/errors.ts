import { AssemblyError } from "../errors.js";

/** Map an error from the gate (EngineError or anything else) to an AssemblyError with the same code. */
export function toAssemblyError(error: unknown, context?: string): AssemblyError {
  if (error instanceof AssemblyError) return error;
  const source = error as { code?: unknown; message?: unknown; details?: unknown; status?: unknown } | null;
  const code = typeof source?.code === "string" ? source.code : "GATE_ERROR";
  const message = typeof source?.message === "string" ? source.message : String(error);
  const details =
    source?.details && typeof source.details === "object"
      ? { ...(source.details as Record<string, unknown>) }
      : {};
  if (typeof source?.status === "number") details.status = source.status;
  return new AssemblyError(code, context ? `${context}: ${message}` : message, details, { cause: error });
}

/**
 * Errors on the wire: every response that is not a success carries
 * `{ error: { code, message, details? } }`, including errors raised by the framework itself.
 */
import { EngineError } from "@aa/engine";

/** An error the gateway answers with: an HTTP status, a stable UPPER_SNAKE code and a human message. */
export class GatewayError extends Error {
  override readonly name = "GatewayError";
  readonly code: string;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: string,
    status: number,
    message: string,
    details?: Record<string, unknown>,
    options: { cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = status;
    this.details = details;
  }
}

/** The JSON body of an error response. */
export interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

/** Engine codes that mean "the store could not answer": the caller may retry, the gate denies. */
const UNAVAILABLE = new Set(["STORE_UNAVAILABLE", "STORE_WRITE_FAILED", "ENGINE_CLOSED"]);

/** Maps anything thrown while serving a request to a status and an error body. */
export function toWireError(error: unknown): { status: number; body: ErrorBody } {
  if (error instanceof GatewayError) {
    return { status: error.status, body: body(error.code, error.message, error.details) };
  }
  if (error instanceof EngineError) {
    if (UNAVAILABLE.has(error.code)) {
      return {
        status: 503,
        body: body("GATE_UNAVAILABLE", error.message, { ...error.details, engineCode: error.code }),
      };
    }
    const details = Object.keys(error.details).length > 0 ? error.details : undefined;
    return { status: error.status, body: body(error.code, error.message, details) };
  }
  const framework = fromFramework(error);
  if (framework) return framework;
  return {
    status: 500,
    body: body("INTERNAL", "The gateway failed to answer this request; see the gateway's log and retry"),
  };
}

function body(code: string, message: string, details?: Record<string, unknown>): ErrorBody {
  return details === undefined ? { error: { code, message } } : { error: { code, message, details } };
}

/** Fastify's own errors (body parsing, limits, validation) with a code of ours. */
function fromFramework(error: unknown): { status: number; body: ErrorBody } | undefined {
  const e = error as {
    code?: unknown;
    statusCode?: unknown;
    validation?: { instancePath?: string; message?: string; keyword?: string; params?: unknown }[];
    validationContext?: string;
    message?: string;
  } | null;
  if (!e || typeof e !== "object") return undefined;
  if (Array.isArray(e.validation)) {
    const where = e.validationContext ?? "body";
    const problems = e.validation.map((v) => describeValidation(where, v));
    return {
      status: 400,
      body: body(
        "INVALID_BODY",
        `The request ${where} is not valid: ${problems.join("; ")}. See the gateway's OpenAPI file for the expected shape`,
        { problems },
      ),
    };
  }
  switch (e.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return {
        status: 413,
        body: body(
          "PAYLOAD_TOO_LARGE",
          "The request body is larger than the gateway accepts; send less (e.g. trim large arguments) or raise the gateway's body limit",
        ),
      };
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return {
        status: 415,
        body: body("UNSUPPORTED_MEDIA_TYPE", "Send the body as JSON with `content-type: application/json`"),
      };
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return {
        status: 400,
        body: body(
          "INVALID_BODY",
          "The request says `content-type: application/json` but has an empty body; send a JSON object",
        ),
      };
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return { status: 400, body: body("INVALID_BODY", "The content-length header does not match the body") };
  }
  if (e.code === "FST_ERR_CTP_INVALID_JSON_BODY" || (e.statusCode === 400 && error instanceof SyntaxError)) {
    return {
      status: 400,
      body: body("INVALID_BODY", "The request body is not valid JSON; send a JSON object"),
    };
  }
  if (typeof e.statusCode === "number" && e.statusCode >= 400 && e.statusCode < 500) {
    return {
      status: e.statusCode,
      body: body("BAD_REQUEST", typeof e.message === "string" ? e.message : "The request was refused"),
    };
  }
  return undefined;
}

function describeValidation(
  where: string,
  v: { instancePath?: string; message?: string; keyword?: string; params?: unknown },
): string {
  const path = v.instancePath ? `${where}${v.instancePath.replaceAll("/", ".")}` : where;
  const params = (v.params ?? {}) as { additionalProperty?: string; missingProperty?: string };
  if (v.keyword === "additionalProperties" && params.additionalProperty) {
    return `${path} has an unknown field "${params.additionalProperty}"`;
  }
  if (v.keyword === "required" && params.missingProperty) {
    return `${path} is missing the required field "${params.missingProperty}"`;
  }
  return `${path} ${v.message ?? "is invalid"}`;
}

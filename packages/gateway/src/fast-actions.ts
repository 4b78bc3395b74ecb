/**
 * `POST /v1/actions` straight on node:http, beside Fastify. Decisions are the gateway's hot path
 * and Fastify's request pipeline (routing, hooks, content-type parsing, reply) cost about a third
 * of the bare node:http throughput on its own (a minimal Fastify route: ~65-70% of bare under the
 * bench load), which left no room for a decision and its durable record within the 60% target.
 *
 * The contract stays Fastify's: the same JSON parser (`getDefaultJsonParser`, prototype poisoning
 * refused), the same compiled body validator (the one Fastify's Ajv instance built for the route),
 * the same handler and the same error mapping (`toWireError`). Only requests that look ordinary
 * from their headers alone are taken; anything else (another content type, no content-length,
 * chunked, empty or over the limit, a shutdown under way) is left to Fastify untouched, so its
 * answers (415, 413, 400, 503) are exactly what they were. The wire-contract fixtures are
 * replayed over real HTTP and so go through this path.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { toWireError } from "./errors.js";

/** What the fast path needs from the gateway. */
export interface FastActionsOptions {
  bodyLimit: number;
  /** Aborted when the gateway starts closing: new requests go to Fastify (which answers 503). */
  closing: AbortSignal;
  /** Fastify's JSON body parser (`app.getDefaultJsonParser("error", "error")`). */
  parseJson: (
    request: IncomingMessage,
    body: string,
    done: (error: Error | null, json?: unknown) => void,
  ) => void;
  /** The route's compiled body validator (Ajv); undefined until Fastify is ready. */
  validator: () => ((data: unknown) => boolean) & { errors?: unknown[] | null };
  /** The route handler: authenticates, decides, resolves to the response body. */
  handle: (headers: IncomingMessage["headers"], body: unknown) => Promise<unknown>;
  /** Logs an unexpected (500) error, as Fastify's error handler does. */
  logError: (error: unknown) => void;
}

const JSON_TYPES = new Set(["application/json", "application/json; charset=utf-8"]);
const CONTENT_TYPE = "application/json; charset=utf-8";

/** Returns a request listener that answers `POST /v1/actions` and returns false for anything else. */
export function fastActions(
  options: FastActionsOptions,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  const { bodyLimit, closing } = options;
  return (req, res) => {
    if (req.method !== "POST" || req.url !== "/v1/actions" || closing.aborted) return false;
    const headers = req.headers;
    const type = headers["content-type"];
    if (type === undefined || !JSON_TYPES.has(type)) return false;
    if (headers["transfer-encoding"] !== undefined) return false;
    const length = Number(headers["content-length"]);
    // Node's parser delivers exactly content-length bytes, so no length mismatch can follow.
    if (!(length > 0 && length <= bodyLimit)) return false;
    let text = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => {
      text += chunk;
    });
    req.on("end", () => {
      try {
        options.parseJson(req, text, (parseError, json) => {
          if (parseError) return send(res, closing, errorAnswer(parseError, options));
          const validate = options.validator();
          if (!validate(json)) {
            // The shape Fastify gives a failed body validation (what toWireError reads).
            const invalid = Object.assign(new Error("body validation failed"), {
              statusCode: 400,
              code: "FST_ERR_VALIDATION",
              validation: validate.errors ?? [],
              validationContext: "body",
            });
            return send(res, closing, errorAnswer(invalid, options));
          }
          options.handle(headers, json).then(
            (result) => {
              let body: string;
              try {
                body = JSON.stringify(result);
              } catch (error) {
                return send(res, closing, errorAnswer(error, options));
              }
              send(res, closing, { status: 200, body });
            },
            (error: unknown) => send(res, closing, errorAnswer(error, options)),
          );
        });
      } catch (error) {
        send(res, closing, errorAnswer(error, options));
      }
    });
    // A client gone mid-body: nothing was decided, there is nobody to answer.
    req.on("error", () => {});
    return true;
  };
}

interface Answer {
  status: number;
  body: string;
  retryAfter?: boolean;
}

/** The same status, body and headers as the gateway's Fastify error handler. */
function errorAnswer(error: unknown, options: FastActionsOptions): Answer {
  const wire = toWireError(error);
  if (wire.status >= 500 && wire.body.error.code === "INTERNAL") options.logError(error);
  return { status: wire.status, body: JSON.stringify(wire.body), retryAfter: wire.status === 503 };
}

function send(res: ServerResponse, closing: AbortSignal, answer: Answer): void {
  if (res.destroyed) return;
  const headers: Record<string, string | number> = {
    "content-type": CONTENT_TYPE,
    "content-length": Buffer.byteLength(answer.body),
  };
  if (answer.retryAfter) headers["retry-after"] = "1";
  // As Fastify does while closing: the connection ends after this answer, so close() can finish.
  if (closing.aborted) headers.connection = "close";
  res.writeHead(answer.status, headers);
  res.end(answer.body);
}

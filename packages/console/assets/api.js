// @ts-check
/**
 * The gateway's /v1 API with the operator's key as a bearer header. The console is served by the
 * gateway, so requests go to the same origin (the CSP allows nothing else). Every failure becomes
 * an ApiError carrying the gateway's code and message, which already say what to do.
 */

/** A request the gateway refused or could not answer. */
export class ApiError extends Error {
  /**
   * @param {number} status HTTP status, 0 when the gateway did not answer at all
   * @param {string} code the gateway's error code (e.g. UNAUTHENTICATED), or NETWORK
   * @param {string} message
   */
  constructor(status, code, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

/**
 * @param {string} key the operator's API key
 */
export function createApi(key) {
  /**
   * @param {string} method
   * @param {string} path under /v1, e.g. `/approvals?state=pending`
   * @param {unknown} [body]
   * @returns {Promise<any>}
   */
  async function call(method, path, body) {
    /** @type {Record<string, string>} */
    const headers = { authorization: `Bearer ${key}`, accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    let response;
    try {
      response = await fetch(`/v1${path}`, {
        method,
        headers,
        cache: "no-store",
        credentials: "omit",
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch {
      throw new ApiError(0, "NETWORK", "The gateway does not answer; is `aa gateway start` still running?");
    }
    const text = await response.text();
    /** @type {any} */
    let json;
    try {
      json = text === "" ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (!response.ok) {
      const error = json?.error;
      throw new ApiError(
        response.status,
        typeof error?.code === "string" ? error.code : `HTTP_${response.status}`,
        typeof error?.message === "string" ? error.message : `The gateway answered ${response.status}`,
      );
    }
    return json;
  }
  return {
    /** @param {string} path */
    get: (path) => call("GET", path),
    /** @param {string} path @param {unknown} [body] */
    post: (path, body) => call("POST", path, body ?? {}),
    /** @param {string} path */
    delete: (path) => call("DELETE", path),
  };
}

/** @typedef {ReturnType<typeof createApi>} Api */

/**
 * Path segment for an id chosen by someone else (an agent id may hold `/` or `?`).
 * @param {string} id
 */
export function segment(id) {
  return encodeURIComponent(id);
}

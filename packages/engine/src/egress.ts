/**
 * The shape of one egress request as the gate sees it: the action type and the `args` that the
 * egress proxy (`aa proxy`, `@aa/gateway`) and the governed `fetch` (`@aa/core`) both send, so that
 * one policy governs both. Kept here because both sides depend on the engine and on nothing else.
 */

/** Action type of every egress decision (an HTTP request or a CONNECT tunnel). */
export const EGRESS_ACTION_TYPE = "http.request";

/** `args` of an egress decision. Policies read them as `args.host`, `args.port`, ... */
export interface EgressArgs {
  /** `GET`, `POST`, ... (upper case); `CONNECT` for a tunnel through the proxy. */
  method: string;
  /** `http` or `https`. A CONNECT tunnel counts as `https` (that is what clients open tunnels for). */
  scheme: "http" | "https";
  /**
   * Host name, lower case, without a trailing dot and without IPv6 brackets (`example.com`,
   * `127.0.0.1`, `::1`): `api.example.com.` and `API.example.com` cannot slip past `ends_with`.
   */
  host: string;
  /** TCP port, explicit or the scheme's default (80, 443). */
  port: number;
  /**
   * The full URL without credentials (absent for a CONNECT tunnel: the proxy cannot see inside
   * TLS). Redacted like any argument: the secret detectors mask tokens in the query, and a policy
   * `redact` rule on `$.url` hides the rest.
   */
  url?: string;
  /** The path without the query (absent for a CONNECT tunnel). */
  path?: string;
}

/** Canonical host: lower case, no IPv6 brackets, no trailing dot. */
export function canonicalHost(hostname: string): string {
  let host = hostname.toLowerCase();
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  while (host.endsWith(".")) host = host.slice(0, -1);
  return host;
}

/**
 * The egress args of a request to `url` (http or https). Credentials in the URL are never part of
 * the args. Returns a message saying what is wrong for any other scheme or a URL without a host.
 */
export function egressArgsForUrl(method: string, url: URL): EgressArgs | string {
  const scheme = url.protocol === "http:" ? "http" : url.protocol === "https:" ? "https" : undefined;
  if (scheme === undefined) {
    return `only http: and https: requests are egress; ${url.protocol} is not (got ${JSON.stringify(url.protocol + "//" + url.host)})`;
  }
  const host = canonicalHost(url.hostname);
  if (host === "") return `the URL has no host`;
  const port = url.port === "" ? (scheme === "http" ? 80 : 443) : Number(url.port);
  const clean = new URL(url.href);
  clean.username = "";
  clean.password = "";
  clean.hash = "";
  return {
    method: method.toUpperCase(),
    scheme,
    host,
    port,
    url: clean.href,
    path: clean.pathname,
  };
}

/**
 * The egress args of a CONNECT tunnel to `authority` (`host:port`, `[v6]:port`). Returns a message
 * saying what is wrong when the authority is not a host and a port from 1 to 65535.
 */
export function egressArgsForTunnel(authority: string): EgressArgs | string {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^\s:/?#@[\]]+):(\d{1,5})$/.exec(authority);
  const port = match ? Number(match[2]) : Number.NaN;
  if (!match || !Number.isInteger(port) || port < 1 || port > 65535) {
    return `a CONNECT target must be host:port with a port from 1 to 65535, got ${JSON.stringify(authority.slice(0, 300))}`;
  }
  const host = canonicalHost(match[1]!);
  if (host === "") return "the CONNECT target has no host";
  return { method: "CONNECT", scheme: "https", host, port };
}

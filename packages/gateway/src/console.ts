/**
 * Serves the operator console (@aa/console's asset folder) at `/console/`. The gateway takes the
 * folder as an option rather than depending on @aa/console, so the dependency stays one-way (the
 * CLI wires the two together; docs/decisions.md).
 *
 * The folder is read once, when the gateway is created: only the files found then are served (a
 * request cannot name any other path, so there is no traversal to guard against), from memory.
 * Every answer carries a strict Content-Security-Policy: scripts and styles from the gateway's own
 * origin only, no inline code, no frames, Trusted Types required for DOM sinks.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { extname, join, relative, sep } from "node:path";
import type { FastifyInstance, FastifyReply } from "fastify";
import { GatewayError } from "./errors.js";

/** Where the console's static files are (`consoleAssetsDir` of @aa/console). */
export interface ConsoleOptions {
  /** A folder holding `index.html` and the files it loads. */
  assetsDir: string;
}

/** The Content-Security-Policy of every console response. */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join("; ");

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
};

/** Files larger than this are not console assets (a wrong folder was passed). */
const MAX_ASSET_BYTES = 2 * 1024 * 1024;

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

/** Reads the asset folder; throws INVALID_OPTIONS naming the folder when it is not a console. */
export function loadConsoleAssets(options: ConsoleOptions): Map<string, Asset> {
  const dir = options?.assetsDir;
  if (typeof dir !== "string" || dir === "" || !existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new GatewayError(
      "INVALID_OPTIONS",
      400,
      `console.assetsDir must be the console's asset folder (consoleAssetsDir of @aa/console); ${JSON.stringify(dir)} is not a folder`,
      { option: "console.assetsDir" },
    );
  }
  const assets = new Map<string, Asset>();
  const walk = (folder: string): void => {
    for (const entry of readdirSync(folder).sort()) {
      const path = join(folder, entry);
      const stat = statSync(path);
      if (stat.isDirectory()) {
        walk(path);
        continue;
      }
      const type = CONTENT_TYPES[extname(entry).toLowerCase()];
      if (type === undefined || entry.startsWith(".")) continue;
      if (stat.size > MAX_ASSET_BYTES) {
        throw new GatewayError(
          "INVALID_OPTIONS",
          400,
          `console.assetsDir holds ${path} of ${stat.size} bytes; console assets are small (at most ${MAX_ASSET_BYTES}): is this the right folder?`,
          { option: "console.assetsDir" },
        );
      }
      const body = readFileSync(path);
      const name = relative(dir, path).split(sep).join("/");
      const etag = `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`;
      assets.set(name, { body, type, etag });
    }
  };
  walk(dir);
  if (!assets.has("index.html")) {
    throw new GatewayError(
      "INVALID_OPTIONS",
      400,
      `console.assetsDir ${dir} has no index.html; pass consoleAssetsDir of @aa/console`,
      { option: "console.assetsDir" },
    );
  }
  return assets;
}

function securityHeaders(reply: FastifyReply): FastifyReply {
  return reply
    .header("content-security-policy", CONSOLE_CSP)
    .header("x-content-type-options", "nosniff")
    .header("x-frame-options", "DENY")
    .header("referrer-policy", "no-referrer")
    .header("cross-origin-opener-policy", "same-origin")
    .header("cross-origin-resource-policy", "same-origin");
}

/** Adds `GET /` (redirect), `GET /console` (redirect) and `GET /console/*` to `app`. */
export function registerConsole(app: FastifyInstance, assets: Map<string, Asset>): void {
  app.get("/", (_request, reply) => securityHeaders(reply).redirect("/console/", 302));
  app.get("/console", (_request, reply) => securityHeaders(reply).redirect("/console/", 301));
  app.get("/console/*", (request, reply) => {
    const name = (request.params as { "*": string })["*"] || "index.html";
    const asset = assets.get(name);
    if (asset === undefined) {
      return securityHeaders(reply)
        .code(404)
        .send({ error: { code: "NOT_FOUND", message: `The console has no file ${name}; open /console/` } });
    }
    securityHeaders(reply)
      .header("content-type", asset.type)
      .header("etag", asset.etag)
      // Revalidated on every load (cheap: 304 on a matching ETag), so an upgraded gateway's console
      // is never mixed with cached modules of the previous version.
      .header("cache-control", "no-cache");
    if (request.headers["if-none-match"] === asset.etag) return reply.code(304).send();
    return reply.send(asset.body);
  });
}

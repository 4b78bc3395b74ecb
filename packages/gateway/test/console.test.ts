/**
 * `createGateway({ console: { assetsDir } })`: the console's files at /console/ under a strict CSP,
 * read once from the folder given (nothing else is reachable), with ETags; a wrong folder is a
 * clear error before anything is opened. (The console itself is tested in a browser in @aa/console.)
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CONSOLE_CSP, createGateway, GatewayError } from "../src/index.js";
import { POLICY, sqliteDatabase, startGateway } from "./harness.js";

const assets = mkdtempSync(join(tmpdir(), "aa-console-assets-"));
writeFileSync(join(assets, "index.html"), '<!doctype html><script type="module" src="app.js"></script>');
writeFileSync(join(assets, "app.js"), "export {};\n");
writeFileSync(join(assets, ".env"), "SECRET=1\n");
writeFileSync(join(assets, "notes.bak"), "not an asset type\n");
mkdirSync(join(assets, "img"));
writeFileSync(join(assets, "img", "logo.svg"), "<svg xmlns='http://www.w3.org/2000/svg'/>");
afterAll(() => rmSync(assets, { recursive: true, force: true }));

describe("the console route", () => {
  it("serves the folder's files with the CSP and security headers, and revalidates by ETag", async () => {
    const { gateway, url } = await startGateway({ console: { assetsDir: assets } });
    try {
      const root = await fetch(`${url}/`, { redirect: "manual" });
      expect([root.status, root.headers.get("location")]).toEqual([302, "/console/"]);
      const bare = await fetch(`${url}/console`, { redirect: "manual" });
      expect([bare.status, bare.headers.get("location")]).toEqual([301, "/console/"]);

      const index = await fetch(`${url}/console/`);
      expect(index.status).toBe(200);
      expect(index.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(index.headers.get("content-security-policy")).toBe(CONSOLE_CSP);
      expect(index.headers.get("x-content-type-options")).toBe("nosniff");
      expect(index.headers.get("referrer-policy")).toBe("no-referrer");
      expect(await index.text()).toContain('src="app.js"');

      const script = await fetch(`${url}/console/app.js`);
      expect(script.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
      const etag = script.headers.get("etag");
      expect(etag).toMatch(/^"[A-Za-z0-9_-]{22}"$/);
      const again = await fetch(`${url}/console/app.js`, { headers: { "if-none-match": etag! } });
      expect(again.status).toBe(304);
      expect((await fetch(`${url}/console/img/logo.svg`)).headers.get("content-type")).toBe("image/svg+xml");

      // Only asset files found at start-up: no dotfiles, other types, or paths outside the folder.
      for (const path of [".env", "notes.bak", "../package.json", "%2e%2e/package.json", "img/../.env"]) {
        const response = await fetch(`${url}/console/${path}`);
        expect(response.status, path).toBe(404);
      }
      const dotfile = await fetch(`${url}/console/.env`);
      expect(dotfile.headers.get("content-security-policy")).toBe(CONSOLE_CSP);
      expect((await dotfile.json()).error.code).toBe("NOT_FOUND");
      // The API is unchanged beside it.
      expect((await fetch(`${url}/v1/health`)).status).toBe(200);
    } finally {
      await gateway.close();
    }
  });

  it("is off unless asked for", async () => {
    const { gateway, url } = await startGateway();
    try {
      expect((await fetch(`${url}/console/`)).status).toBe(404);
      expect((await fetch(`${url}/`, { redirect: "manual" })).status).toBe(404);
    } finally {
      await gateway.close();
    }
  });

  it("rejects a folder that is not a console, naming the option", async () => {
    const empty = mkdtempSync(join(tmpdir(), "aa-console-empty-"));
    try {
      for (const assetsDir of [join(empty, "missing"), empty, ""]) {
        const attempt = createGateway({ policy: POLICY, database: sqliteDatabase(), console: { assetsDir } });
        await expect(attempt).rejects.toBeInstanceOf(GatewayError);
        await expect(attempt).rejects.toMatchObject({
          code: "INVALID_OPTIONS",
          details: { option: "console.assetsDir" },
        });
      }
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});

import { compilePolicy, validatePolicy } from "@aa/policy";
import { describe, expect, it } from "vitest";
import { EGRESS_ACTION_TYPE, egressArgsForTunnel, egressArgsForUrl, openEngine } from "../src/index.js";

describe("egress args", () => {
  it("describes an http(s) URL with a canonical host, the default port and no credentials", () => {
    expect(egressArgsForUrl("post", new URL("https://bob:hunter2@API.Example.com./v1/x?q=1#frag"))).toEqual({
      method: "POST",
      scheme: "https",
      host: "api.example.com",
      port: 443,
      url: "https://api.example.com./v1/x?q=1",
      path: "/v1/x",
    });
    expect(egressArgsForUrl("GET", new URL("http://[::1]:8080/"))).toMatchObject({
      scheme: "http",
      host: "::1",
      port: 8080,
    });
  });

  it("refuses other schemes with a message naming the scheme", () => {
    expect(egressArgsForUrl("GET", new URL("file:///etc/passwd"))).toMatch(/only http: and https:.*file:/);
  });

  it("describes a CONNECT authority, and refuses a malformed one", () => {
    expect(egressArgsForTunnel("Example.COM:443")).toEqual({
      method: "CONNECT",
      scheme: "https",
      host: "example.com",
      port: 443,
    });
    expect(egressArgsForTunnel("[::1]:22")).toMatchObject({ host: "::1", port: 22 });
    for (const bad of ["example.com", "example.com:0", "example.com:70000", "a b:80", "user@host:443"]) {
      expect(egressArgsForTunnel(bad)).toMatch(/host:port/);
    }
  });

  it("decides on args.host with ends_with, and the detectors mask a token in the query", async () => {
    const policy = compilePolicy(
      validatePolicy(
        {
          version: 1,
          default: "deny",
          policies: [
            {
              name: "egress-example",
              action: EGRESS_ACTION_TYPE,
              effect: "allow",
              when: [{ field: "args.host", op: "ends_with", value: ".example.com" }],
            },
          ],
        },
        { source: "test" },
      ),
    );
    const engine = await openEngine({ policy, store: ":memory:" });
    try {
      const agent = { id: "bot" };
      const args = egressArgsForUrl(
        "GET",
        new URL("https://api.example.com/x?access_token=ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
      );
      const allowed = await engine.decide({ agent, actionType: EGRESS_ACTION_TYPE, args });
      expect(allowed.status).toBe("executed");
      const denied = await engine.decide({
        agent,
        actionType: EGRESS_ACTION_TYPE,
        args: egressArgsForUrl("GET", new URL("https://example.com.evil.test/")),
      });
      expect(denied).toMatchObject({ status: "denied", denialReason: "CONDITIONS_DENIED" });
      const page = await engine.audit();
      const stored = JSON.stringify(page.items[0]);
      expect(stored).not.toContain("ghp_abcdefghijklmnopqrstuvwxyz0123456789");
      expect(page.items[0]).toMatchObject({ args: { host: "api.example.com", port: 443 } });
    } finally {
      await engine.close();
    }
  });
});

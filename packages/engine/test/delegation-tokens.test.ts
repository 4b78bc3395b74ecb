/**
 * Tokens signed with the engine's own key but otherwise wrong (audience, type, issuer, validity
 * window) are refused. The SQLite store keeps its keys in keys.json, so the test can forge them.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { importJWK, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { openEngine } from "../src/index.js";
import { keyFilePath } from "../src/store/key-file.js";
import { DELEGATION_POLICY } from "./delegation-contract.js";
import { tempDir } from "./helpers.js";

const dir = tempDir("aa-delegation-tokens-");

describe("delegation tokens signed with the engine's key", () => {
  it("refuses a wrong aud, typ or iss, a token not valid yet, and one whose exp has passed", async () => {
    const file = join(dir, "tokens.db");
    const engine = await openEngine({ policy: DELEGATION_POLICY, store: file, orgId: "acme" });
    const { delegation, token } = await engine.delegate({ agentId: "root" }, "a", {
      capabilities: ["read.*"],
    });
    const keys = JSON.parse(readFileSync(keyFilePath(file), "utf8")) as {
      orgs: Record<string, { keyring: { keys: { kid: string; privateJwk?: Record<string, string> }[] } }>;
    };
    const active = keys.orgs.acme!.keyring.keys.find((key) => key.privateJwk)!;
    const privateKey = await importJWK({ ...active.privateJwk, alg: "EdDSA" }, "EdDSA");
    const claims = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString("utf8")) as Record<
      string,
      unknown
    >;
    const now = Math.floor(Date.now() / 1000);
    const forge = (overrides: Record<string, unknown>, typ = "aa-delegation+jwt") =>
      new SignJWT({ ...claims, ...overrides })
        .setProtectedHeader({ alg: "EdDSA", typ, kid: active.kid })
        .sign(privateKey);
    // The forging works: the same claims re-signed are accepted.
    expect(await engine.verifyDelegation(await forge({}))).toMatchObject({ id: delegation.id });
    const cases: [string, string, string][] = [
      ["wrong aud", await forge({ aud: "other-org" }), "another organisation"],
      ["wrong typ", await forge({}, "JWT"), "not a delegation token"],
      ["wrong iss", await forge({ iss: "someone-else" }), "not issued by Agent Assembly"],
      ["not yet valid", await forge({ nbf: now + 3600 }), "not valid yet"],
      ["missing exp", await forge({ exp: undefined }), "exp"],
    ];
    for (const [what, bad, problem] of cases) {
      const denied = await engine.decide({
        agent: { id: "root" },
        actionType: "read.x",
        delegationToken: bad,
      });
      expect(denied, what).toMatchObject({ status: "denied", denialReason: "DELEGATION_INVALID" });
      expect(denied.message, what).toContain(problem);
      await expect(engine.verifyDelegation(bad), what).rejects.toMatchObject({ code: "DELEGATION_INVALID" });
    }
    // An authentic token whose exp has passed is expired, whatever the registry row says.
    // (Twice: the second use is answered from the token cache, which checks the token's exp too.)
    const stale = await forge({ iat: now - 7200, nbf: now - 7200, exp: now - 3600 });
    for (let use = 0; use < 2; use++) {
      expect(
        await engine.decide({ agent: { id: "root" }, actionType: "read.x", delegationToken: stale }),
      ).toMatchObject({ status: "denied", denialReason: "DELEGATION_EXPIRED" });
    }
    // A token naming another subject than the registry's delegation is refused.
    const renamed = await forge({ sub: "root/b", aa_chain: ["root", "root/b"] });
    expect(
      await engine.decide({ agent: { id: "root" }, actionType: "read.x", delegationToken: renamed }),
    ).toMatchObject({ status: "denied", denialReason: "DELEGATION_INVALID" });
    // The genuine token still works after all that.
    expect(
      await engine.decide({ agent: { id: "root" }, actionType: "read.x", delegationToken: token }),
    ).toMatchObject({ status: "executed" });
    await engine.close();
  });

  it("a token stays valid across a key rotation (the JWKS keeps the old public key)", async () => {
    const engine = await openEngine({ policy: DELEGATION_POLICY, store: join(dir, "rotate.db") });
    const { token } = await engine.delegate({ agentId: "root" }, "a", { capabilities: ["read.*"] });
    await engine.rotateSigningKey();
    expect(
      await engine.decide({ agent: { id: "root" }, actionType: "read.x", delegationToken: token }),
    ).toMatchObject({ status: "executed" });
    const next = await engine.delegate({ agentId: "root" }, "b", { capabilities: ["read.*"] });
    const header = JSON.parse(Buffer.from(next.token.split(".")[0]!, "base64url").toString("utf8"));
    expect(header).toEqual({ alg: "EdDSA", typ: "aa-delegation+jwt", kid: engine.jwks().keys.at(-1)!.kid });
    await engine.close();
  });
});

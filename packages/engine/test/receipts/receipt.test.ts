import { createLocalJWKSet, jwtVerify, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { Keyring } from "../../src/crypto/keyring.js";
import {
  hashOutcomeMessage,
  RECEIPT_TYPE,
  type ReceiptClaims,
  ReceiptClaimsError,
  signReceipt,
  verifyReceipt,
} from "../../src/receipts/receipt.js";

const claims: ReceiptClaims = {
  auditEventId: "evt_01J9ZK",
  org: "acme",
  agentId: "agent-child",
  actionType: "pr.merge",
  argsHash: "sha256:" + "ab".repeat(32),
  status: "executed",
  policyName: "merges-need-review",
  policyHash: "sha256:" + "cd".repeat(32),
  approvalId: "apr_9f8e7d",
  delegationChain: ["agent-root", "agent-child"],
  chain: { seq: 42, recordHash: "ef".repeat(32) },
  issuedAt: "2025-03-01T12:00:00.000Z",
};

function segment(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}

function expectProblem(result: Awaited<ReturnType<typeof verifyReceipt>>, pattern: RegExp): void {
  expect(result.valid).toBe(false);
  if (!result.valid) expect(result.problem).toMatch(pattern);
}

describe("receipts", () => {
  it("round-trips: the claims and kid come back", async () => {
    const keyring = Keyring.generate();
    const jws = await signReceipt(claims, keyring);
    const result = await verifyReceipt(jws, keyring.jwks());
    expect(result).toEqual({ valid: true, claims, kid: keyring.activeKid });
  });

  it("binds a reported outcome", async () => {
    const keyring = Keyring.generate();
    const withOutcome: ReceiptClaims = {
      ...claims,
      outcome: { status: "failure", messageHash: hashOutcomeMessage("merge conflict") },
    };
    const result = await verifyReceipt(await signReceipt(withOutcome, keyring), keyring.jwks());
    expect(result.valid && result.claims.outcome).toEqual({
      status: "failure",
      messageHash: hashOutcomeMessage("merge conflict"),
    });
    expect(hashOutcomeMessage("merge conflict")).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(hashOutcomeMessage(undefined)).toBeNull();
  });

  it("is a standard JWS a third party verifies with jose and only the JWKS", async () => {
    const keyring = Keyring.generate();
    const jws = await signReceipt(claims, keyring);
    const published = JSON.parse(JSON.stringify(keyring.jwks()));
    const { payload, protectedHeader } = await jwtVerify(jws, createLocalJWKSet(published), {
      algorithms: ["EdDSA"],
      typ: RECEIPT_TYPE,
    });
    expect(protectedHeader).toEqual({ alg: "EdDSA", typ: RECEIPT_TYPE, kid: keyring.activeKid });
    expect(payload).toMatchObject({ v: 1, auditEventId: "evt_01J9ZK", chain: { seq: 42 } });
  });

  it("rejects a tampered payload", async () => {
    const keyring = Keyring.generate();
    const [header, , signature] = (await signReceipt(claims, keyring)).split(".");
    const forged = `${header}.${segment({ v: 1, ...claims, argsHash: "sha256:" + "00".repeat(32) })}.${signature}`;
    expectProblem(await verifyReceipt(forged, keyring.jwks()), /signature verification failed/);
  });

  it("rejects a receipt signed by another key published under the same kid", async () => {
    const signer = Keyring.generate();
    const other = Keyring.generate();
    const jws = await signReceipt(claims, signer);
    const impostor = { keys: [{ ...other.jwks().keys[0]!, kid: signer.activeKid }] };
    expectProblem(await verifyReceipt(jws, impostor), /signature verification failed/);
    expectProblem(await verifyReceipt(jws, other.jwks()), /unknown kid/);
  });

  it("keeps old receipts verifiable after rotation while the JWKS publishes the old key", async () => {
    const keyring = Keyring.generate();
    const oldKid = keyring.activeKid;
    const before = await signReceipt(claims, keyring);
    keyring.rotate();
    const after = await signReceipt(claims, keyring);
    const jwks = keyring.jwks();
    expect(await verifyReceipt(before, jwks)).toMatchObject({ valid: true, kid: oldKid });
    expect(await verifyReceipt(after, jwks)).toMatchObject({ valid: true, kid: keyring.activeKid });
    const withoutOld = { keys: jwks.keys.filter((key) => key.kid !== oldKid) };
    expectProblem(await verifyReceipt(before, withoutOld), new RegExp(`unknown kid ${oldKid}.*rotated`));
  });

  it("rejects alg confusion: an HS256 token keyed with the public key", async () => {
    const keyring = Keyring.generate();
    const jwk = keyring.jwks().keys[0]!;
    const token = await new SignJWT({ v: 1, ...claims })
      .setProtectedHeader({ alg: "HS256", typ: RECEIPT_TYPE, kid: keyring.activeKid })
      .sign(new TextEncoder().encode(JSON.stringify(jwk)));
    expectProblem(await verifyReceipt(token, keyring.jwks()), /unsupported alg "HS256"/);
  });

  it("rejects an unsecured (alg none) token", async () => {
    const keyring = Keyring.generate();
    const token = `${segment({ alg: "none", typ: RECEIPT_TYPE, kid: keyring.activeKid })}.${segment({ v: 1, ...claims })}.`;
    expectProblem(await verifyReceipt(token, keyring.jwks()), /unsupported alg "none"/);
  });

  it("rejects a token from the same key with another typ", async () => {
    const keyring = Keyring.generate();
    const input = `${segment({ alg: "EdDSA", typ: "JWT", kid: keyring.activeKid })}.${segment({ v: 1, ...claims })}`;
    const token = `${input}.${keyring.sign(input).signature}`;
    expectProblem(await verifyReceipt(token, keyring.jwks()), /unexpected typ "JWT"/);
  });

  it("rejects a validly signed payload that is not a receipt", async () => {
    const keyring = Keyring.generate();
    const sign = (payload: unknown) => {
      const input = `${segment({ alg: "EdDSA", typ: RECEIPT_TYPE, kid: keyring.activeKid })}.${segment(payload)}`;
      return `${input}.${keyring.sign(input).signature}`;
    };
    expectProblem(await verifyReceipt(sign({ ...claims }), keyring.jwks()), /format version undefined/);
    expectProblem(
      await verifyReceipt(sign({ v: 1, ...claims, chain: { seq: -1, recordHash: "x" } }), keyring.jwks()),
      /chain\.seq/,
    );
    expectProblem(await verifyReceipt(sign([1, 2]), keyring.jwks()), /not a JSON object/);
  });

  it("never throws on garbage", async () => {
    const jwks = Keyring.generate().jwks();
    for (const garbage of ["", "a.b", "a.b.c", "...", "!!.!!.!!", 42, null, `${segment("x")}.e30.`]) {
      const result = await verifyReceipt(garbage as never, jwks);
      expect(result.valid).toBe(false);
    }
    const real = await signReceipt(claims, Keyring.generate());
    expect((await verifyReceipt(real, null as never)).valid).toBe(false);
  });

  it("refuses to sign malformed claims, naming the field", async () => {
    const keyring = Keyring.generate();
    await expect(signReceipt({ ...claims, argsHash: "" }, keyring)).rejects.toThrow(ReceiptClaimsError);
    await expect(signReceipt({ ...claims, argsHash: "" }, keyring)).rejects.toThrow(/argsHash/);
    await expect(signReceipt({ ...claims, delegationChain: [] }, keyring)).rejects.toThrow(/delegationChain/);
    await expect(signReceipt({ ...claims, status: "maybe" as never }, keyring)).rejects.toThrow(/status/);
    await expect(
      signReceipt({ ...claims, outcome: { status: "done" as never, messageHash: null } }, keyring),
    ).rejects.toThrow(/outcome\.status/);
  });

  it("does not carry unknown properties into the payload", async () => {
    const keyring = Keyring.generate();
    const jws = await signReceipt({ ...claims, secretArgs: "sk-live" } as ReceiptClaims, keyring);
    expect(Buffer.from(jws.split(".")[1]!, "base64url").toString()).not.toContain("secretArgs");
  });
});

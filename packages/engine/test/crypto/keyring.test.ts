import { createHash, generateKeyPairSync, sign as signRaw } from "node:crypto";
import { calculateJwkThumbprint } from "jose";
import { describe, expect, it } from "vitest";
import { KeyMaterialError } from "../../src/crypto/errors.js";
import { ed25519Kid, Keyring, verifySignature } from "../../src/crypto/keyring.js";

describe("Keyring", () => {
  it("signs with the active key and verifies against its JWKS", () => {
    const keyring = Keyring.generate(new Date("2025-01-01T00:00:00Z"));
    const { kid, signature } = keyring.sign("checkpoint:42:abc");
    expect(kid).toBe(keyring.activeKid);
    expect(verifySignature(keyring.jwks(), kid, "checkpoint:42:abc", signature)).toBe(true);
    expect(
      verifySignature(keyring.jwks(), kid, new TextEncoder().encode("checkpoint:42:abc"), signature),
    ).toBe(true);
    expect(keyring.verify(kid, "checkpoint:42:abc", signature)).toBe(true);
  });

  it("rejects a changed message, a changed signature and an unknown kid without throwing", () => {
    const keyring = Keyring.generate();
    const { kid, signature } = keyring.sign("size=10 head=aa");
    const jwks = keyring.jwks();
    expect(verifySignature(jwks, kid, "size=11 head=aa", signature)).toBe(false);
    const flipped = (signature[0] === "A" ? "B" : "A") + signature.slice(1);
    expect(verifySignature(jwks, kid, "size=10 head=aa", flipped)).toBe(false);
    expect(verifySignature(jwks, "no-such-kid", "size=10 head=aa", signature)).toBe(false);
    expect(verifySignature(jwks, kid, "size=10 head=aa", "not base64url!")).toBe(false);
    expect(verifySignature(jwks, kid, "size=10 head=aa", "")).toBe(false);
    expect(verifySignature({ keys: "nope" } as never, kid, "x", signature)).toBe(false);
    expect(verifySignature(null as never, kid, "x", signature)).toBe(false);
  });

  it("derives the kid as the RFC 7638 thumbprint of the public key", async () => {
    const keyring = Keyring.generate();
    const [jwk] = keyring.jwks().keys;
    expect(jwk).toMatchObject({
      kty: "OKP",
      crv: "Ed25519",
      alg: "EdDSA",
      use: "sig",
      kid: keyring.activeKid,
    });
    expect(jwk).not.toHaveProperty("d");
    expect(await calculateJwkThumbprint({ kty: "OKP", crv: "Ed25519", x: jwk!.x as string })).toBe(
      keyring.activeKid,
    );
    expect(ed25519Kid({ x: jwk!.x as string })).toBe(keyring.activeKid);
  });

  it("rotates: new active kid, old public key still published, old private key discarded", () => {
    const keyring = Keyring.generate(new Date("2025-01-01T00:00:00Z"));
    const oldKid = keyring.activeKid;
    const old = keyring.sign("before rotation");
    const newKid = keyring.rotate(new Date("2025-02-01T00:00:00Z"));
    expect(newKid).not.toBe(oldKid);
    expect(keyring.activeKid).toBe(newKid);
    expect(keyring.sign("after").kid).toBe(newKid);
    expect(keyring.jwks().keys.map((key) => key.kid)).toEqual([oldKid, newKid]);
    expect(verifySignature(keyring.jwks(), oldKid, "before rotation", old.signature)).toBe(true);
    const data = keyring.toJSON();
    expect(data.keys[0]).toMatchObject({ kid: oldKid, retiredAt: "2025-02-01T00:00:00.000Z" });
    expect(data.keys[0]!.privateJwk).toBeUndefined();
    expect(data.keys[1]!.privateJwk?.d).toEqual(expect.any(String));
  });

  it("round-trips through JSON and keeps signing with the same key", () => {
    const keyring = Keyring.generate();
    keyring.rotate();
    const restored = Keyring.fromJSON(JSON.parse(JSON.stringify(keyring.toJSON())));
    expect(restored.activeKid).toBe(keyring.activeKid);
    expect(restored.jwks()).toEqual(keyring.jwks());
    const { kid, signature } = restored.sign("hello");
    expect(verifySignature(keyring.jwks(), kid, "hello", signature)).toBe(true);
  });

  it("toJSON returns a copy that cannot change the keyring", () => {
    const keyring = Keyring.generate();
    const data = keyring.toJSON();
    data.keys[0]!.retiredAt = "2025-01-01T00:00:00Z";
    expect(() => keyring.sign("x")).not.toThrow();
    expect(keyring.toJSON().keys[0]!.retiredAt).toBeUndefined();
  });

  describe("fromJSON rejects bad data with a clear error", () => {
    const valid = () => {
      const keyring = Keyring.generate();
      keyring.rotate();
      return keyring.toJSON();
    };
    const cases: Array<[string, (data: ReturnType<typeof valid>) => unknown, RegExp]> = [
      ["not an object", () => null, /expected an object/],
      ["wrong version", (d) => ({ ...d, version: 2 }), /unsupported version 2/],
      ["no keys", (d) => ({ ...d, keys: [] }), /non-empty array/],
      [
        "kid not matching",
        (d) => {
          d.keys[0]!.kid = "abc";
          return d;
        },
        /keys\[0\]\.kid abc does not match/,
      ],
      [
        "duplicate kid",
        (d) => {
          d.keys[1] = { ...d.keys[0]! };
          return d;
        },
        /duplicated/,
      ],
      [
        "RSA key",
        (d) => {
          d.keys[0]!.publicJwk = { kty: "RSA", n: "x", e: "AQAB" };
          return d;
        },
        /Ed25519 JWK/,
      ],
      [
        "short x",
        (d) => {
          d.keys[0]!.publicJwk = { kty: "OKP", crv: "Ed25519", x: "AAAA" };
          return d;
        },
        /32-byte/,
      ],
      [
        "bad createdAt",
        (d) => {
          d.keys[0]!.createdAt = "yesterday";
          return d;
        },
        /createdAt must be an ISO/,
      ],
      [
        "no active key",
        (d) => {
          d.keys[1]!.retiredAt = "2025-01-01T00:00:00Z";
          return d;
        },
        /exactly one active key.*found 0/,
      ],
      [
        "two active keys",
        (d) => {
          delete d.keys[0]!.retiredAt;
          return d;
        },
        /exactly one active key.*found 2/,
      ],
      [
        "active key without private part",
        (d) => {
          delete d.keys[1]!.privateJwk;
          return d;
        },
        /has no privateJwk/,
      ],
      [
        "private key of another key",
        (d) => {
          const other = generateKeyPairSync("ed25519").privateKey.export({ format: "jwk" });
          d.keys[1]!.privateJwk = { kty: "OKP", crv: "Ed25519", x: d.keys[1]!.publicJwk.x, d: other.d };
          return d;
        },
        /privateJwk does not belong/,
      ],
    ];
    for (const [name, mutate, message] of cases) {
      it(name, () => {
        const attempt = () => Keyring.fromJSON(mutate(valid()) as never);
        expect(attempt).toThrow(KeyMaterialError);
        expect(attempt).toThrow(message);
      });
    }
  });

  it("interoperates with a plain node:crypto Ed25519 signature", () => {
    const { publicKey, privateKey } = generateKeyPairSync("ed25519");
    const x = publicKey.export({ format: "jwk" }).x as string;
    const kid = ed25519Kid({ x });
    const jwks = { keys: [{ kty: "OKP", crv: "Ed25519", x, kid, alg: "EdDSA", use: "sig" }] };
    const signature = signRaw(null, Buffer.from("payload"), privateKey).toString("base64url");
    expect(verifySignature(jwks, kid, "payload", signature)).toBe(true);
    expect(kid).toBe(
      createHash("sha256").update(`{"crv":"Ed25519","kty":"OKP","x":"${x}"}`).digest("base64url"),
    );
  });

  it("refuses a JWKS entry published for another algorithm or use", () => {
    const keyring = Keyring.generate();
    const { kid, signature } = keyring.sign("m");
    const [jwk] = keyring.jwks().keys;
    expect(verifySignature({ keys: [{ ...jwk, alg: "ES256" }] }, kid, "m", signature)).toBe(false);
    expect(verifySignature({ keys: [{ ...jwk, use: "enc" }] }, kid, "m", signature)).toBe(false);
  });
});

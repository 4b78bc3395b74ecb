/**
 * Delegation tokens: compact JWS JWTs signed with the engine's active Ed25519 evidence key (so the
 * JWKS that verifies receipts also verifies tokens). The registry, not the token, is the authority:
 * a token only says which delegation its holder presents; revocation and the parent chain are
 * checked against the registry on every use.
 *
 * Header: `{"alg":"EdDSA","typ":"aa-delegation+jwt","kid":...}`. Claims: `iss` "agent-assembly",
 * `aud` the org, `sub` the child agent id, `jti` the delegation id, `iat`/`nbf`/`exp` (seconds), and
 * `aa_chain` (agent ids, root first), `aa_cap` (capability globs).
 */
import { errors, jwtVerify } from "jose";
import { type Jwks, type Keyring, safelyPublicKeyFromJwks } from "../crypto/keyring.js";

export const DELEGATION_TOKEN_TYPE = "aa-delegation+jwt";
export const DELEGATION_TOKEN_ISSUER = "agent-assembly";
const ALGORITHM = "EdDSA";
/** Tolerated clock difference between processes for `nbf` (seconds). Expiry is checked against the registry, exactly. */
const CLOCK_TOLERANCE_S = 5;

export interface DelegationTokenClaims {
  delegationId: string;
  agentId: string;
  org: string;
  chain: string[];
  capabilities: string[];
  issuedAtMs: number;
  expiresAtMs: number;
}

/** Signs a delegation token. */
export function signDelegationToken(claims: DelegationTokenClaims, keyring: Keyring): string {
  const header = { alg: ALGORITHM, typ: DELEGATION_TOKEN_TYPE, kid: keyring.activeKid };
  const iat = Math.floor(claims.issuedAtMs / 1000);
  const payload = {
    iss: DELEGATION_TOKEN_ISSUER,
    aud: claims.org,
    sub: claims.agentId,
    jti: claims.delegationId,
    iat,
    nbf: iat,
    exp: Math.ceil(claims.expiresAtMs / 1000),
    aa_chain: claims.chain,
    aa_cap: claims.capabilities,
  };
  const input = `${segment(JSON.stringify(header))}.${segment(JSON.stringify(payload))}`;
  return `${input}.${keyring.sign(input).signature}`;
}

/** A token whose signature, type, audience and issuer check out. `expired` when its `exp` is past. */
export interface VerifiedToken {
  delegationId: string;
  agentId: string;
  chain: string[];
  notBeforeMs: number;
  expiresAtMs: number;
  expired: boolean;
}

export type TokenCheck = { ok: true; token: VerifiedToken } | { ok: false; problem: string };

/**
 * Verifies signature (EdDSA only, key from the JWKS by `kid`), `typ`, `aud`, `iss`, `nbf` and the
 * presence of every claim. An expired token whose signature is good is returned with `expired`, so
 * the caller can deny `DELEGATION_EXPIRED` naming the chain. Never throws.
 */
export async function verifyDelegationToken(token: string, jwks: Jwks, org: string): Promise<TokenCheck> {
  if (typeof token !== "string" || token.length === 0 || token.length > 8192) {
    return { ok: false, problem: "the delegation token must be a non-empty string (a compact JWT)" };
  }
  let payload: Record<string, unknown>;
  let expired = false;
  try {
    ({ payload } = await jwtVerify(
      token,
      (header) => {
        const key = typeof header.kid === "string" ? safelyPublicKeyFromJwks(jwks, header.kid) : undefined;
        if (!key) throw new errors.JWKSNoMatchingKey("no published Ed25519 key matches the token's kid");
        return key;
      },
      {
        algorithms: [ALGORITHM],
        typ: DELEGATION_TOKEN_TYPE,
        audience: org,
        issuer: DELEGATION_TOKEN_ISSUER,
        requiredClaims: ["sub", "jti", "iat", "nbf", "exp"],
        clockTolerance: CLOCK_TOLERANCE_S,
      },
    ));
  } catch (error) {
    // jose checks the signature before the claims: an expired token here is authentic.
    if (error instanceof errors.JWTExpired) {
      payload = error.payload as Record<string, unknown>;
      expired = true;
    } else {
      return { ok: false, problem: describeJoseError(error) };
    }
  }
  const { sub, jti, nbf, exp, aa_chain: chain } = payload;
  if (
    typeof sub !== "string" ||
    typeof jti !== "string" ||
    typeof nbf !== "number" ||
    typeof exp !== "number" ||
    !Array.isArray(chain) ||
    chain.length < 2 ||
    !chain.every((id) => typeof id === "string" && id !== "") ||
    chain.at(-1) !== sub
  ) {
    return { ok: false, problem: "the token's claims are malformed (sub, jti, nbf, exp, aa_chain)" };
  }
  return {
    ok: true,
    token: {
      delegationId: jti,
      agentId: sub,
      chain: chain as string[],
      notBeforeMs: nbf * 1000,
      expiresAtMs: exp * 1000,
      expired,
    },
  };
}

function describeJoseError(error: unknown): string {
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === "nbf") return "the token is not valid yet (nbf is in the future)";
    if (error.claim === "aud") return "the token was issued for another organisation (aud)";
    if (error.claim === "iss") return "the token was not issued by Agent Assembly (iss)";
    if (error.claim === "typ")
      return `the token is not a delegation token (typ must be ${DELEGATION_TOKEN_TYPE})`;
    return `the token's ${error.claim} claim is invalid (${error.reason})`;
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return "the token's alg is not EdDSA";
  if (error instanceof errors.JWSSignatureVerificationFailed) {
    return "the token's signature does not verify: it was altered or signed by another key";
  }
  if (error instanceof errors.JWKSNoMatchingKey) return "the token's kid names no key this engine published";
  if (error instanceof errors.JOSEError) return `the token is malformed (${error.code})`;
  return "the token could not be verified";
}

function segment(text: string): string {
  return Buffer.from(text, "utf8").toString("base64url");
}

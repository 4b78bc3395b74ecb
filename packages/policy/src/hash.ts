import { createHash } from "node:crypto";
import canonicalize from "canonicalize";
import type { PolicyDocument } from "./types.js";

/** SHA-256 (hex) of the RFC 8785 canonical JSON of a validated policy document. */
export function hashPolicyDocument(document: PolicyDocument): string {
  const canonical = canonicalize(document);
  if (canonical === undefined) throw new TypeError("policy document has no JSON form");
  return createHash("sha256").update(canonical, "utf8").digest("hex");
}

/** Small byte helpers shared by the key modules (base64url without padding, as JOSE uses). */

const BASE64URL = /^[A-Za-z0-9_-]*$/;

export function toBytes(data: Uint8Array | string): Uint8Array {
  return typeof data === "string" ? Buffer.from(data, "utf8") : data;
}

export function base64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64url");
}

/** Decodes strict base64url (no padding, no other characters); undefined when malformed. */
export function fromBase64url(text: string): Buffer | undefined {
  if (!BASE64URL.test(text) || text.length % 4 === 1) return undefined;
  return Buffer.from(text, "base64url");
}

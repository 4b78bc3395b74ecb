/** Realistic secrets planted in redaction tests; `secret` is the part that must never appear. */
import { generateKeyPairSync } from "node:crypto";

export interface Canary {
  name: string;
  /** Text as it would appear in a tool argument. */
  text: string;
  /** Substrings that must not survive redaction. */
  secrets: string[];
  detector: string;
}

const pem = generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString();
const pemBody = pem.split("\n")[1]!;
const rsaPem = generateKeyPairSync("rsa", { modulusLength: 1024 })
  .privateKey.export({ type: "pkcs1", format: "pem" })
  .toString();
const rsaBodyLines = rsaPem.split("\n").filter((line) => line && !line.startsWith("-----"));

// A real HS256 JWT (header.payload.signature), built by hand to keep this module synchronous.
const jwtHeader = Buffer.from('{"alg":"HS256","typ":"JWT"}').toString("base64url");
const jwtPayload = Buffer.from('{"sub":"user-42","scope":"admin","iat":1700000000}').toString("base64url");
const jwt = `${jwtHeader}.${jwtPayload}.Zm9vYmFyYmF6cXV4X3NpZ25hdHVyZV9jYW5hcnk`;

export const CANARIES: Canary[] = [
  {
    name: "openai key",
    text: "sk-proj-T3stCanary9xQ2mZ7vB4nR8kL1pW6yH0jD5fG",
    secrets: ["T3stCanary9xQ2mZ7vB4nR8kL1pW6yH0jD5fG"],
    detector: "api-key",
  },
  {
    name: "stripe key",
    text: "sk_live_51CanaryStripeKey0aB9cD8eF7",
    secrets: ["51CanaryStripeKey0aB9cD8eF7"],
    detector: "api-key",
  },
  {
    name: "aws access key",
    text: "AKIAIOSFODNN7CANARY9",
    secrets: ["IOSFODNN7CANARY9"],
    detector: "aws-access-key",
  },
  {
    name: "github token",
    text: "ghp_CanaryGitHubToken0123456789abcdefABCD",
    secrets: ["CanaryGitHubToken0123456789abcdefABCD"],
    detector: "github-token",
  },
  {
    name: "slack token",
    text: "xoxb-1234567890-0987654321-CanarySlackTokenXyZ",
    secrets: ["CanarySlackTokenXyZ"],
    detector: "slack-token",
  },
  {
    name: "google key",
    text: "AIzaSyCanaryGoogleKey_0123456789abcdefg",
    secrets: ["SyCanaryGoogleKey_0123456789abcdefg"],
    detector: "api-key",
  },
  {
    name: "jwt",
    text: jwt,
    secrets: [jwtPayload, "Zm9vYmFyYmF6cXV4X3NpZ25hdHVyZV9jYW5hcnk"],
    detector: "jwt",
  },
  { name: "ed25519 pem", text: pem, secrets: [pemBody], detector: "private-key" },
  { name: "rsa pem", text: rsaPem, secrets: rsaBodyLines, detector: "private-key" },
  {
    name: "postgres url",
    text: "postgres://app:Pa55w0rdCanary!@db.internal:5432/prod",
    secrets: ["Pa55w0rdCanary!"],
    detector: "connection-string",
  },
  {
    name: "bearer header",
    text: "Authorization: Bearer tok9f8e7d6c5b4a3CanaryBearer",
    secrets: ["tok9f8e7d6c5b4a3CanaryBearer"],
    detector: "bearer-token",
  },
  {
    name: "basic header",
    text: `Authorization: Basic ${Buffer.from("admin:CanaryBasicPw1").toString("base64")}`,
    secrets: [Buffer.from("admin:CanaryBasicPw1").toString("base64")],
    detector: "basic-auth",
  },
  {
    name: "api_key assignment",
    text: "curl https://x.test/?api_key=CanaryQueryKey77",
    secrets: ["CanaryQueryKey77"],
    detector: "credential",
  },
  {
    name: "password in prose",
    text: 'config {"password": "CanaryHunter2"}',
    secrets: ["CanaryHunter2"],
    detector: "credential",
  },
];

/** The same secrets, base64-encoded inside surrounding text. */
export const ENCODED_CANARIES: Canary[] = CANARIES.filter((canary) => canary.detector !== "private-key").map(
  (canary) => {
    const encoded = Buffer.from(`payload: ${canary.text}`).toString("base64");
    return {
      name: `base64 of ${canary.name}`,
      text: `blob ${encoded} end`,
      secrets: [...canary.secrets, encoded],
      detector: "base64",
    };
  },
);

export function leaks(value: unknown, canaries: readonly Canary[]): string[] {
  const serialised = JSON.stringify(value) ?? "";
  // JSON escapes newlines; compare against both raw and escaped forms.
  return canaries.flatMap((canary) =>
    canary.secrets.filter(
      (secret) => serialised.includes(secret) || serialised.includes(JSON.stringify(secret).slice(1, -1)),
    ),
  );
}

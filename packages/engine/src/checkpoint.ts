import canonicalize from "canonicalize";

/** The bytes a checkpoint signature covers: RFC 8785 JSON of (head hash, org, size, time). */
export function checkpointPayload(org: string, size: number, headHash: string, time: string): string {
  return canonicalize({ head_hash: headHash, org, size, time })!;
}

/** Verifies an org's chain in a store: every record's hash and link, then every signed checkpoint. */

import { ChainVerifier } from "./chain/verify.js";
import { checkpointPayload } from "./checkpoint.js";
import type { Jwks } from "./crypto/keyring.js";
import { verifySignature } from "./crypto/keyring.js";
import { type ProgressSink, progressReporter } from "./progress.js";
import type { AuditStore, Checkpoint } from "./store/types.js";
import type { VerifyResult } from "./types.js";

const CHUNK = 10_000;

export async function verifyStoreChain(
  store: AuditStore,
  org: string,
  jwks: Jwks,
  onProgress?: ProgressSink,
): Promise<VerifyResult> {
  // Checkpoints first: any checkpoint read now attests a size the scan below will reach, even if
  // other writers keep appending (reading them afterwards could see one past the scanned head).
  const checkpoints = await store.listCheckpoints(org);
  const fast = store as AuditStore & {
    verifyChainFast?: (org: string, onProgress?: ProgressSink) => Promise<ChainScan>;
  };
  const scan = fast.verifyChainFast
    ? await fast.verifyChainFast(org, onProgress)
    : await scanChain(store, org, onProgress);
  if (scan.broken) {
    return {
      chainValid: false,
      checked: scan.checked,
      firstBrokenAtRowId: scan.broken.rowId,
      problem: scan.broken.problem,
    };
  }
  const problem = await checkCheckpoints(
    checkpoints,
    jwks,
    scan.lastSeq,
    async (seq) => (await store.getEventAtSeq(org, seq))?.hash,
  );
  if (problem)
    return {
      chainValid: false,
      checked: scan.checked,
      firstBrokenAtRowId: problem.rowId ?? null,
      problem: problem.problem,
    };
  return { chainValid: true, checked: scan.checked, firstBrokenAtRowId: null };
}

export interface ChainScan {
  checked: number;
  lastSeq: number;
  lastHash: string;
  broken?: { rowId: string; problem: string };
}

async function scanChain(store: AuditStore, org: string, onProgress?: ProgressSink): Promise<ChainScan> {
  const verifier = new ChainVerifier({ prevHash: "0".repeat(64), seq: 1 });
  const progress = onProgress ? progressReporter(onProgress, (await store.head(org)).seq) : undefined;
  progress?.report(0);
  let after = 0;
  for (;;) {
    const rows = await store.readEvents(org, after, CHUNK);
    if (rows.length === 0) break;
    if (!verifier.feed(rows)) break;
    progress?.report(verifier.checked);
    after = rows[rows.length - 1]!.seq;
    if (rows.length < CHUNK) break;
  }
  if (!verifier.broken) progress?.done(verifier.checked);
  return {
    checked: verifier.checked,
    lastSeq: verifier.lastSeq,
    lastHash: verifier.lastHash,
    ...(verifier.broken
      ? { broken: { rowId: verifier.broken.rowId, problem: verifier.broken.problem } }
      : {}),
  };
}

/**
 * Checks every checkpoint's signature and that the chain still holds the attested head: fewer
 * records than a checkpoint's size is tail truncation; a different hash at that position is a
 * re-hashed fork (someone rewrote history and recomputed the hashes).
 */
export async function checkCheckpoints(
  checkpoints: Checkpoint[],
  jwks: Jwks,
  chainSize: number,
  hashAt: (seq: number) => Promise<string | undefined> | string | undefined,
): Promise<{ rowId?: string; problem: string } | undefined> {
  for (const cp of checkpoints) {
    const payload = checkpointPayload(cp.org, cp.size, cp.headHash, cp.time);
    if (!verifySignature(jwks, cp.kid, payload, cp.signature)) {
      return {
        problem: `checkpoint at size ${cp.size} (${cp.time}) has an invalid signature or an unknown key ${cp.kid}: the checkpoint was forged or altered`,
      };
    }
    if (cp.size > chainSize) {
      return {
        problem: `the chain has ${chainSize} records but a checkpoint signed at ${cp.time} attests ${cp.size}: records were removed from the end (tail truncation)`,
      };
    }
    const hash = await hashAt(cp.size);
    if (hash !== cp.headHash) {
      return {
        problem: `record ${cp.size} does not match the head hash signed in the checkpoint of ${cp.time}: the chain was rewritten and re-hashed (fork)`,
      };
    }
  }
  return undefined;
}

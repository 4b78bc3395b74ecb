/**
 * JSONL export of one org's audit trail, and its offline verification.
 *
 * Lines, in order: a header; the JWKS; every signed checkpoint; every record
 * (`{"type":"record","seq","id","hash","record":<stored canonical text, verbatim>}`); every
 * reported outcome. Checkpoints come before records so a streaming verifier knows which
 * positions to remember. The
 * verifier re-hashes the verbatim record text, so it needs no store, no engine and no re-serialiser.
 */
import { once } from "node:events";
import { createReadStream, createWriteStream } from "node:fs";
import { createInterface } from "node:readline";
import { ChainVerifier } from "./chain/verify.js";
import type { Jwks } from "./crypto/keyring.js";
import { EngineError } from "./errors.js";
import { type ProgressSink, progressReporter } from "./progress.js";
import type { AuditStore, Checkpoint } from "./store/types.js";
import type { ExportTarget, VerifyResult } from "./types.js";
import { checkCheckpoints } from "./verify-store.js";

export const EXPORT_FORMAT = "aa-audit-export";
const CHUNK = 5000;

export async function exportAuditTo(
  store: AuditStore,
  org: string,
  jwks: Jwks,
  target: ExportTarget,
  onProgress?: ProgressSink,
): Promise<{ records: number; outcomes: number; checkpoints: number }> {
  const ownStream = typeof target === "string";
  const out = ownStream ? createWriteStream(target, { mode: 0o644 }) : target;
  const write = async (line: string) => {
    if (!out.write(line + "\n")) await once(out, "drain");
  };
  let records = 0;
  let outcomes = 0;
  try {
    await write(
      JSON.stringify({
        type: "header",
        format: EXPORT_FORMAT,
        version: 1,
        org,
        exported_at: new Date().toISOString(),
      }),
    );
    await write(JSON.stringify({ type: "jwks", keys: jwks.keys }));
    const checkpoints = await store.listCheckpoints(org);
    for (const cp of checkpoints) {
      await write(
        JSON.stringify({
          type: "checkpoint",
          org: cp.org,
          size: cp.size,
          head_hash: cp.headHash,
          time: cp.time,
          kid: cp.kid,
          signature: cp.signature,
        }),
      );
    }
    const progress = onProgress ? progressReporter(onProgress, (await store.head(org)).seq) : undefined;
    progress?.report(0);
    for (let after = 0; ; ) {
      const rows = await store.readEvents(org, after, CHUNK);
      for (const row of rows) {
        await write(
          `{"type":"record","seq":${row.seq},"id":${JSON.stringify(row.id)},"hash":"${row.hash}","record":${row.text}}`,
        );
      }
      records += rows.length;
      progress?.report(records);
      if (rows.length < CHUNK) break;
      after = rows[rows.length - 1]!.seq;
    }
    for (let after: string | null = null; ; ) {
      const rows = await store.listOutcomes(org, after, CHUNK);
      for (const row of rows) {
        await write(
          JSON.stringify({
            type: "outcome",
            audit_event_id: row.auditEventId,
            agent: row.agentId,
            status: row.status,
            message: row.message,
            metadata: row.metadata === null ? null : JSON.parse(row.metadata),
            updated_at: row.updatedAt,
          }),
        );
      }
      outcomes += rows.length;
      if (rows.length < CHUNK) break;
      after = rows[rows.length - 1]!.auditEventId;
    }
    progress?.done(records);
    return { records, outcomes, checkpoints: checkpoints.length };
  } finally {
    if (ownStream) {
      const file = out as ReturnType<typeof createWriteStream>;
      await new Promise<void>((resolve, reject) =>
        file.end((error?: Error | null) => (error ? reject(error) : resolve())),
      );
    }
  }
}

/** What `verifyExport` found. */
export interface ExportVerifyResult extends VerifyResult {
  org: string | null;
  records: number;
  outcomes: number;
  checkpoints: number;
  /** `provided`: checkpoints were checked against the JWKS you passed (trust anchored out of band); `embedded`: against the export's own JWKS line (only proves self-consistency). */
  keySource: "provided" | "embedded";
}

const RECORD_PREFIX = '{"type":"record","seq":';

/**
 * Verifies a JSONL export offline: every record's hash and link, every checkpoint's signature, and
 * that the export still ends at (or after) the last checkpoint. Pass the JWKS you obtained from
 * the operator out of band as `options.jwks`; otherwise the export's own JWKS line is used.
 */
export async function verifyExport(
  source: string | Iterable<string> | AsyncIterable<string>,
  options: { jwks?: Jwks } = {},
): Promise<ExportVerifyResult> {
  const lines =
    typeof source === "string"
      ? createInterface({
          input: createReadStream(source, { encoding: "utf8" }),
          crlfDelay: Number.POSITIVE_INFINITY,
        })
      : source;
  const verifier = new ChainVerifier({ prevHash: "0".repeat(64), seq: 1 });
  const checkpoints: Checkpoint[] = [];
  let embedded: Jwks | undefined;
  let org: string | null = null;
  let outcomes = 0;
  let lineNo = 0;
  const batch: { id: string; seq: number; hash: string; text: string }[] = [];
  const flush = () => {
    if (batch.length > 0) verifier.feed(batch);
    batch.length = 0;
  };
  try {
    for await (const raw of lines) {
      lineNo++;
      const line = raw.trimEnd();
      if (line === "") continue;
      if (line.startsWith(RECORD_PREFIX)) {
        const row = parseRecordLine(line);
        if (!row) throw badLine(lineNo, "a record line is malformed");
        batch.push(row);
        if (batch.length >= 1000) flush();
        continue;
      }
      const value = JSON.parse(line) as Record<string, unknown>;
      if (value.type === "header") {
        if (value.format !== EXPORT_FORMAT) throw badLine(lineNo, `not an ${EXPORT_FORMAT} file`);
        org = typeof value.org === "string" ? value.org : null;
      } else if (value.type === "outcome") outcomes++;
      else if (value.type === "checkpoint") {
        checkpoints.push({
          org: String(value.org),
          size: Number(value.size),
          headHash: String(value.head_hash),
          time: String(value.time),
          kid: String(value.kid),
          signature: String(value.signature),
        });
        verifier.watch(Number(value.size));
      } else if (value.type === "jwks") embedded = { keys: value.keys as Jwks["keys"] };
      else throw badLine(lineNo, `unknown line type ${JSON.stringify(value.type)}`);
    }
  } catch (error) {
    if (error instanceof EngineError) throw error;
    throw badLine(lineNo, (error as Error).message);
  }
  flush();
  const keySource = options.jwks ? "provided" : "embedded";
  const base = {
    org,
    records: verifier.checked,
    outcomes,
    checkpoints: checkpoints.length,
    keySource,
  } as const;
  if (verifier.broken) {
    return {
      ...base,
      chainValid: false,
      checked: verifier.checked,
      firstBrokenAtRowId: verifier.broken.rowId,
      problem: verifier.broken.problem,
    };
  }
  const jwks = options.jwks ?? embedded;
  if (!jwks && checkpoints.length > 0) {
    return {
      ...base,
      chainValid: false,
      checked: verifier.checked,
      firstBrokenAtRowId: null,
      problem: "the export has checkpoints but no JWKS to verify them; pass { jwks }",
    };
  }
  const problem = await checkCheckpoints(checkpoints, jwks ?? { keys: [] }, verifier.lastSeq, (seq) =>
    verifier.hashAt(seq),
  );
  if (problem) {
    return {
      ...base,
      chainValid: false,
      checked: verifier.checked,
      firstBrokenAtRowId: problem.rowId ?? null,
      problem: problem.problem,
    };
  }
  return { ...base, chainValid: true, checked: verifier.checked, firstBrokenAtRowId: null };
}

function parseRecordLine(line: string): { id: string; seq: number; hash: string; text: string } | undefined {
  const idAt = line.indexOf(',"id":"', RECORD_PREFIX.length);
  if (idAt < 0) return undefined;
  const seq = Number(line.slice(RECORD_PREFIX.length, idAt));
  const idEnd = line.indexOf('"', idAt + 7);
  const id = line.slice(idAt + 7, idEnd);
  const hashKey = ',"hash":"';
  if (!line.startsWith(hashKey, idEnd + 1)) return undefined;
  const hashStart = idEnd + 1 + hashKey.length;
  const hash = line.slice(hashStart, hashStart + 64);
  const recordKey = '","record":';
  if (!line.startsWith(recordKey, hashStart + 64) || !line.endsWith("}")) return undefined;
  const text = line.slice(hashStart + 64 + recordKey.length, -1);
  if (!Number.isSafeInteger(seq)) return undefined;
  return { id, seq, hash, text };
}

function badLine(lineNo: number, why: string): EngineError {
  return new EngineError("EXPORT_INVALID", 400, `export line ${lineNo}: ${why}`, { line: lineNo });
}

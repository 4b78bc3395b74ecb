/**
 * The audit record and its canonical encoding.
 *
 * A record's hash is SHA-256 over the RFC 8785 (JCS) canonical JSON of the record including its
 * `prev_hash` and `seq`. The canonical text is produced once, at append time, and stored verbatim,
 * so verification re-hashes bytes and never re-serialises.
 *
 * The key set is fixed (absent values are `null`), which lets the encoder emit keys in their
 * canonical (UTF-16 code unit) order directly and only call the `canonicalize` package for
 * free-form values (args, metadata, conditions). Every key that sorts after `prev_hash` holds a
 * string, number, boolean, null or an engine-shaped value without caller-chosen object keys (`user`
 * has the fixed keys email, id, tenant), so the
 * last `"prev_hash":"` in a record's text is always the top-level link (see `readLink`).
 */
import { hash as oneShotHash } from "node:crypto";
import { type RecordUser, recordUserJson } from "../identity.js";
import { canonicalJson, quoteJson } from "./canonical-json.js";

/** What a record is about. */
export type RecordKind =
  | "action"
  | "approval.approved"
  | "approval.denied"
  | "approval.expired"
  | "approval.released"
  | "policy.changed"
  | "policy.tampered"
  | "agent.contained"
  | "agent.released"
  | "delegation.created"
  | "delegation.revoked"
  | "delegation.expired";

/** The fields of a record before it is linked into the chain. */
export interface RecordFields {
  id: string;
  kind: RecordKind;
  time: string;
  org: string;
  agent: string;
  delegation: string[];
  actionType: string;
  tool: string | null;
  framework: string | null;
  /** Redacted arguments. */
  args: unknown;
  /** Canonical JSON of `args` when the caller already computed it (saves a second pass). */
  argsJson?: string;
  /** `sha256:<hex>` of the canonical JSON of the redacted arguments. */
  argsHash: string;
  metadata: Record<string, unknown> | null;
  /** Canonical JSON of `metadata` when the caller already computed it (a snapshot). */
  metadataJson?: string;
  dataAccessed: unknown;
  /** Canonical JSON of `dataAccessed` when the caller already computed it (a snapshot). */
  dataAccessedJson?: string;
  status: string | null;
  denialReason: string | null;
  policyName: string | null;
  policyHash: string;
  conditions: unknown[];
  approvalId: string | null;
  traceId: string | null;
  toolCallId: string | null;
  /** `enforce`, `observe` or `disabled`. */
  mode: string;
  shadow: { status: string; denialReason?: string; policyName?: string } | null;
  failOpen: boolean;
  /** Reviewer's reason or engine note (approval transitions, policy changes). */
  reason: string | null;
  /** Paths of the redaction rules (and detector names) that fired on this call. */
  redactionRules: string[];
  /** The end user the call was made for; absent or null for a call made for no one. */
  user?: RecordUser | null;
}

/** A record with its chain link, as stored. */
export interface AuditRecord {
  id: string;
  kind: RecordKind;
  seq: number;
  time: string;
  org: string;
  agent: string;
  delegation: string[];
  action_type: string;
  tool: string | null;
  framework: string | null;
  args: unknown;
  args_hash: string;
  metadata: Record<string, unknown> | null;
  data_accessed: unknown;
  status: string | null;
  denial_reason: string | null;
  policy_name: string | null;
  policy_hash: string;
  conditions: unknown[];
  approval_id: string | null;
  trace_id: string | null;
  tool_call_id: string | null;
  mode: string;
  shadow: { status: string; denialReason?: string; policyName?: string } | null;
  fail_open: boolean;
  reason: string | null;
  redaction_rules: string[];
  prev_hash: string;
  /** `agent` for a root agent's call, `sub-agent` when the delegation chain is deeper (derived from `delegation`). */
  tier: "agent" | "sub-agent";
  user: RecordUser | null;
}

/** The hash the first record of every chain links to. */
export const GENESIS_HASH = "0".repeat(64);

/** A record encoded up to its chain link: `pre + link + mid + seq + post` is the canonical text. */
export interface EncodedRecord {
  readonly pre: string;
  readonly mid: string;
  readonly post: string;
}

export function sha256Hex(text: string): string {
  return oneShotHash("sha256", text, "hex");
}

/** Engine-generated strings (ids, ISO times, hex hashes, enum words) and names: see {@link quoteJson}. */
const quoteSafe = quoteJson;
const str = (value: string | null): string => (value === null ? "null" : quoteJson(value));
const json = (value: unknown): string => canonicalJson(value);

/**
 * A one-entry memo of a string's JSON text. Most of a record's strings repeat from one record to
 * the next (one agent, one tool, one policy, the same millisecond), and comparing with the last
 * value (often the very same string object) is cheaper than the escaping scan; on a miss it
 * costs one compare. The output is always `quoteJson(value)`.
 */
function quoteMemo(): (value: string | null) => string {
  let last: string | null = null;
  let lastJson = "null";
  return (value) => {
    if (value !== last) {
      last = value;
      lastJson = value === null ? "null" : quoteJson(value);
    }
    return lastJson;
  };
}
const q = {
  actionType: quoteMemo(),
  agent: quoteMemo(),
  denialReason: quoteMemo(),
  framework: quoteMemo(),
  kind: quoteMemo(),
  mode: quoteMemo(),
  org: quoteMemo(),
  policyHash: quoteMemo(),
  policyName: quoteMemo(),
  status: quoteMemo(),
  time: quoteMemo(),
  tool: quoteMemo(),
  root: quoteMemo(),
};
/** Condition names (policy, field, operator) come from the compiled policy: a bounded cache. */
const conditionNames = new Map<string, string>();
function quoteName(value: string): string {
  let text = conditionNames.get(value);
  if (text === undefined) {
    if (conditionNames.size >= 1024) conditionNames.clear();
    text = quoteJson(value);
    conditionNames.set(value, text);
  }
  return text;
}

/** The delegation chain; a root agent's chain is its own id, encoded like `agent`. */
function delegationJson(chain: string[]): string {
  return chain.length === 1 && typeof chain[0] === "string" ? "[" + q.root(chain[0]) + "]" : json(chain);
}

/**
 * Canonical JSON of condition results. They have a fixed engine shape, so keys are emitted in
 * canonical order directly; anything else falls back to the generic encoder.
 */
function conditionsJson(conditions: unknown[]): string {
  if (conditions.length === 0) return "[]";
  let out = "[";
  for (let i = 0; i < conditions.length; i++) {
    const c = conditions[i] as Record<string, unknown>;
    const keys = c !== null && typeof c === "object" ? Object.keys(c) : [];
    const shaped =
      keys.length === 6 &&
      typeof c.field === "string" &&
      typeof c.operator === "string" &&
      typeof c.policy === "string" &&
      typeof c.result === "boolean" &&
      "actual" in c &&
      "expected" in c;
    const item = shaped
      ? '{"actual":' +
        (c.actual === undefined ? null : canonicalJson(c.actual)) +
        ',"expected":' +
        (c.expected === undefined ? null : canonicalJson(c.expected)) +
        ',"field":' +
        quoteName(c.field as string) +
        ',"operator":' +
        quoteName(c.operator as string) +
        ',"policy":' +
        quoteName(c.policy as string) +
        ',"result":' +
        (c.result ? "true" : "false") +
        "}"
      : canonicalJson(c);
    out += (i === 0 ? "" : ",") + item;
  }
  return out + "]";
}

/** `mid` of a record without a reason and without redactions (most action records). */
const PLAIN_MID = '","reason":null,"redaction_rules":[],"seq":';

/** Encodes everything but `prev_hash` and `seq`; cheap enough to run on the decide path. */
export function encodeRecord(r: RecordFields): EncodedRecord {
  const pre =
    '{"action_type":' +
    q.actionType(r.actionType) +
    ',"agent":' +
    q.agent(r.agent) +
    ',"approval_id":' +
    str(r.approvalId) +
    ',"args":' +
    (r.argsJson ?? json(r.args)) +
    ',"args_hash":' +
    quoteSafe(r.argsHash) +
    ',"conditions":' +
    conditionsJson(r.conditions) +
    ',"data_accessed":' +
    (r.dataAccessedJson ?? json(r.dataAccessed)) +
    ',"delegation":' +
    delegationJson(r.delegation) +
    ',"denial_reason":' +
    q.denialReason(r.denialReason) +
    ',"fail_open":' +
    (r.failOpen ? "true" : "false") +
    ',"framework":' +
    q.framework(r.framework) +
    ',"id":' +
    quoteSafe(r.id) +
    ',"kind":' +
    q.kind(r.kind) +
    ',"metadata":' +
    (r.metadataJson ?? json(r.metadata)) +
    ',"mode":' +
    q.mode(r.mode) +
    ',"org":' +
    q.org(r.org) +
    ',"policy_hash":' +
    q.policyHash(r.policyHash) +
    ',"policy_name":' +
    q.policyName(r.policyName) +
    ',"prev_hash":"';
  const mid =
    r.reason === null && r.redactionRules.length === 0
      ? PLAIN_MID
      : '","reason":' + str(r.reason) + ',"redaction_rules":' + json(r.redactionRules) + ',"seq":';
  const post =
    ',"shadow":' +
    json(r.shadow) +
    ',"status":' +
    q.status(r.status) +
    (r.delegation.length > 1 ? ',"tier":"sub-agent"' : ',"tier":"agent"') +
    ',"time":' +
    q.time(r.time) +
    ',"tool":' +
    q.tool(r.tool) +
    ',"tool_call_id":' +
    str(r.toolCallId) +
    ',"trace_id":' +
    str(r.traceId) +
    ',"user":' +
    recordUserJson(r.user) +
    "}";
  return { pre, mid, post };
}

/** Links an encoded record into the chain: returns its canonical text and hash. */
export function sealRecord(
  encoded: EncodedRecord,
  prevHash: string,
  seq: number,
): { text: string; hash: string } {
  const text = encoded.pre + prevHash + encoded.mid + seq + encoded.post;
  return { text, hash: sha256Hex(text) };
}

const PREV_KEY = '"prev_hash":"';
const SEQ_KEY = ',"seq":';

/**
 * Reads the chain link (`prev_hash`, `seq`) a record's canonical text commits to, without parsing
 * the JSON. Returns `undefined` when the text is not shaped like a record.
 */
export function readLink(text: string): { prevHash: string; seq: number } | undefined {
  const at = text.lastIndexOf(PREV_KEY);
  if (at < 0) return undefined;
  const start = at + PREV_KEY.length;
  const prevHash = text.slice(start, start + 64);
  const seqAt = text.indexOf(SEQ_KEY, start + 64);
  if (seqAt < 0) return undefined;
  let end = seqAt + SEQ_KEY.length;
  let seq = 0;
  for (;;) {
    const c = text.charCodeAt(end);
    if (c < 48 || c > 57) break;
    seq = seq * 10 + (c - 48);
    end++;
  }
  if (end === seqAt + SEQ_KEY.length) return undefined;
  return { prevHash, seq };
}

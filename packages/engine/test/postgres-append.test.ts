/**
 * PostgreSQL appends: plain records are linked and hashed by the server (`aa_append_sealed`), records
 * it cannot take fall back to sealing in Node under the same head lock. Both must produce exactly
 * the text and hash `sealRecord` defines, and several stores (replicas) must keep one dense chain.
 */
import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import {
  type EncodedRecord,
  encodeRecord,
  GENESIS_HASH,
  type RecordFields,
  readLink,
  sealRecord,
} from "../src/chain/record.js";
import { POSTGRES_MIGRATIONS, PostgresStore } from "../src/store/postgres.js";
import type { PendingAppend, StoredEvent } from "../src/store/types.js";
import { actionRecordFields } from "./helpers.js";
import { PG_URL, pgSchemaUrl } from "./pg.js";

const storeUrl = pgSchemaUrl();
/** A second schema, built by hand at version 1 (before server sealing existed). */
const v1Url = pgSchemaUrl();
const opened: PostgresStore[] = [];
afterAll(async () => {
  for (const store of opened) await store.close();
});

async function open(): Promise<PostgresStore> {
  const store = await PostgresStore.open(storeUrl());
  opened.push(store);
  return store;
}

async function openWith(parameter: string): Promise<PostgresStore> {
  const store = await PostgresStore.open(`${storeUrl()}&${parameter}`);
  opened.push(store);
  return store;
}

function fields(org: string, args: unknown, agent = "agent-1"): RecordFields {
  return actionRecordFields({ org, agent, args, tool: "open_pr", metadata: { pr_size: 3 } });
}

function pending(org: string, args: unknown, agent?: string): PendingAppend {
  const f = fields(org, args, agent);
  return { fields: f, encoded: encodeRecord(f) };
}

async function readAll(store: PostgresStore, org: string): Promise<StoredEvent[]> {
  const all: StoredEvent[] = [];
  for (;;) {
    const page = await store.readEvents(org, all.at(-1)?.seq ?? 0, 1000);
    if (page.length === 0) return all;
    all.push(...page);
  }
}

/** Re-seals every stored record in Node and checks text, hash, seq and link. */
function expectChain(events: StoredEvent[], encoded: Map<string, EncodedRecord>): void {
  let prev = GENESIS_HASH;
  events.forEach((event, i) => {
    expect(event.seq).toBe(i + 1);
    const expected = sealRecord(encoded.get(event.id)!, prev, event.seq);
    expect(event.text).toBe(expected.text);
    expect(event.hash).toBe(expected.hash);
    expect(readLink(event.text)).toEqual({ prevHash: prev, seq: event.seq });
    prev = event.hash;
  });
}

describe("PostgreSQL appends", () => {
  it("server-sealed records hash exactly as sealRecord does, whatever the characters", async () => {
    const store = await open();
    const org = `org-${randomUUID()}`;
    const items = [
      pending(org, { title: "plain" }),
      pending(org, { title: "accents é ü ß, CJK 漢字, emoji 🎉 𝄞" }, "agent-é"),
      pending(org, { quote: 'a "quoted" \\ backslash', control: "\u0001\u0002\n\t" }),
      pending(org, { lone: "\ud800 and \udfff", nul: "\u0000" }),
      pending(org, { big: "x".repeat(20_000) }),
    ];
    const outcomes = await store.appendBatch(org, items);
    const encoded = new Map(items.map((item) => [item.fields.id, item.encoded]));
    let prev = GENESIS_HASH;
    outcomes.forEach((outcome, i) => {
      const expected = sealRecord(items[i]!.encoded, prev, i + 1);
      expect(outcome).toEqual({ ok: true, seq: i + 1, hash: expected.hash });
      prev = expected.hash;
    });
    const events = await readAll(store, org);
    expectChain(events, encoded);
    expect(events.map((e) => [e.agent, e.actionType])).toEqual(
      items.map((item) => [item.fields.agent, item.fields.actionType]),
    );
    expect(await store.head(org)).toEqual({ seq: 5, hash: prev });
  });

  it("records the server cannot take are sealed in Node, in the same chain", async () => {
    const store = await open();
    const org = `org-${randomUUID()}`;
    const plain = pending(org, { n: 1 });
    // An encoding that carries the part separator raw (canonical JSON never does) must not be split.
    const raw = pending(org, { n: 2 });
    raw.encoded = { ...raw.encoded, post: raw.encoded.post.replace("}", ',"x":"\u0001"}') };
    const after = pending(org, { n: 3 });
    const encoded = new Map([plain, raw, after].map((item) => [item.fields.id, item.encoded]));
    await store.appendBatch(org, [plain]);
    const [rawOutcome] = await store.appendBatch(org, [raw]);
    await store.appendBatch(org, [after]);
    expect(rawOutcome).toMatchObject({ ok: true, seq: 2 });
    const events = await readAll(store, org);
    expect(events).toHaveLength(3);
    expectChain(events, encoded);
    expect(events[1]!.text).toContain('"x":"\u0001"');
  });

  it("several stores appending to one org keep one dense chain, no fork and no gap", async () => {
    const stores = await Promise.all([open(), open(), open(), open()]);
    const org = `org-${randomUUID()}`;
    const encoded = new Map<string, EncodedRecord>();
    const rounds = 25;
    await Promise.all(
      stores.map(async (store, s) => {
        for (let round = 0; round < rounds; round++) {
          const batch = Array.from({ length: 1 + ((round * 7 + s) % 40) }, (_, i) =>
            pending(org, { store: s, round, i }, `agent-${s}`),
          );
          for (const item of batch) encoded.set(item.fields.id, item.encoded);
          const outcomes = await store.appendBatch(org, batch);
          // Each batch is contiguous: one transaction holds the head for all of it.
          const seqs = outcomes.map((o) => (o.ok ? o.seq : -1));
          expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i));
        }
      }),
    );
    const events = await readAll(stores[0]!, org);
    expect(events).toHaveLength(encoded.size);
    expectChain(events, encoded);
    const head = await stores[3]!.head(org);
    expect(head).toEqual({ seq: encoded.size, hash: events.at(-1)!.hash });
  });

  it("early_lock_release=on: replicas with and without it keep one dense chain; appends flushed by a marker commit", async () => {
    const early = [await openWith("early_lock_release=on"), await openWith("early_lock_release=on")];
    const stores = [...early, await open()];
    const org = `org-${randomUUID()}`;
    const encoded = new Map<string, EncodedRecord>();
    await Promise.all(
      stores.map(async (store, s) => {
        for (let round = 0; round < 20; round++) {
          const batch = Array.from({ length: 1 + ((round * 5 + s) % 30) }, (_, i) =>
            pending(org, { store: s, round, i }),
          );
          for (const item of batch) encoded.set(item.fields.id, item.encoded);
          const outcomes = await store.appendBatch(org, batch);
          expect(outcomes.every((o) => o.ok)).toBe(true);
        }
      }),
    );
    expectChain(await readAll(stores[2]!, org), encoded);
    // Every early append, and every chain read through an early store, ends with a marker commit.
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    try {
      const schema = new URL(storeUrl()).searchParams.get("schema");
      const marks = async () =>
        (await client.query(`SELECT coalesce(sum(n), 0)::int AS n FROM ${schema}.flush_marks`)).rows[0].n;
      expect(await marks()).toBeGreaterThanOrEqual(40);
      let before = await marks();
      await stores[2]!.readEvents(org, 0, 10);
      expect(await marks()).toBe(before);
      before = await marks();
      expectChain(await readAll(early[0]!, org), encoded);
      expect(await early[1]!.head(org)).toEqual({ seq: encoded.size, hash: expect.any(String) });
      expect(await early[1]!.getEventAtSeq(org, 1)).toMatchObject({ seq: 1 });
      expect(await marks()).toBeGreaterThan(before + 3);
    } finally {
      await client.end();
    }
  });

  it("refuses an early_lock_release value other than on or off, naming the parameter", async () => {
    await expect(PostgresStore.open(`${storeUrl()}&early_lock_release=yes`)).rejects.toMatchObject({
      code: "INVALID_OPTIONS",
      message: expect.stringContaining("`early_lock_release` URL parameter must be `on` or `off`"),
    });
  });

  it("a version-1 database is migrated and its chain continues, server-sealed", async () => {
    const url = new URL(v1Url());
    const schema = url.searchParams.get("schema")!;
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    const org = `org-${randomUUID()}`;
    const old = [pending(org, { n: 1 }), pending(org, { n: 2 })];
    let prev = GENESIS_HASH;
    try {
      await client.query(`CREATE SCHEMA ${schema}; SET search_path = ${schema}`);
      await client.query("CREATE TABLE schema_version (version INTEGER NOT NULL)");
      await client.query(POSTGRES_MIGRATIONS[0]!);
      await client.query("INSERT INTO schema_version (version) VALUES (1)");
      for (const [i, item] of old.entries()) {
        const { text, hash } = sealRecord(item.encoded, prev, i + 1);
        await client.query(
          "INSERT INTO audit_events (org, seq, id, hash, agent, action_type, record) VALUES ($1, $2, $3, $4, $5, $6, $7)",
          [org, i + 1, item.fields.id, hash, item.fields.agent, item.fields.actionType, text],
        );
        prev = hash;
      }
      await client.query("INSERT INTO chain_heads (org, seq, hash) VALUES ($1, 2, $2)", [org, prev]);
    } finally {
      await client.end();
    }
    const store = await PostgresStore.open(url.toString());
    opened.push(store);
    const next = pending(org, { n: 3 });
    const [outcome] = await store.appendBatch(org, [next]);
    expect(outcome).toEqual({ ok: true, seq: 3, hash: sealRecord(next.encoded, prev, 3).hash });
    const encoded = new Map([...old, next].map((item) => [item.fields.id, item.encoded]));
    expectChain(await readAll(store, org), encoded);
  });
});

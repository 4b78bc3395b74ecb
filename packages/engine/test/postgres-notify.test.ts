/** The hints PostgreSQL replicas push each other: channel names, payloads, coalescing. */
import { describe, expect, it } from "vitest";
import {
  Announcer,
  channelFor,
  decodePayload,
  encodePayload,
  type PendingChange,
} from "../src/store/postgres/notify.js";

const change = (seq: number, approvals: string[] = [], controls = false): PendingChange => ({
  seq,
  approvals: new Set(approvals),
  controls,
});

describe("replica notifications", () => {
  it("name one channel per schema, always a valid identifier length", () => {
    expect(channelFor(null)).toBe("aa_changes_default");
    expect(channelFor("tenant_a")).toBe("aa_changes_tenant_a");
    const long = "s".repeat(63);
    expect(channelFor(long).length).toBeLessThanOrEqual(63);
    expect(channelFor(long)).not.toBe(channelFor(`${"s".repeat(62)}t`));
  });

  it("round-trip org, seq, approvals and controls; ignore foreign payloads", () => {
    const org = 'org "é" \\ 漢字';
    expect(decodePayload(encodePayload(org, change(42, ["apr_1", "apr_2"], true)))).toEqual({
      kind: "appended",
      org,
      seq: 42,
      approvals: ["apr_1", "apr_2"],
      controls: true,
    });
    expect(decodePayload(encodePayload("o", { seq: 1, approvals: "all", controls: false }))).toMatchObject({
      approvals: "all",
      controls: false,
    });
    // Approval ids too long for one payload: the hint says "all" instead.
    const long = encodePayload(
      "o",
      change(
        3,
        Array.from({ length: 50 }, (_, i) => `${i}`.padEnd(200, "x")),
      ),
    );
    expect(Buffer.byteLength(long)).toBeLessThan(8000);
    expect(decodePayload(long)).toMatchObject({ seq: 3, approvals: "all" });
    for (const foreign of [undefined, "", "hello", "{}", '{"o":1,"s":2}', '{"o":"x","s":"2"}', "null"]) {
      expect(decodePayload(foreign)).toBeUndefined();
    }
  });

  it("send at most one notification at a time, merging the commits made meanwhile", async () => {
    const sent: string[] = [];
    let release: () => void = () => {};
    const announcer = new Announcer((payload) => {
      sent.push(payload);
      return new Promise<void>((resolve) => {
        release = resolve;
      });
    });
    announcer.announce("org", change(1));
    for (let seq = 2; seq <= 50; seq++) announcer.announce("org", change(seq, [`apr_${seq % 3}`]));
    announcer.announce("org", change(51, [], true));
    expect(sent).toHaveLength(1);
    release();
    await new Promise((resolve) => setImmediate(resolve));
    expect(sent).toHaveLength(2);
    release();
    await announcer.drain();
    expect(sent.map((payload) => decodePayload(payload))).toEqual([
      { kind: "appended", org: "org", seq: 1, approvals: [], controls: false },
      {
        kind: "appended",
        org: "org",
        seq: 51,
        approvals: ["apr_2", "apr_0", "apr_1"],
        controls: true,
      },
    ]);
  });

  it("say `all` instead of listing more than 100 approvals, and survive a failed send", async () => {
    const sent: string[] = [];
    let fail = true;
    const announcer = new Announcer(async (payload) => {
      if (fail) {
        fail = false;
        throw new Error("connection lost");
      }
      sent.push(payload);
    });
    announcer.announce("org", change(1));
    for (let i = 0; i < 150; i++) announcer.announce("org", change(2 + i, [`apr_${i}`]));
    await announcer.drain();
    expect(sent.map((payload) => decodePayload(payload))).toEqual([
      { kind: "appended", org: "org", seq: 151, approvals: "all", controls: false },
    ]);
  });
});

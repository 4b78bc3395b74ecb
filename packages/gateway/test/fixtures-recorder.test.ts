// The committed wire-contract fixtures must be exactly what scripts/record-fixtures.mjs records
// from a real gateway: a scenario edited by hand in a fixture file (and not in the recorder) would
// be lost the next time someone re-records after a deliberate wire change.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const recorder = fileURLToPath(new URL("../scripts/record-fixtures.mjs", import.meta.url));
const committed = fileURLToPath(new URL("../../wire-contract/fixtures/", import.meta.url));
const out = mkdtempSync(join(tmpdir(), "aa-fixtures-recorded-"));
afterAll(() => rmSync(out, { recursive: true, force: true }));

const readJson = (dir: string, file: string): unknown => JSON.parse(readFileSync(join(dir, file), "utf8"));

describe("wire-contract fixture recorder", () => {
  it("re-records every committed fixture exactly (run the recorder after a deliberate wire change)", () => {
    execFileSync(process.execPath, [recorder], {
      env: { ...process.env, AA_FIXTURES_OUT: out, NODE_NO_WARNINGS: "1" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    const recorded = readdirSync(out).sort();
    expect(recorded).toEqual(
      readdirSync(committed)
        .filter((f) => f.endsWith(".json"))
        .sort(),
    );
    for (const file of recorded) {
      expect(readJson(out, file), `${file} drifted from the recorder's output`).toEqual(
        readJson(committed, file),
      );
    }
  });
});

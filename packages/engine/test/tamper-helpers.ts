import { createHash } from "node:crypto";

export { type DecisionEngine, openEngine } from "../src/index.js";

export function sha256HexForTests(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

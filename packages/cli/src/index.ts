/** Programmatic entry of the `aa` CLI (used by tests and embedding tools). */

export { STARTER_POLICY } from "./commands/init.js";
export { ExitCode, formatTable } from "./output.js";
export { buildProgram, main } from "./program.js";

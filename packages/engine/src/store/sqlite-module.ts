/**
 * Loads `node:sqlite`, silencing exactly the one ExperimentalWarning Node 22 prints for it (an
 * embedded user should not see a warning for our implementation detail). Every other warning,
 * including other experimental features, still goes through.
 */
type SqliteModule = typeof import("node:sqlite");

let loaded: SqliteModule | undefined;

export function isSqliteExperimentalWarning(warning: unknown, typeOrOptions: unknown): boolean {
  const type =
    typeof typeOrOptions === "string"
      ? typeOrOptions
      : typeOrOptions && typeof typeOrOptions === "object"
        ? (typeOrOptions as { type?: unknown }).type
        : undefined;
  const isExperimental =
    type === "ExperimentalWarning" || (warning instanceof Error && warning.name === "ExperimentalWarning");
  const text = warning instanceof Error ? warning.message : String(warning);
  return isExperimental && /^SQLite is an experimental feature/.test(text);
}

export async function loadSqlite(): Promise<SqliteModule> {
  if (loaded) return loaded;
  const original = process.emitWarning;
  const filtered = function (this: unknown, warning: string | Error, ...rest: unknown[]) {
    if (isSqliteExperimentalWarning(warning, rest[0])) return;
    return (original as (...args: unknown[]) => void).call(process, warning, ...rest);
  };
  process.emitWarning = filtered as typeof process.emitWarning;
  try {
    loaded = await import("node:sqlite");
  } finally {
    // Restore only if nobody replaced it meanwhile (never clobber another library's hook).
    if (process.emitWarning === (filtered as typeof process.emitWarning)) process.emitWarning = original;
  }
  return loaded;
}

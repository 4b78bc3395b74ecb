/**
 * Reloads the embedded gate's policy when its file changes (`watchPolicy: true`): the next call is
 * decided by the new policy, and the engine records the change (`policy.changed`) in the chain.
 */
import { type FSWatcher, readFileSync, watch } from "node:fs";
import { basename, dirname, extname } from "node:path";
import { hashPolicyDocument, type PolicyDocument, parsePolicy } from "@aa/policy";

/** Settles reloads after a burst of file events (editors write, rename and touch in a row). */
const SETTLE_MS = 50;

export interface PolicyWatcher {
  /** The policy in force (the last one that loaded). */
  current(): PolicyDocument;
  /** Waits for a reload in progress, then stops watching. */
  close(): Promise<void>;
}

/**
 * Watches `file` (through its directory, so an editor that replaces the file by renaming a new one
 * over it is still seen). A file that does not parse or validate is reported with
 * `process.emitWarning` (code `AA_POLICY_RELOAD_FAILED`) and the last good policy stays in force:
 * an edit in progress never opens or closes the gate by accident.
 */
export function watchPolicyFile(options: {
  file: string;
  initial: PolicyDocument;
  apply: (policy: PolicyDocument, changedBy: string) => Promise<void>;
}): PolicyWatcher {
  const { file, apply } = options;
  let current = options.initial;
  let currentHash = hashPolicyDocument(current);
  let timer: NodeJS.Timeout | undefined;
  let reloading: Promise<void> = Promise.resolve();
  let closed = false;

  const reload = async (): Promise<void> => {
    let next: PolicyDocument;
    try {
      const format = extname(file) === ".json" ? "json" : "yaml";
      next = parsePolicy(readFileSync(file, "utf8"), { source: file, format });
    } catch (error) {
      // A missing file mid-rename is not worth a warning: the rename's own event follows.
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
      safelyWarn(
        `the policy file ${file} did not load; the previous policy stays in force:\n${(error as Error).message}`,
      );
      return;
    }
    const hash = hashPolicyDocument(next);
    if (hash === currentHash || closed) return;
    try {
      await apply(next, `policy-file:${file}`);
      current = next;
      currentHash = hash;
    } catch (error) {
      safelyWarn(
        `the policy from ${file} could not be put in force; the previous policy stays:\n${(error as Error).message}`,
      );
    }
  };

  const watcher: FSWatcher = watch(dirname(file), { persistent: false }, (_event, name) => {
    if (closed || (name !== null && name !== basename(file))) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      reloading = reloading.then(reload);
    }, SETTLE_MS);
    timer.unref();
  });
  watcher.on("error", (error) => safelyWarn(`watching the policy file ${file} failed: ${error.message}`));

  return {
    current: () => current,
    async close() {
      closed = true;
      clearTimeout(timer);
      watcher.close();
      await reloading;
    },
  };
}

function safelyWarn(message: string): void {
  try {
    process.emitWarning(`Agent Assembly: ${message}`, { code: "AA_POLICY_RELOAD_FAILED" });
  } catch {
    // A warning listener that throws must not reach the watcher's callback.
  }
}

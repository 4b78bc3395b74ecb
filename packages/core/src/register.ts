/**
 * `node --import @aa/core/register app.js`: govern an app without changing its code.
 *
 * Before the app's first module loads: read the configuration (`AA_*` env over `aa.config.json`),
 * import the register entries of the adapter packages that declare one (their module loader
 * hooks), then `initAssembly()`. The context is shut down (final signed checkpoint) when the
 * process runs out of work or receives SIGINT / SIGTERM / SIGHUP.
 *
 * Fails closed: when configuration or install fails, the reason goes to stderr and the process
 * exits with code 78 (configuration) or 70 (install) before the app runs, unless the failure mode
 * is `open` (`AA_FAILURE_MODE=open`, or `failureMode: "open"` in the file); then the app runs
 * ungoverned, with a warning.
 */
import { findAdapterRegisterEntries, importAdapterRegisterEntries } from "./adapter-register-hooks.js";
import { loadRegisterConfig, safelyReadRegisterFailureMode } from "./config-file.js";
import { ConfigurationError } from "./errors.js";
import { type AssemblyContext, initAssembly } from "./init.js";

/** Exit code for a configuration error (sysexits EX_CONFIG). */
const EXIT_CONFIGURATION_ERROR = 78;
/** Exit code for any other failure to install (sysexits EX_SOFTWARE). */
const EXIT_INSTALL_FAILED = 70;

const PREFIX = "[agent-assembly]";
const SHUTDOWN_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

async function start(): Promise<AssemblyContext> {
  const config = loadRegisterConfig(process.cwd(), process.env);
  const root = typeof config.options.root === "string" ? config.options.root : process.cwd();
  await importAdapterRegisterEntries(findAdapterRegisterEntries(root));
  return initAssembly(config.options);
}

function shutDownWithTheProcess(context: AssemblyContext): void {
  let done = false;
  const shutdown = async (): Promise<void> => {
    if (done) return;
    done = true;
    try {
      await context.shutdown();
    } catch (error) {
      process.stderr.write(`${PREFIX} shutdown failed: ${(error as Error)?.message ?? String(error)}\n`);
      process.exitCode ||= 1;
    }
  };
  // The event loop is empty: the app is done. Shutting down may schedule more work; run once.
  process.once("beforeExit", () => void shutdown());
  for (const signal of SHUTDOWN_SIGNALS) {
    const onSignal = (): void => {
      // Another listener (the app's) decides how the process ends; alone, end it as the default
      // handler would once the checkpoint is written.
      const alone = process.listenerCount(signal) === 1;
      void shutdown().finally(() => {
        if (!alone) return;
        process.removeListener(signal, onSignal);
        process.kill(process.pid, signal);
      });
    };
    process.on(signal, onSignal);
  }
}

try {
  shutDownWithTheProcess(await start());
} catch (error) {
  const message = (error as Error)?.message ?? String(error);
  const isConfiguration = error instanceof ConfigurationError;
  if (safelyReadRegisterFailureMode(process.cwd(), process.env) === "open") {
    process.stderr.write(`${PREFIX} not governing this process (failure mode "open"): ${message}\n`);
  } else {
    process.stderr.write(
      `${PREFIX} refusing to start the app ungoverned: ${message}\n${PREFIX} fix the configuration (AA_* environment variables or aa.config.json), or set AA_FAILURE_MODE=open to run ungoverned\n`,
    );
    process.exit(isConfiguration ? EXIT_CONFIGURATION_ERROR : EXIT_INSTALL_FAILED);
  }
}

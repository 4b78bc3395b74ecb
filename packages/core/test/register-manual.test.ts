import { afterEach, describe, expect, it } from "vitest";
import {
  type AssemblyContext,
  AssemblyDeniedError,
  AssemblyError,
  ConfigurationError,
  type FrameworkAdapter,
  getAssembly,
  type Interceptor,
  initAssembly,
  isWrapped,
  manuallyInstrument,
  wrapMethod,
} from "../src/index.js";

const policy = {
  version: 1,
  default: "deny",
  policies: [
    {
      name: "small",
      action: "transfer",
      effect: "allow",
      when: [{ field: "args.amount", op: "lt", value: 100 }],
    },
  ],
};

/** A bundled framework's class: not resolvable as a package, only reachable through its namespace. */
function bundledFramework() {
  class Tool {
    constructor(readonly name: string) {}
    run(args: { amount: number }) {
      return `sent ${args.amount}`;
    }
  }
  return { Tool };
}

/** An adapter that governs only what manuallyInstrument hands it. */
function manualAdapter(): FrameworkAdapter & { seen: (string | undefined)[] } {
  let interceptor: Interceptor | undefined;
  const handles: { unwrap(): boolean }[] = [];
  const seen: (string | undefined)[] = [];
  return {
    name: "bundled-fake",
    supportedVersions: "*",
    seen,
    isAvailable: () => true,
    registerHooks(given) {
      interceptor = given;
      return { entryPoints: [], detail: "waiting for manuallyInstrument()" };
    },
    instrumentModule(specifier, namespace) {
      seen.push(specifier);
      const Tool = namespace.Tool as { prototype: { run(args: unknown): unknown } } | undefined;
      if (typeof Tool?.prototype?.run !== "function") return undefined;
      handles.push(
        wrapMethod(
          Tool.prototype,
          "run",
          "bundled-fake",
          (original) =>
            function (this: { name: string }, args: unknown) {
              return interceptor!.intercept({ framework: "bundled-fake", toolName: this.name, args }, () =>
                original.call(this, args),
              );
            },
        ),
      );
      return { entryPoints: [`${specifier} Tool.prototype.run`] };
    },
    unregisterHooks() {
      for (const handle of handles.splice(0)) handle.unwrap();
    },
  };
}

let context: AssemblyContext | undefined;
afterEach(async () => {
  await context?.shutdown();
  context = undefined;
});

describe("getAssembly", () => {
  it("rejects with NOT_INITIALISED before initAssembly, then returns the same context", async () => {
    const error = await getAssembly().catch((e) => e);
    expect(error).toBeInstanceOf(AssemblyError);
    expect(error.code).toBe("NOT_INITIALISED");
    expect(error.message).toContain("--import @aa/core/register");
    context = await initAssembly({ agent: { id: "bot" }, policy, store: ":memory:", adapters: [] });
    await expect(getAssembly()).resolves.toBe(context);
    await context.shutdown();
    context = undefined;
    await expect(getAssembly()).rejects.toMatchObject({ code: "NOT_INITIALISED" });
  });
});

describe("manuallyInstrument", () => {
  it("hands the namespace to installed adapters implementing instrumentModule; the bundled copy is governed until shutdown", async () => {
    const adapter = manualAdapter();
    context = await initAssembly({ agent: { id: "bot" }, policy, store: ":memory:", adapters: [adapter] });
    const framework = bundledFramework();
    const report = await manuallyInstrument(framework, "bundled-framework");
    expect(report).toEqual({
      specifier: "bundled-framework",
      adapters: [{ name: "bundled-fake", entryPoints: ["bundled-framework Tool.prototype.run"] }],
    });
    const transfer = new framework.Tool("transfer");
    await expect(transfer.run({ amount: 5 })).resolves.toBe("sent 5");
    const denied = await Promise.resolve(transfer.run({ amount: 500 })).catch((e) => e);
    expect(denied).toBeInstanceOf(AssemblyDeniedError);
    expect(denied.policy).toBe("small");
    // Handing the same namespace twice does not wrap twice.
    await manuallyInstrument(framework, "bundled-framework");
    await expect(transfer.run({ amount: 5 })).resolves.toBe("sent 5");

    await context.shutdown();
    context = undefined;
    expect(isWrapped(framework.Tool.prototype, "run")).toBe(false);
    expect(transfer.run({ amount: 500 })).toBe("sent 500");
    // The shut-down adapter is forgotten: a new assembly without it recognises nothing.
    context = await initAssembly({ agent: { id: "bot" }, policy, store: ":memory:", adapters: [] });
    const error = await manuallyInstrument(bundledFramework(), "bundled-framework").catch((e) => e);
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(adapter.seen).toEqual(["bundled-framework", "bundled-framework"]);
  });

  it("fails closed when no installed adapter recognises the namespace, naming what is installed", async () => {
    context = await initAssembly({
      agent: { id: "bot" },
      policy,
      store: ":memory:",
      adapters: [manualAdapter()],
    });
    const error = await manuallyInstrument({ somethingElse: 1 }, "left-pad").catch((e) => e);
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error.message).toBe(
      "no installed adapter recognised left-pad passed to manuallyInstrument, so its tool calls would run ungoverned. Installed adapters: bundled-fake; of those, supporting manuallyInstrument (instrumentModule): bundled-fake",
    );
  });

  it("rejects a value that is not a module namespace, and calls before initialisation", async () => {
    await expect(manuallyInstrument(undefined as unknown as object)).rejects.toThrow(
      /manuallyInstrument expects a module namespace object/,
    );
    await expect(manuallyInstrument(bundledFramework(), "bundled-framework")).rejects.toMatchObject({
      code: "NOT_INITIALISED",
    });
  });

  it("wraps an adapter's instrumentModule failure in ADAPTER_INSTALL_FAILED", async () => {
    const adapter: FrameworkAdapter = {
      ...manualAdapter(),
      instrumentModule() {
        throw new Error("unexpected export shape");
      },
    };
    context = await initAssembly({ agent: { id: "bot" }, policy, store: ":memory:", adapters: [adapter] });
    const error = await manuallyInstrument(bundledFramework(), "bundled-framework").catch((e) => e);
    expect(error).toBeInstanceOf(AssemblyError);
    expect(error.code).toBe("ADAPTER_INSTALL_FAILED");
    expect(error.message).toContain(
      'adapter "bundled-fake" failed to instrument bundled-framework: unexpected export shape',
    );
  });
});

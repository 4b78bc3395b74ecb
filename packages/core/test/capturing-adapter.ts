import type { FrameworkAdapter, Interceptor } from "../src/index.js";

/** An adapter that hands its interceptor to the test, so tests call it as an adapter would. */
export function capturingAdapter(
  name = "capture",
  priority?: number,
): FrameworkAdapter & { interceptor?: Interceptor } {
  const adapter: FrameworkAdapter & { interceptor?: Interceptor } = {
    name,
    ...(priority === undefined ? {} : { priority }),
    supportedVersions: "*",
    isAvailable: () => true,
    registerHooks(interceptor) {
      adapter.interceptor = interceptor;
      return { entryPoints: [] };
    },
    unregisterHooks() {
      adapter.interceptor = undefined;
    },
  };
  return adapter;
}

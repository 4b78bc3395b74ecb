// Shared helpers for benchmarks: warm up, repeat, report medians and percentiles.
// Usage: const s = measure(fn, { iterations: 100_000, warmup: 10_000 }); s.p50, s.p99 in nanoseconds.
// `s.cpu` is the process's CPU time (user + system, every thread) per call in nanoseconds: unlike
// wall time it does not grow while the process waits for a core, so on a loaded machine it is the
// steadier figure to compare (it includes the timing loop's own small cost).
export function measure(fn, { iterations = 100_000, warmup = 10_000, batch = 1 } = {}) {
  for (let i = 0; i < warmup; i++) fn();
  const samples = new Float64Array(iterations);
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < iterations; i++) {
    const t0 = process.hrtime.bigint();
    for (let j = 0; j < batch; j++) fn();
    samples[i] = Number(process.hrtime.bigint() - t0) / batch;
  }
  return { ...summarize(samples), cpu: cpuPerCall(cpu0, iterations * batch) };
}

function cpuPerCall(cpu0, calls) {
  const used = process.cpuUsage(cpu0);
  return ((used.user + used.system) * 1000) / calls;
}

export async function measureAsync(fn, { iterations = 20_000, warmup = 2_000, batch = 1 } = {}) {
  for (let i = 0; i < warmup; i++) await fn();
  const samples = new Float64Array(iterations);
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < iterations; i++) {
    const t0 = process.hrtime.bigint();
    for (let j = 0; j < batch; j++) await fn();
    samples[i] = Number(process.hrtime.bigint() - t0) / batch;
  }
  return { ...summarize(samples), cpu: cpuPerCall(cpu0, iterations * batch) };
}

// `aa bench` (packages/cli/src/bench/stats.ts) computes percentiles the same way; this copy stays
// here so a package benchmark runs after building only that package (docs/decisions.md 73).
export function summarize(samples) {
  const sorted = Float64Array.from(samples).sort();
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { p50: at(0.5), p99: at(0.99), min: sorted[0], n: sorted.length };
}

export const us = (ns) => `${(ns / 1000).toFixed(2)} µs`;

export function table(rows) {
  console.table(rows);
}

/** An interceptor that only runs the tool: installing an adapter with it measures the patch alone. */
export const passThroughInterceptor = { intercept: (_call, invoke) => Promise.resolve().then(invoke) };

/** Run `fn` with `adapter` installed behind the pass-through interceptor (the adapter's own share). */
export async function withAdapterOnly(adapter, hostContext, fn) {
  await adapter.registerHooks(passThroughInterceptor, hostContext);
  try {
    return await fn();
  } finally {
    await adapter.unregisterHooks();
  }
}

/** Run `fn` inside a governed process: `initAssembly` (passed in, so this file needs no package) then shutdown. */
export async function withGovernance(initAssembly, options, fn) {
  const assembly = await initAssembly({ mode: "sdk-only", agent: { id: "bench-bot" }, ...options });
  try {
    return await fn();
  } finally {
    await assembly.shutdown();
  }
}

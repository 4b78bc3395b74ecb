/** Resolves on the first SIGINT or SIGTERM, for long-running commands (`aa gateway start`, `aa proxy`). */
export function untilStopSignal(): Promise<void> {
  return new Promise<void>((done) => {
    const stop = () => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      done();
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
}

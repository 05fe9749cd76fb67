/**
 * Runs `stop` on the first SIGTERM or SIGINT, then exits; a second signal exits at once.
 * The CLI process itself handles signals: there is no wrapper process to swallow them.
 */
export function onShutdownSignal(stop: (signal: NodeJS.Signals) => Promise<void>, log: (msg: string) => void): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) {
      log(`${signal} again: exiting without waiting`);
      process.exit(1);
    }
    stopping = true;
    log(`${signal} received: draining in-flight requests and flushing the store`);
    stop(signal).then(
      () => process.exit(0),
      (err: unknown) => {
        log(`shutdown failed: ${(err as Error).message}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}

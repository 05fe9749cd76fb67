import { parentPort, workerData } from 'node:worker_threads';
import { createRunner, type RunnerSpec } from './runner.js';
import type { StoredDelivery } from './source.js';

/**
 * A replay worker thread: the main thread reads the store and sends batches of
 * deliveries; this thread runs the flows over them and answers each batch with its
 * rows, which is also how the main thread bounds what is in flight.
 */
const port = parentPort!;
type Message = { type: 'batch'; rows: StoredDelivery[] } | { type: 'end' };

const fail = (err: unknown) => {
  const e = err as Error & { code?: string; details?: unknown };
  port.postMessage({ type: 'error', error: { message: e.message, code: e.code, details: e.details, stack: e.stack } });
};

try {
  const runner = await createRunner(workerData as RunnerSpec);
  let chain = Promise.resolve();
  port.on('message', (m: Message) => {
    chain = chain
      .then(async () => {
        if (m.type === 'batch') {
          const output = await runner.run(m.rows);
          port.postMessage({ type: 'output', output }, [output.bytes.buffer, output.ends.buffer]);
        } else {
          port.postMessage({ type: 'done', counts: await runner.finish() });
          port.close();
        }
      })
      .catch(async (err) => {
        await runner.abort().catch(() => {});
        fail(err);
      });
  });
  port.postMessage({ type: 'ready' });
} catch (err) {
  fail(err);
}

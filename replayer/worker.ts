import { parentPort, workerData } from 'node:worker_threads';
import { runPartition, type PartitionSpec } from './partition.js';

/** A replay worker thread: runs one partition and reports progress and its counts to the parent. */
const port = parentPort!;
try {
  const counts = await runPartition(workerData as PartitionSpec, (done) => port.postMessage({ type: 'progress', done }));
  port.postMessage({ type: 'done', counts });
} catch (err) {
  const e = err as Error & { code?: string; details?: unknown };
  port.postMessage({ type: 'error', error: { message: e.message, code: e.code, details: e.details, stack: e.stack } });
}

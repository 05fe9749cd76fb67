import type { FastifyInstance } from 'fastify';
import { buildRecorder, closeRecorder } from '../../recorder/app.js';
import type { ConfigLayer } from '../../recorder/config.js';
import { openCaptureWriter, type CaptureWriter } from '../../core/store/writer.js';
import type { OpenWalFile } from '../../core/store/wal.js';
import { onCleanup, silentLogger, tempDir, testConfig } from '../helpers.js';

/** A recorder app over a fresh temporary store, for `inject()` tests; closed after the test. */
export async function recorderApp(
  layers: ConfigLayer[] = [],
  opts: { openFile?: OpenWalFile } = {},
): Promise<{ app: FastifyInstance; capture: CaptureWriter; store: string; close(): Promise<void> }> {
  const store = await tempDir();
  const config = testConfig(store, ...layers);
  const capture = await openCaptureWriter({
    store,
    instance: config.instance,
    maxSegmentBytes: config.wal.max_segment_bytes,
    maxSegmentAgeMs: config.wal.max_segment_age_ms,
    ...(opts.openFile ? { openFile: opts.openFile } : {}),
  });
  const app = await buildRecorder({ config, capture, logger: silentLogger });
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await closeRecorder(app);
    await capture.close();
  };
  onCleanup(close);
  return { app, capture, store, close };
}

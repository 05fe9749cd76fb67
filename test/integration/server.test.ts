import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { startRecorder } from '../../recorder/server.js';
import { onCleanup, silentLogger, tempDir, testConfig } from '../helpers.js';

describe('starting the recorder', () => {
  it('says the port is in use, and releases the store, when it cannot listen', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    onCleanup(() => new Promise<void>((r) => blocker.close(() => r())));
    const port = (blocker.address() as { port: number }).port;
    const store = await tempDir();
    await expect(startRecorder(testConfig(store, { port }), { logger: silentLogger })).rejects.toMatchObject({
      code: 'HS_ERR_LISTEN_FAILED',
      message: expect.stringMatching(/port is in use/),
    });
    // The instance lock was released: the same instance starts on a free port.
    const recorder = await startRecorder(testConfig(store), { logger: silentLogger });
    await recorder.stop();
  });
});

import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { describe, expect, it } from 'vitest';
import { generateDeliveries, type GeneratedDelivery } from '../../fixtures/generator/deliveries.js';
import { startRecorder } from '../../recorder/server.js';
import { queryStore, silentLogger, tempDir, testConfig } from '../helpers.js';
import { startRecordProcess } from './cli.js';

/** Sends deliveries continuously with `concurrency` in flight; returns the ids the recorder acknowledged (202). */
function loadUntilStopped(url: string, deliveries: GeneratedDelivery[], concurrency: number) {
  const acked: string[] = [];
  let stopped = false;
  let next = 0;
  const dispatcher = new Agent({ connections: concurrency });
  const worker = async () => {
    while (!stopped && next < deliveries.length) {
      const d = deliveries[next++]!;
      try {
        const res = await request(`${url}/hooks/${d.source}`, { method: 'POST', headers: d.headers, body: d.body, dispatcher });
        await res.body.dump();
        if (res.statusCode === 202) acked.push(d.deliveryId);
      } catch {
        // The recorder died or is closing: this delivery was not acknowledged.
      }
    }
  };
  const done = Promise.all(Array.from({ length: concurrency }, worker));
  return {
    acked,
    async stop() {
      stopped = true;
      await done;
      await dispatcher.destroy();
    },
  };
}

describe('durability', () => {
  it('keeps every acknowledged delivery when the recorder is killed with SIGKILL under load', async () => {
    const store = await tempDir();
    const deliveries = [...generateDeliveries({ count: 20_000, seed: 11, slim: true })];
    // Small segments, so the kill also lands between segment rolls.
    const { child, url } = await startRecordProcess(['--store', store, '--instance', 'crashy', '--config', await smallSegmentsConfig()]);
    const load = loadUntilStopped(url, deliveries, 16);
    await expect.poll(() => load.acked.length, { timeout: 20_000, interval: 20 }).toBeGreaterThan(1500);
    child.kill('SIGKILL');
    await load.stop();
    const acked = [...load.acked];
    // The kill left WAL segments (and the dead process's lock) behind: recovery has real work to do.
    const leftBehind = await readdir(join(store, '_wal', 'crashy'));
    expect(leftBehind.some((f) => f.endsWith('.wal'))).toBe(true);
    expect(leftBehind).toContain('LOCK');

    // Restart: recovery rolls what the killed process left in its WAL.
    const recorder = await startRecorder(testConfig(store, { instance: 'crashy' }), { logger: silentLogger });
    await recorder.stop();
    const stored = new Set((await queryStore<{ delivery_id: string }>(store, 'SELECT delivery_id FROM deliveries')).map((r) => r.delivery_id));
    const lost = acked.filter((id) => !stored.has(id));
    expect(lost).toEqual([]);
    expect(acked.length).toBeGreaterThan(1500);
    expect((await readdir(join(store, '_wal', 'crashy'))).filter((f) => f.endsWith('.wal'))).toEqual([]);
  });

  it('drains in-flight requests and flushes everything to Parquet on SIGTERM', async () => {
    const store = await tempDir();
    const deliveries = [...generateDeliveries({ count: 20_000, seed: 12, slim: true })];
    const { child, url, exited, output } = await startRecordProcess(['--store', store, '--instance', 'graceful']);
    const load = loadUntilStopped(url, deliveries, 16);
    await expect.poll(() => load.acked.length, { timeout: 20_000, interval: 20 }).toBeGreaterThan(500);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    await load.stop();
    expect(output()).toContain('every acknowledged record is in the store');
    const stored = new Set((await queryStore<{ delivery_id: string }>(store, 'SELECT delivery_id FROM deliveries')).map((r) => r.delivery_id));
    expect(load.acked.filter((id) => !stored.has(id))).toEqual([]);
    // Nothing left in the WAL: it was all rolled into Parquet before exit.
    expect((await readdir(join(store, '_wal', 'graceful'))).filter((f) => f.endsWith('.wal'))).toEqual([]);
  });
});

async function smallSegmentsConfig(): Promise<string> {
  const file = join(await tempDir(), 'small-segments.yaml');
  await writeFile(file, 'wal:\n  max_segment_bytes: 262144\n  max_segment_age_ms: 200\n');
  return file;
}

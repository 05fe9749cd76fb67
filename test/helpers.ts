import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach } from 'vitest';
import { openStoreReader } from '../core/store/reader.js';
import { resolveConfig, type ConfigLayer, type RecorderConfig } from '../recorder/config.js';

export const silentLogger = pino({ level: 'silent' });

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** A fresh temporary directory, removed after the test. */
export async function tempDir(prefix = 'hookshadow-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Registers cleanup to run after the current test (servers, writers). */
export function onCleanup(fn: () => Promise<void> | void): void {
  cleanups.push(async () => {
    await fn();
  });
}

export function testConfig(store: string, ...layers: ConfigLayer[]): Readonly<RecorderConfig> {
  return resolveConfig([{ store, port: 0, instance: 'test', log_level: 'silent' }, ...layers]);
}

/** Runs one query over a store's views and closes the reader. */
export async function queryStore<T = Record<string, unknown>>(store: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const reader = await openStoreReader(store);
  try {
    return await reader.query<T>(sql, params);
  } finally {
    reader.close();
  }
}

/** Starting the recorder benchmark's server children (bench/recorder/server.ts) over the protocol of bench/shared/child-protocol.ts. */
import { fileURLToPath } from 'node:url';
import { BenchChild } from '../shared/child-protocol.js';
import type { BackendRoleOptions, RecorderRoleOptions } from './server.js';

const SERVER_JS = fileURLToPath(new URL('./server.js', import.meta.url));

/** The roles of bench/recorder/server.ts. */
export type RecorderBenchRole = 'bare' | 'recorder' | 'backend';

/**
 * Spawns `node dist/bench/recorder/server.js <role> <options>` and waits for its ready line. Commands
 * get 10 s; stopping gets 2 minutes, since the recorder drains and rolls its WAL into Parquet first.
 */
export function startRecorderBenchChild(
  role: RecorderBenchRole,
  options: RecorderRoleOptions | BackendRoleOptions = {},
  nodeArgs: string[] = [],
  readyTimeoutMs = 30_000,
): Promise<BenchChild> {
  return BenchChild.start(SERVER_JS, role, options, nodeArgs, { readyMs: readyTimeoutMs, requestMs: 10_000, stopMs: 120_000 });
}

/** Starting the serve benchmark's server under test (bench/serve/server.ts) over the protocol of bench/shared/child-protocol.ts. */
import { fileURLToPath } from 'node:url';
import { BenchChild } from '../shared/child-protocol.js';
import type { ServerOptions } from './server.js';

const SERVER_JS = fileURLToPath(new URL('./server.js', import.meta.url));

/** The roles of bench/serve/server.ts. */
export type ServeBenchRole = 'recorder' | 'serve';

/**
 * Spawns `node dist/bench/serve/server.js <role> <options>` and waits for its ready line. Commands get
 * 30 s; stopping gets a minute by default, since serve settles its queue and writes its live segment first.
 */
export function startServeBenchChild(role: ServeBenchRole, options: ServerOptions, nodeArgs: string[] = [], readyTimeoutMs = 60_000): Promise<BenchChild> {
  return BenchChild.start(SERVER_JS, role, options, nodeArgs, { readyMs: readyTimeoutMs, requestMs: 30_000, stopMs: 60_000 });
}

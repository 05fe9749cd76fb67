/**
 * The server side of the recorder benchmark, run as a child process so the load
 * generator (the parent, bench/recorder/run.ts) and the server under test each
 * have their own event loop and, on a 2-core machine, their own core.
 *
 *   node dist/bench/recorder/server.js <role> '<json options>'
 *
 * Roles:
 *   bare      a bare Fastify app: raw-buffer body parser, POST /hooks/:source → 202, nothing else
 *   recorder  the recorder (startRecorder); passive unless options.legacy is given (tee)
 *   backend   the legacy bot and the forge stub in one process (the bot calls the stub, or
 *             the recorder's egress once told to with the `api` command)
 *
 * Protocol: bench/shared/child-protocol.ts's. Besides `{"cmd":"stop"}` it takes `{"cmd":"mem"}`,
 * `{"cmd":"stats"}` and `{"cmd":"api",...}` (backend only, answered `{"event":"ok",...}`).
 */
import { constants } from 'node:fs';
import { mkdtemp, open, readdir, rm, stat } from 'node:fs/promises';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import Fastify from 'fastify';
import { pino } from 'pino';
import { buildForgeStub } from '../../fixtures/forge-stub/app.js';
import { buildLegacyBot, type LegacyBotOptions } from '../../fixtures/legacy-bot/app.js';
import { resolveConfig, type ConfigLayer } from '../../recorder/config.js';
import { startRecorder } from '../../recorder/server.js';
import { runCommandLoop, type Msg } from '../shared/child-protocol.js';

export interface RecorderRoleOptions {
  /** Store directory; a fresh one under the OS temp dir when absent (removed on stop). */
  store?: string;
  /** Tee mode: the legacy handler's URL. */
  legacy?: string;
  upstreams?: Record<string, string>;
  /** Keep the store after stop (to inspect it). */
  keepStore?: boolean;
  /**
   * Diagnostic only, never a reported recorder figure: the WAL's writes are not synced in this
   * process (O_DSYNC dropped from its open flags, FileHandle.datasync a no-op), to show what syncing costs.
   */
  nosync?: boolean;
  /** Extra recorder config layered over the benchmark's (diagnostics only). */
  config?: ConfigLayer;
  /** Diagnostics only: DuckDB options merged over the capture writer's (e.g. {"memory_limit": "128MB"}). */
  duckdb?: Record<string, string>;
}

export interface BackendRoleOptions {
  api?: { github: string; gitea: string };
  agents?: string;
}

/** Cumulative event-loop utilisation figures (ms); the parent takes differences. */
function elu(): Msg {
  const e = performance.eventLoopUtilization();
  return { eluIdleMs: e.idle, eluActiveMs: e.active };
}

function memory(): Msg {
  const m = process.memoryUsage();
  return { rss: m.rss, heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers };
}

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += await dirBytes(path);
    else total += (await stat(path).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

async function parquetFiles(dir: string): Promise<number> {
  let n = 0;
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (entry.isDirectory()) n += await parquetFiles(join(dir, entry.name));
    else if (entry.name.endsWith('.parquet')) n += 1;
  }
  return n;
}

interface Role {
  ready: Msg;
  handle?(cmd: Msg): Promise<Msg | null>;
  stats?(): Msg;
  stop(): Promise<Msg>;
}

async function bare(): Promise<Role> {
  const app = Fastify({ logger: false, bodyLimit: 25 * 1024 * 1024 });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.post('/hooks/:source', async (_request, reply) => reply.status(202).send());
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    ready: { url },
    async stop() {
      await app.close();
      return {};
    },
  };
}

async function recorder(opts: RecorderRoleOptions): Promise<Role> {
  if (opts.nosync) {
    const probe = await open(process.execPath, 'r');
    (Object.getPrototypeOf(probe) as { datasync: () => Promise<void> }).datasync = async () => undefined;
    await probe.close();
    // The WAL opens its segments O_DSYNC: drop that flag. Named imports of node:fs/promises are
    // live bindings, which syncBuiltinESMExports() updates from the patched CommonJS object.
    const fsp = createRequire(import.meta.url)('node:fs/promises') as { open: (path: unknown, flags?: unknown, mode?: unknown) => Promise<unknown> };
    const realOpen = fsp.open;
    fsp.open = (path, flags, mode) => realOpen(path, typeof flags === 'number' ? flags & ~constants.O_DSYNC : flags, mode);
    syncBuiltinESMExports();
  }
  if (opts.duckdb) {
    const extra = opts.duckdb;
    const create = DuckDBInstance.create.bind(DuckDBInstance);
    DuckDBInstance.create = (path?: string, options?: Record<string, string>) => create(path, { ...options, ...extra });
  }
  const store = opts.store ?? (await mkdtemp(join(tmpdir(), 'hookshadow-bench-')));
  const layer: ConfigLayer = { store, port: 0, instance: 'bench', log_level: 'silent' };
  if (opts.legacy) layer.legacy = { url: opts.legacy };
  if (opts.upstreams) layer.upstreams = opts.upstreams;
  const config = resolveConfig(opts.config ? [layer, opts.config] : [layer]);
  const running = await startRecorder(config, { logger: pino({ level: 'silent' }) });
  return {
    ready: { url: running.url, store, mode: config.legacy.url ? 'tee' : 'passive' },
    stats: () => ({ walBytes: running.capture.walBytes(), pendingSegments: running.capture.pendingSegments() }),
    async stop() {
      const started = performance.now();
      await running.stop();
      const stopMs = performance.now() - started;
      const storeBytes = await dirBytes(store);
      const files = await parquetFiles(store);
      if (!opts.keepStore && !opts.store) await rm(store, { recursive: true, force: true });
      return { stopMs, storeBytes, parquetFiles: files };
    },
  };
}

async function backend(opts: BackendRoleOptions): Promise<Role> {
  const stub = buildForgeStub();
  const stubUrl = await stub.app.listen({ host: '127.0.0.1', port: 0 });
  // The bot reads its API bases on every delivery, so `api` can re-point them at the recorder's egress.
  const botOptions: LegacyBotOptions = {
    api: opts.api ?? { github: stubUrl, gitea: `${stubUrl}/api/v1` },
    agents: opts.agents ?? stubUrl,
  };
  const bot = buildLegacyBot(botOptions);
  const botUrl = await bot.listen({ host: '127.0.0.1', port: 0 });
  // The stub keeps every call it saw (for tests); count them and drop them so its memory stays flat.
  let stubCalls = 0;
  const byKind: Record<string, number> = {};
  const drain = () => {
    for (const call of stub.calls) {
      const kind = `${call.method} ${call.url.replace(/\/repos\/[^/]+\/[^/]+/, '/repos/:r').replace(/\/\d+/g, '/:n')}`;
      byKind[kind] = (byKind[kind] ?? 0) + 1;
    }
    stubCalls += stub.calls.length;
    stub.calls.length = 0;
  };
  const timer = setInterval(drain, 250);
  return {
    ready: { url: botUrl, botUrl, stubUrl },
    async handle(cmd) {
      if (cmd.cmd !== 'api') return null;
      const c = cmd as { github: string; gitea: string; agents: string };
      botOptions.api.github = c.github;
      botOptions.api.gitea = c.gitea;
      botOptions.agents = c.agents;
      return { api: botOptions.api, agents: botOptions.agents };
    },
    stats: () => {
      drain();
      return { stubCalls, byKind };
    },
    async stop() {
      clearInterval(timer);
      drain();
      await bot.close();
      await stub.app.close();
      return { stubCalls, byKind };
    },
  };
}

function startRole(role: string, opts: Msg): Promise<Role> {
  switch (role) {
    case 'bare':
      return bare();
    case 'recorder':
      return recorder(opts as RecorderRoleOptions);
    case 'backend':
      return backend(opts as BackendRoleOptions);
    default:
      process.stderr.write(`usage: server.js bare|recorder|backend '<json options>' (got ${JSON.stringify(role)})\n`);
      process.exit(2);
  }
}

async function main(): Promise<void> {
  const [role = '', json] = process.argv.slice(2);
  const opts = json ? (JSON.parse(json) as Msg) : {};
  const r = await startRole(role, opts);
  runCommandLoop(role, {
    ready: r.ready,
    async answer(cmd) {
      if (cmd.cmd === 'mem') return { event: 'mem', ...memory() };
      if (cmd.cmd === 'stats') return { event: 'stats', ...(r.stats?.() ?? {}), ...memory(), ...elu() };
      const answer = (await r.handle?.(cmd)) ?? null;
      return answer && { event: 'ok', ...answer };
    },
    stop: () => r.stop(),
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`bench server failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});

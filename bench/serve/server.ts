/**
 * The server under test in the serve benchmark, run as a child process (as bench/recorder/server.ts
 * runs its servers) so the load generator, the server and the legacy backend each have an event loop.
 *
 *   node dist/bench/serve/server.js recorder|serve '<json ServerOptions>'
 *
 * Both roles resolve one config with resolveServeConfig, so the recorder underneath is configured
 * identically: `recorder` is startRecorder(config.recorder) alone (tee mode, egress proxy); `serve`
 * is startServe(config), the same recorder plus the dispatcher running the flows in dry-run.
 *
 * Protocol: bench/shared/child-protocol.ts's (`{"event":"ready","url":...}` on stdout once listening;
 * one JSON command per stdin line, answered with the same `id`). Commands:
 *   stats    queue depth now and its maximum since the previous `stats`, the serve counters
 *            (settled, dropped), deliveries captured, memory, event-loop utilisation (this
 *            thread's: serve's flows run in its live worker thread)
 *   lag      event-loop delay (ms: p50, p99, max, mean) since the last `lag` with `reset: true`
 *   summary  serve only: what the live store holds (deliveries, runs by status, divergences)
 *   stop     stops the server (serve settles what is queued and writes its live segment)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { resolveServeConfig } from '../../serve/config.js';
import { startServe, type RunningServe } from '../../serve/server.js';
import { startRecorder } from '../../recorder/server.js';
import { runCommandLoop, type Msg } from '../shared/child-protocol.js';

export interface ServerOptions {
  /** The legacy handler, e.g. http://127.0.0.1:1234/webhook. */
  legacy: string;
  upstreams: Record<string, string>;
  flowsDir: string;
  /** Every flow's mode; `off` leaves serve without a dispatcher (a diagnostic). */
  mode: 'dry-run' | 'off';
  settleMs: number;
  queueSize: number;
  /** How often the queue depth is sampled for its maximum (both roles run the sampler). */
  sampleMs: number;
}

/** The sum of a counter's values, or 0 when the registry does not have it (the recorder alone). */
async function counter(app: FastifyInstance, name: string): Promise<number> {
  const metric = app.recorder.metrics.registry.getSingleMetric(name);
  if (!metric) return 0;
  const { values } = await metric.get();
  return values.reduce((s, v) => s + v.value, 0);
}

async function main(): Promise<void> {
  const [role, json] = process.argv.slice(2);
  if (role !== 'recorder' && role !== 'serve') {
    process.stderr.write(`usage: server.js recorder|serve '<json options>' (got ${JSON.stringify(role)})\n`);
    process.exit(2);
  }
  const o = JSON.parse(json ?? '{}') as ServerOptions;
  const store = await mkdtemp(join(tmpdir(), `hookshadow-bench-serve-${role}-`));
  const config = await resolveServeConfig({
    inline: {
      store,
      host: '127.0.0.1',
      port: 0,
      instance: 'bench',
      log_level: 'silent',
      legacy: { url: o.legacy },
      upstreams: o.upstreams,
      flows: { dir: o.flowsDir, mode: o.mode },
      // Segments roll at stop only: a roll in the measured window would be a separate cost.
      serve: { settle_ms: o.settleMs, queue_size: o.queueSize, segment_seconds: 3600, admin_token: 'bench-admin-token-0123456789' },
    },
    env: {},
  });
  const logger = pino({ level: 'silent' });
  let serve: RunningServe | null = null;
  let app: FastifyInstance;
  let url: string;
  let stopServer: () => Promise<void>;
  if (role === 'serve') {
    serve = await startServe(config, { logger, env: {} });
    ({ app, url } = serve);
    stopServer = () => serve!.stop();
  } else {
    const recorder = await startRecorder(config.recorder, { logger });
    ({ app, url } = recorder);
    stopServer = () => recorder.stop();
  }

  const queued = () => serve?.context.queued() ?? 0;
  let maxQueued = 0;
  const sampler = setInterval(() => {
    maxQueued = Math.max(maxQueued, queued());
  }, o.sampleMs);

  // How late the event loop runs timers: what a request arriving meanwhile waits before it is even parsed.
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  const lag = (reset: boolean): Msg => {
    const ms = (ns: number) => ns / 1e6;
    const out = { p50: ms(loopDelay.percentile(50)), p99: ms(loopDelay.percentile(99)), max: ms(loopDelay.max), mean: ms(loopDelay.mean) };
    if (reset) loopDelay.reset();
    return out;
  };

  const stats = async (): Promise<Msg> => {
    const e = performance.eventLoopUtilization();
    const m = process.memoryUsage();
    const out = {
      queued: queued(),
      maxQueued: Math.max(maxQueued, queued()),
      settled: await counter(app, 'hookshadow_serve_settled_total'),
      dropped: await counter(app, 'hookshadow_serve_queue_dropped_total'),
      deliveries: await counter(app, 'hookshadow_deliveries_total'),
      rss: m.rss,
      heapUsed: m.heapUsed,
      eluIdleMs: e.idle,
      eluActiveMs: e.active,
    };
    maxQueued = queued();
    return out;
  };

  const summary = async (): Promise<Msg> => {
    if (!serve) return {};
    const live = serve.context.live;
    const [totals] = await live.query<Record<string, number>>(
      `SELECT count(*)::INTEGER AS deliveries, coalesce(sum(json_array_length(legacy)), 0)::INTEGER AS legacy_effects, coalesce(sum(len(flows)), 0)::INTEGER AS runs,
              coalesce(sum(list_sum(list_transform(from_json(runs, '[{"intents":["JSON"]}]'), r -> len(r.intents)))), 0)::INTEGER AS intents,
              coalesce(sum(json_array_length(divergences)), 0)::INTEGER AS divergences, coalesce(sum(unexpected), 0)::INTEGER AS unexpected FROM live_current`,
    );
    const byStatus = await live.query<{ status: string; n: number }>(
      `SELECT r.status AS status, count(*)::INTEGER AS n FROM (SELECT unnest(from_json(runs, '[{"status":"VARCHAR"}]')) AS r FROM live_current) GROUP BY 1 ORDER BY 2 DESC`,
    );
    const byClass = await live.query<{ class: string; n: number }>(
      `SELECT d.class AS class, count(*)::INTEGER AS n FROM (SELECT unnest(from_json(divergences, '[{"class":"VARCHAR"}]')) AS d FROM live_current) GROUP BY 1 ORDER BY 2 DESC`,
    );
    return { ...totals, runsByStatus: Object.fromEntries(byStatus.map((r) => [r.status, r.n])), divergencesByClass: Object.fromEntries(byClass.map((r) => [r.class, r.n])) };
  };

  runCommandLoop(role, {
    ready: { url, store, flows: serve?.context.flows.length ?? 0 },
    async answer(cmd) {
      if (cmd.cmd === 'stats') return { event: 'stats', ...(await stats()) };
      if (cmd.cmd === 'lag') return { event: 'lag', ...lag(cmd.reset === true) };
      if (cmd.cmd === 'summary') return { event: 'summary', ...(await summary()) };
      return null;
    },
    async stop() {
      clearInterval(sampler);
      const t0 = performance.now();
      let error: string | undefined;
      try {
        await stopServer();
      } catch (err) {
        error = (err as Error).message;
      }
      const stopMs = performance.now() - t0;
      await rm(store, { recursive: true, force: true });
      return { stopMs, ...(error ? { error } : {}) };
    },
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`bench serve server failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});

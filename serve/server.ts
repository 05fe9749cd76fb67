import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { Counter, Gauge } from 'prom-client';
import { loadRouteMaps } from '../analyzer/routes.js';
import { loadRules } from '../analyzer/rules.js';
import { systemClock, type Clock } from '../core/clock.js';
import { HsError } from '../core/errors.js';
import { buildForgeStub } from '../fixtures/forge-stub/app.js';
import { buildLegacyBot, type LegacyBotOptions } from '../fixtures/legacy-bot/app.js';
import type { RecorderConfig } from '../recorder/config.js';
import { createRecorderMetrics } from '../recorder/metrics.js';
import { startRecorder } from '../recorder/server.js';
import { assertCapabilities, type UpstreamConfig } from '../replayer/engine/capabilities.js';
import { liveFlows } from '../replayer/engine/modes.js';
import { loadFlowsOrThrow } from '../replayer/flows/load.js';
import type { CompiledFlow, Mode } from '../replayer/flows/model.js';
import { BUILTIN_OPS, createOpRegistry, loadUserOps } from '../replayer/ops/registry.js';
import type { ServeConfig } from './config.js';
import { createEventHub, type EventHub } from './events.js';
import { createFallback } from './fallback.js';
import { startLiveHost } from './live-host.js';
import type { LiveStore } from './live-store.js';
import { startModeController, type ModeController } from './modes.js';
import { serveRoutes } from './routes/api.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { logDailySummary } from './summary.js';

/**
 * `hookshadow serve`, wired together: the recorder (tee mode, egress proxy) with a
 * capture that also tells the dispatcher; the mode controller; the live store and its
 * segments; the API, SSE and dashboard on the same Fastify app. specs/modes.md.
 */

export interface ServeContext {
  config: ServeConfig;
  flows: readonly CompiledFlow[];
  modes: ModeController;
  live: Pick<LiveStore, 'query'>;
  events: EventHub;
  clock: Clock;
  /** Whether the dispatcher exists now (it does exactly when some flow is not `off`). */
  dispatcherAlive(): boolean;
  queued(): number;
  /** Upstreams live flows can call. */
  upstreams(): string[];
}

declare module 'fastify' {
  interface FastifyInstance {
    serve: ServeContext;
  }
}

export interface RunningServe {
  app: FastifyInstance;
  url: string;
  context: ServeContext;
  /** The demo legacy bot and forge stub, when serve started them. */
  demo: { botUrl: string; stubUrl: string; stub: ReturnType<typeof buildForgeStub> } | null;
  stop(): Promise<void>;
}

export interface ServeDeps {
  logger?: FastifyBaseLogger;
  clock?: Clock;
  env?: NodeJS.ProcessEnv;
}

/** Live flows' upstreams: the recorder's, with tokens from HOOKSHADOW_TOKEN_<NAME>. */
function upstreamConfigs(recorder: Readonly<RecorderConfig>, env: NodeJS.ProcessEnv): Record<string, UpstreamConfig> {
  return Object.fromEntries(
    Object.entries(recorder.upstreams).map(([name, url]) => {
      const token = env[`HOOKSHADOW_TOKEN_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`];
      return [name, token ? { url, token } : { url }];
    }),
  );
}

export async function startServe(config: ServeConfig, deps: ServeDeps = {}): Promise<RunningServe> {
  const log = deps.logger ?? pino({ level: config.recorder.log_level });
  const clock = deps.clock ?? systemClock;
  const env = deps.env ?? process.env;
  const s = config.serve;
  const cleanups: (() => Promise<void> | void)[] = [];
  const cleanup = async () => {
    for (const fn of cleanups.splice(0).reverse()) await Promise.resolve(fn()).catch((err: unknown) => log.error({ err }, 'stopping serve: a step failed'));
  };

  try {
    // The demo: a forge stub and the legacy bot, whose API calls go through serve's egress proxy.
    let recorderConfig = config.recorder;
    let demo: RunningServe['demo'] = null;
    const botOptions: LegacyBotOptions = { api: { github: '', gitea: '' }, agents: '' };
    if (config.demo) {
      const stub = buildForgeStub();
      const stubUrl = await stub.app.listen({ host: '127.0.0.1', port: 0 });
      cleanups.push(() => stub.app.close());
      const bot = buildLegacyBot(botOptions);
      const botUrl = await bot.listen({ host: '127.0.0.1', port: 0 });
      cleanups.push(() => bot.close());
      recorderConfig = { ...recorderConfig, legacy: { ...recorderConfig.legacy, url: `${botUrl}/webhook` }, upstreams: { github: stubUrl, gitea: `${stubUrl}/api/v1`, forgejo: `${stubUrl}/api/v1`, agents: stubUrl, ...recorderConfig.upstreams } };
      demo = { botUrl, stubUrl, stub };
    }

    const ops = createOpRegistry([...BUILTIN_OPS, ...(await loadUserOps(s.flows.ops, process.cwd()))]);
    const { flows } = await loadFlowsOrThrow(s.flows.dir, ops);
    const unknown = Object.keys(s.flows.modes).filter((n) => !flows.some((f) => f.name === n));
    if (unknown.length > 0) throw new HsError('HS_ERR_CONFIG_INVALID', `flows.modes names unknown flow(s) ${unknown.join(', ')}; the flows are ${flows.map((f) => f.name).join(', ')}.`);
    // Loaded here only to report a bad route map or rules file before anything starts; the live worker uses them.
    await loadRouteMaps(s.serve.routes);
    if (s.serve.rules) await loadRules(s.serve.rules, new Date(clock.nowUs() / 1000));
    const events = createEventHub();
    cleanups.push(() => events.close());

    const metrics = createRecorderMetrics();
    const queueDepth = new Gauge({ name: 'hookshadow_serve_queue_depth', help: 'Deliveries waiting for their legacy calls to settle.', registers: [metrics.registry] });
    const dropped = new Counter({ name: 'hookshadow_serve_queue_dropped_total', help: 'Deliveries whose flows were not run because the queue was full (replay them offline).', registers: [metrics.registry] });
    const settled = new Counter({ name: 'hookshadow_serve_settled_total', help: 'Deliveries settled: flows run and compared with the legacy handler.', registers: [metrics.registry] });
    const divergent = new Counter({ name: 'hookshadow_serve_divergent_runs_total', help: 'Flow runs with an unexpected divergence, by flow and mode.', labelNames: ['flow', 'mode'], registers: [metrics.registry] });

    // Filled in below; the fallback needs the controller, the controller the host.
    let modes!: ModeController;
    const upstreams = upstreamConfigs(recorderConfig, env);
    const configured = new Set(Object.keys(upstreams));
    const fallback = config.serve.fallback ? createFallback(config.serve.fallback, (flow, evidence) => modes.setFlow(flow, { to: 'dry-run', who: 'hookshadow', force: false, evidence }), log) : null;

    // Flows, the matcher and the live data run in a worker thread: the thread that acknowledges deliveries never runs a flow.
    const host = await startLiveHost(
      {
        store: recorderConfig.store,
        instance: recorderConfig.instance,
        flowsDir: s.flows.dir,
        opsModules: s.flows.ops,
        routeFiles: s.serve.routes,
        rulesFile: s.serve.rules,
        upstreams,
        settleMs: s.serve.settle_ms,
        queueSize: s.serve.queue_size,
        segmentMs: s.serve.segment_seconds * 1000,
        logLevel: recorderConfig.log_level,
      },
      {
        settled(items) {
          settled.inc(items.length);
          for (const d of items) {
            for (const run of d.runs) {
              events.publish('flow-run', { delivery_id: d.delivery_id, ...run });
              if (run.divergent) divergent.inc({ flow: run.flow, mode: run.mode });
              if (run.mode === 'live') fallback?.record(run.flow, run.divergent);
            }
            if (d.divergences > 0 || d.duplicates > 0) {
              events.publish('divergence', { delivery_id: d.delivery_id, received_at_us: d.received_at_us, event: d.event, action: d.action, unexpected: d.unexpected, divergences: d.divergences, duplicates: d.duplicates, flows: d.flows });
            }
          }
          queueDepth.set(host.queued());
        },
        dropped(ids) {
          dropped.inc(ids.length);
          for (const id of ids) events.publish('queue-full', { delivery_id: id, queue_size: s.serve.queue_size });
          log.warn({ deliveries: ids.length, queue_size: s.serve.queue_size }, 'the flow queue is full: these deliveries are recorded but their flows are not run (replay them offline)');
        },
      },
      log,
    );
    cleanups.push(() => host.close());

    const lifecycle = {
      async reconcile(m: Readonly<Record<string, Mode>>) {
        // Checked first: a refusal must leave everything as it was.
        assertCapabilities(liveFlows(flows, 'off', m), configured);
        const wasAlive = host.dispatcherAlive();
        await host.reconcile(m);
        if (!wasAlive && host.dispatcherAlive()) log.info({ modes: m }, 'dispatcher constructed');
        else if (wasAlive && !host.dispatcherAlive()) log.info('every flow is off: dispatcher torn down');
      },
    };

    modes = await startModeController({
      store: recorderConfig.store,
      flows,
      defaults: { mode: s.flows.mode, flows: s.flows.modes },
      clock,
      gate: s.cutover,
      live: host.live,
      lifecycle,
      changed: (entry, effective) => events.publish('mode-change', { entry, modes: effective }),
      logger: log,
    });

    const context: ServeContext = {
      config,
      flows,
      modes,
      live: host.live,
      events,
      clock,
      dispatcherAlive: () => host.dispatcherAlive(),
      queued: () => host.queued(),
      upstreams: () => [...configured],
    };
    const recorder = await startRecorder(recorderConfig, {
      logger: log,
      metrics,
      observe(record) {
        if (record.t === 'delivery') {
          events.publish('delivery', { delivery_id: record.delivery_id, source: record.source, event: record.event, action: record.action, received_at_us: record.received_at_us, legacy_status: record.legacy_status, rejected: record.rejected });
          host.observeDelivery(record, modes.effective());
        } else host.observeCall(record);
      },
      async extend(app) {
        app.decorate('serve', context);
        // Event streams never end on their own: close them, or closing the server would wait on them.
        app.addHook('preClose', async () => events.close());
        await app.register(serveRoutes);
        await app.register(dashboardRoutes);
      },
    });
    const { app, url } = recorder;
    if (config.demo) {
      botOptions.api.github = `${url}/egress/github`;
      botOptions.api.gitea = `${url}/egress/gitea`;
      botOptions.agents = `${url}/egress/agents`;
    }
    const midnight = scheduleDailySummary(context, log);
    await logDailySummary(context, log);

    let stopping: Promise<void> | null = null;
    return {
      app,
      url,
      context,
      demo,
      stop() {
        stopping ??= (async () => {
          clearTimeout(midnight.timer);
          // The recorder stops taking deliveries and flushes first; the live worker then settles what is queued.
          await recorder.stop();
          await cleanup();
        })();
        return stopping;
      },
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** Logs and announces the daily summary at every UTC midnight. */
function scheduleDailySummary(ctx: ServeContext, log: FastifyBaseLogger): { timer: NodeJS.Timeout } {
  const handle = { timer: undefined as unknown as NodeJS.Timeout };
  const arm = () => {
    const nowMs = ctx.clock.nowUs() / 1000;
    const next = Math.floor(nowMs / 86_400_000 + 1) * 86_400_000;
    handle.timer = setTimeout(() => {
      void logDailySummary(ctx, log).finally(arm);
    }, next - nowMs + 1_000);
    handle.timer.unref();
  };
  arm();
  return handle;
}


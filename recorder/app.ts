import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';
import { pino } from 'pino';
import { Agent, type Dispatcher } from 'undici';
import { systemClock, type Clock } from '../core/clock.js';
import { HsError, errorBody, isHsError } from '../core/errors.js';
import type { CaptureWriter } from '../core/store/writer.js';
import { createAttributionIndex, type AttributionIndex } from './attribution.js';
import type { RecorderConfig } from './config.js';
import { createRecorderMetrics, type RecorderMetrics } from './metrics.js';
import { createRedactor, type Redactor } from './redact.js';
import { egressRoutes } from './routes/egress.js';
import { effectsRoutes } from './routes/effects.js';
import { hooksRoutes, recordRefusedDelivery } from './routes/hooks.js';
import { opsRoutes } from './routes/ops.js';

/** Everything the recorder's routes use, passed in (never reached for through globals). */
export interface RecorderContext {
  config: Readonly<RecorderConfig>;
  mode: 'passive' | 'tee';
  capture: CaptureWriter;
  clock: Clock;
  redactor: Redactor;
  attribution: AttributionIndex;
  metrics: RecorderMetrics;
  /** All outbound HTTP (to the legacy handler and upstreams) goes through this dispatcher. */
  dispatcher: Dispatcher;
  /** Deliveries being captured or forwarded right now. */
  deliveriesInFlight: number;
}

declare module 'fastify' {
  interface FastifyInstance {
    recorder: RecorderContext;
    /** Refuses new deliveries and waits for those in flight (egress stays up meanwhile). */
    drainDeliveries(): Promise<void>;
  }
}

/** Graceful stop: drain deliveries in flight (their legacy API calls still proxied), then close. */
export async function closeRecorder(app: FastifyInstance): Promise<void> {
  await app.drainDeliveries();
  await app.close();
}

export interface RecorderDeps {
  config: Readonly<RecorderConfig>;
  capture: CaptureWriter;
  clock?: Clock;
  dispatcher?: Dispatcher;
  metrics?: RecorderMetrics;
  /** A pino logger; defaults to one at the config's log level. */
  logger?: FastifyBaseLogger;
}

/** Builds the recorder app; only the CLI calls `listen`. */
export async function buildRecorder(deps: RecorderDeps): Promise<FastifyInstance> {
  const { config } = deps;
  const app = Fastify({
    loggerInstance: deps.logger ?? pino({ level: config.log_level }),
    bodyLimit: config.body_limit_bytes,
    // Every method is routed explicitly; an implicit HEAD route would shadow the egress proxy's.
    exposeHeadRoutes: false,
    // Our own onRequest hook answers 503 with a JSON error body while closing.
    return503OnClosing: false,
    // Errors raised before routing (a malformed URL) also answer in hookshadow's error format.
    frameworkErrors: (error, _request, reply) => {
      void (reply as FastifyReply).status(400).send({ code: 'HS_ERR_BAD_REQUEST', message: error.message });
    },
    // One log line per webhook at production rates is noise; errors and lifecycle events are logged explicitly.
    logController: new LogController({ disableRequestLogging: true }),
  });
  const ownsDispatcher = !deps.dispatcher;
  const ctx: RecorderContext = {
    config,
    mode: config.legacy.url ? 'tee' : 'passive',
    capture: deps.capture,
    clock: deps.clock ?? systemClock,
    redactor: createRedactor(config.redaction),
    attribution: createAttributionIndex(config.attribution.window_ms * 1000),
    metrics: deps.metrics ?? createRecorderMetrics(),
    dispatcher: deps.dispatcher ?? new Agent({ keepAliveTimeout: 10_000, connections: 256 }),
    deliveriesInFlight: 0,
  };
  app.decorate('recorder', ctx);
  // Shutdown has two stages. Draining: new deliveries are refused, but the egress proxy and
  // /effects keep serving, because the legacy handler is still working on the deliveries in
  // flight and its API calls must reach the upstream. Closing: everything is refused.
  let stage: 'open' | 'draining' | 'closing' = 'open';
  app.addHook('preClose', async () => {
    stage = 'closing';
  });
  app.addHook('onRequest', async (request, reply) => {
    if (stage === 'open' || (stage === 'draining' && !request.url.startsWith('/hooks/'))) return;
    const err = new HsError('HS_ERR_SHUTTING_DOWN', 'The recorder is shutting down; retry against another instance.');
    return reply.status(err.status).header('connection', 'close').send(errorBody(err));
  });
  app.decorate('drainDeliveries', async () => {
    stage = 'draining';
    const deadline = Date.now() + config.legacy.timeout_ms + 1000;
    while (ctx.deliveriesInFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  });
  if (ownsDispatcher) app.addHook('onClose', async () => ctx.dispatcher.close());

  app.setNotFoundHandler((request, reply) => {
    const err = new HsError('HS_ERR_NOT_FOUND', `No route ${request.method} ${request.url}. Webhooks go to POST /hooks/:source, API calls to /egress/:upstream/...`);
    void reply.status(err.status).send(errorBody(err));
  });

  app.setErrorHandler(async (error, request, reply) => {
    if (isHsError(error)) return reply.status(error.status).send(errorBody(error));
    const err = error as Error & { code?: string; statusCode?: number; validation?: unknown };
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      const hs = new HsError('HS_ERR_BODY_TOO_LARGE', `The body exceeds the ${config.body_limit_bytes}-byte limit (body_limit_bytes).`);
      if (request.routeOptions.url === '/hooks/:source') await recordRefusedDelivery(app, request, hs);
      return reply.status(hs.status).send(errorBody(hs));
    }
    if (err.validation) {
      return reply.status(400).send({ code: 'HS_ERR_BAD_REQUEST', message: err.message });
    }
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      return reply.status(err.statusCode).send({ code: 'HS_ERR_BAD_REQUEST', message: err.message });
    }
    request.log.error({ err }, 'unexpected error');
    return reply.status(500).send({ code: 'HS_ERR_INTERNAL', message: 'Internal error in hookshadow; this is a bug, please report it with the log line above.' });
  });

  await app.register(hooksRoutes);
  await app.register(egressRoutes);
  await app.register(effectsRoutes);
  await app.register(opsRoutes);
  return app;
}

import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { HsError } from '../core/errors.js';
import { openCaptureWriter, type CaptureWriter } from '../core/store/writer.js';
import { buildRecorder, closeRecorder } from './app.js';
import type { RecorderConfig } from './config.js';
import { createRecorderMetrics, type RecorderMetrics } from './metrics.js';
import type { CaptureRecord } from '../core/capture-schema.js';
import type { Dispatcher } from 'undici';

export interface RunningRecorder {
  app: FastifyInstance;
  capture: CaptureWriter;
  /** Base URL it listens on, e.g. http://127.0.0.1:8080 */
  url: string;
  /** Drains in-flight requests, then flushes every record into Parquet. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Opens the store (recovering any WAL left by a crash), builds the app and listens.
 * The one place that wires the recorder together, for the CLI, the demo and tests.
 */
export interface StartRecorderOptions {
  logger?: FastifyBaseLogger;
  dispatcher?: Dispatcher;
  metrics?: RecorderMetrics;
  /** Shown every record once it is durable (serve's dispatcher); must not block. */
  observe?: (record: CaptureRecord) => void;
  /** Adds routes or hooks before the app listens (serve's API and dashboard). */
  extend?: (app: FastifyInstance) => Promise<void>;
}

/** A capture writer that, once a record is durable, shows it to `observe`. */
function observedCapture(inner: CaptureWriter, observe: (r: CaptureRecord) => void): CaptureWriter {
  return {
    store: inner.store,
    instance: inner.instance,
    walBytes: () => inner.walBytes(),
    pendingSegments: () => inner.pendingSegments(),
    close: () => inner.close(),
    async append(record) {
      await inner.append(record);
      observe(record);
    },
  };
}

export async function startRecorder(config: Readonly<RecorderConfig>, opts: StartRecorderOptions = {}): Promise<RunningRecorder> {
  const metrics = opts.metrics ?? createRecorderMetrics();
  const log = opts.logger ?? pino({ level: config.log_level });
  const capture = await openCaptureWriter({
    store: config.store,
    instance: config.instance,
    maxSegmentBytes: config.wal.max_segment_bytes,
    maxSegmentAgeMs: config.wal.max_segment_age_ms,
    events: {
      flushed: ({ records, durationMs }) => {
        metrics.flushSeconds.observe(durationMs / 1000);
        metrics.flushRecords.observe(records);
      },
      rolled: (result, durationMs) => {
        metrics.rollSeconds.observe(durationMs / 1000);
        log.debug({ segment: result.segment, rows: result.rows, files: result.files.length, durationMs }, 'WAL segment rolled into Parquet');
      },
      rollFailed: (segment, err, retryInMs) => {
        metrics.rollFailures.inc();
        log.error({ err, segment, retryInMs }, 'rolling a WAL segment into Parquet failed; it stays in the WAL and will be retried');
      },
      recoveryDeferred: (segment, err) => {
        log.error({ err, segment }, 'a WAL segment left by an earlier run could not be rolled into Parquet yet; it stays in the WAL and is retried at the next start');
      },
      quarantined: (segment, movedTo, err) => {
        log.error({ err, segment, movedTo }, 'a WAL segment left by an earlier run could not be rolled into Parquet; it was moved aside for inspection');
      },
      recovered: (segment, repaired) => {
        const level = repaired.quarantined > 0 ? 'warn' : 'info';
        log[level]({ segment, ...repaired }, 'recovered a WAL segment left by an earlier run');
      },
    },
  });
  const app = await buildRecorder({
    config,
    capture: opts.observe ? observedCapture(capture, opts.observe) : capture,
    metrics,
    logger: log,
    ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}),
  });
  let address: string;
  try {
    await opts.extend?.(app);
  } catch (err) {
    await app.close();
    await capture.close();
    throw err;
  }
  try {
    address = await app.listen({ host: config.host, port: config.port });
  } catch (err) {
    await app.close();
    await capture.close();
    const code = (err as NodeJS.ErrnoException).code;
    const hint = code === 'EADDRINUSE' ? ' The port is in use: pick another with --port (0 picks a free one).' : '';
    throw new HsError('HS_ERR_LISTEN_FAILED', `Cannot listen on ${config.host}:${config.port}: ${(err as Error).message}.${hint}`, { cause: err });
  }
  let stopping: Promise<void> | null = null;
  return {
    app,
    capture,
    url: address,
    stop() {
      stopping ??= (async () => {
        await closeRecorder(app);
        await capture.close();
      })();
      return stopping;
    },
  };
}

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The recorder's Prometheus metrics, in a registry of its own (no global state). */
export function createRecorderMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'hookshadow_' });
  const m = {
    registry,
    deliveries: new Counter({
      name: 'hookshadow_deliveries_total',
      help: 'Webhook deliveries received, by source and outcome (captured, rejected, capture_failed).',
      labelNames: ['source', 'outcome'],
      registers: [registry],
    }),
    effects: new Counter({
      name: 'hookshadow_effects_total',
      help: 'Mutating calls of the legacy handler recorded, by upstream and correlation.',
      labelNames: ['upstream', 'correlation'],
      registers: [registry],
    }),
    exchanges: new Counter({
      name: 'hookshadow_exchanges_total',
      help: 'Read calls of the legacy handler recorded, by upstream.',
      labelNames: ['upstream'],
      registers: [registry],
    }),
    captureFailures: new Counter({
      name: 'hookshadow_capture_failures_total',
      help: 'Records that could not be written (WAL errors, disk full), by kind.',
      labelNames: ['kind'],
      registers: [registry],
    }),
    forwardFailures: new Counter({
      name: 'hookshadow_forward_failures_total',
      help: 'Forwarding failures, to the legacy handler or an upstream.',
      labelNames: ['target'],
      registers: [registry],
    }),
    walBytes: new Gauge({ name: 'hookshadow_wal_bytes', help: 'Bytes in the open WAL segment.', registers: [registry] }),
    walSegments: new Gauge({
      name: 'hookshadow_wal_segments_pending',
      help: 'Sealed WAL segments waiting to be rolled into Parquet.',
      registers: [registry],
    }),
    flushSeconds: new Histogram({
      name: 'hookshadow_wal_flush_seconds',
      help: 'Latency of one group commit (one durable O_DSYNC write).',
      buckets: [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5],
      registers: [registry],
    }),
    flushRecords: new Histogram({
      name: 'hookshadow_wal_flush_records',
      help: 'Records per group commit.',
      buckets: [1, 2, 5, 10, 20, 50, 100, 500],
      registers: [registry],
    }),
    rollSeconds: new Histogram({
      name: 'hookshadow_roll_seconds',
      help: 'Latency of rolling one WAL segment into Parquet.',
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers: [registry],
    }),
    rollFailures: new Counter({ name: 'hookshadow_roll_failures_total', help: 'Failed attempts to roll a WAL segment (retried).', registers: [registry] }),
  };
  return m;
}

export type RecorderMetrics = ReturnType<typeof createRecorderMetrics>;

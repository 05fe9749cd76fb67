import type { CallRecord, DeliveryRecord } from '../core/capture-schema.js';
import type { UpstreamConfig } from '../replayer/engine/capabilities.js';
import type { Mode } from '../replayer/flows/model.js';

/**
 * The messages between serve's main thread (recorder, API, modes) and its live worker
 * (dispatcher, flows, matcher, live store, segments). Flows never run on the thread
 * that acknowledges deliveries.
 */

/** Plain data the worker starts from: it loads the flows, rules and route maps itself. */
export interface LiveWorkerSpec {
  store: string;
  instance: string;
  flowsDir: string;
  opsModules: string[];
  routeFiles: string[];
  rulesFile: string | null;
  upstreams: Record<string, UpstreamConfig>;
  settleMs: number;
  queueSize: number;
  segmentMs: number;
  logLevel: string;
}

export type Observed = { kind: 'delivery'; record: DeliveryRecord; modes: Record<string, Mode> } | { kind: 'call'; record: CallRecord };

export type ToWorker =
  | { type: 'observed'; items: Observed[] }
  | { type: 'reconcile'; id: number; modes: Record<string, Mode> }
  | { type: 'query'; id: number; sql: string; params: unknown[] }
  | { type: 'close'; id: number };

/** One settled delivery, as the main thread needs it: for events, metrics and the automatic fallback. */
export interface SettledSummary {
  delivery_id: string;
  received_at_us: number;
  event: string | null;
  action: string | null;
  runs: { flow: string; mode: Mode; status: string; intents: number; divergent: boolean }[];
  divergences: number;
  unexpected: number;
  duplicates: number;
  flows: string[];
}

export type FromWorker =
  | { type: 'ready' }
  | { type: 'reply'; id: number; ok: true; value: unknown }
  | { type: 'reply'; id: number; ok: false; error: { message: string; code?: string; details?: Record<string, unknown> } }
  | { type: 'settled'; items: SettledSummary[] }
  | { type: 'dropped'; delivery_ids: string[] }
  | { type: 'ignored'; count: number };

import type { FastifyBaseLogger } from 'fastify';
import type { CallRecord, DeliveryRecord } from '../core/capture-schema.js';
import { HsError, type ErrorCode } from '../core/errors.js';
import { startWorker } from '../core/worker-script.js';
import type { Mode } from '../replayer/flows/model.js';
import type { FromWorker, LiveWorkerSpec, Observed, SettledSummary, ToWorker } from './live-protocol.js';
import type { LiveStore } from './live-store.js';

/**
 * The main thread's side of the live worker: what the recorder observed goes over in
 * batches (one message per turn of the event loop, never on the acknowledging path);
 * reconciles, queries and the final close are requests with replies.
 */
export interface LiveHost {
  /** The live data, queried in the worker. */
  live: Pick<LiveStore, 'query'>;
  observeDelivery(record: DeliveryRecord, modes: Record<string, Mode>): void;
  observeCall(record: CallRecord): void;
  /** Builds or tears down the worker's dispatcher for these modes; resolves once done. */
  reconcile(modes: Readonly<Record<string, Mode>>): Promise<void>;
  dispatcherAlive(): boolean;
  /** Deliveries given to the dispatcher and not yet settled (or dropped). */
  queued(): number;
  /** Settles what is queued, rolls the last segment, and stops the worker. */
  close(): Promise<void>;
}

/** A request to the worker, before it gets its id. */
type WorkerRequest = ToWorker extends infer T ? (T extends { id: number } ? Omit<T, 'id'> : never) : never;

export interface LiveHostEvents {
  settled(items: SettledSummary[]): void;
  dropped(deliveryIds: string[]): void;
}

export async function startLiveHost(spec: LiveWorkerSpec, events: LiveHostEvents, log: FastifyBaseLogger): Promise<LiveHost> {
  const worker = startWorker(import.meta.url, 'live-worker', { workerData: spec });
  let nextId = 1;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let failure: Error | null = null;
  let alive = false;
  let offered = 0;
  let done = 0;
  let batch: Observed[] = [];

  const ready = new Promise<void>((resolve, reject) => {
    worker.on('message', (m: FromWorker) => {
      if (m.type === 'ready') resolve();
      else if (m.type === 'reply') {
        const p = pending.get(m.id);
        pending.delete(m.id);
        if (m.ok) p?.resolve(m.value);
        else p?.reject(m.error.code ? new HsError(m.error.code as ErrorCode, m.error.message, { details: m.error.details }) : new Error(m.error.message));
      } else if (m.type === 'settled') {
        done += m.items.length;
        events.settled(m.items);
      } else if (m.type === 'dropped') {
        done += m.delivery_ids.length;
        events.dropped(m.delivery_ids);
      } else done += m.count;
    });
    worker.on('error', (err) => {
      failure = err;
      alive = false;
      log.error({ err }, 'the live worker failed: deliveries are still recorded, but no flow runs until serve restarts');
      for (const p of pending.values()) p.reject(err);
      pending.clear();
      reject(err);
    });
  });
  await ready;

  const request = (m: WorkerRequest): Promise<unknown> => {
    if (failure) return Promise.reject(failure);
    flush();
    const id = nextId++;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      worker.postMessage({ ...m, id } as ToWorker);
    });
  };
  const flush = () => {
    if (batch.length === 0 || failure) return;
    worker.postMessage({ type: 'observed', items: batch } satisfies ToWorker);
    batch = [];
  };
  const observe = (item: Observed) => {
    if (failure) return;
    if (batch.push(item) === 1) setImmediate(flush);
  };

  return {
    live: { query: async <T>(sql: string, params: unknown[] = []) => (await request({ type: 'query', sql, params })) as T[] },
    observeDelivery(record, modes) {
      // Rejected deliveries never reached the legacy handler, and a dispatcher that does not exist takes nothing.
      if (!alive || record.rejected !== null) return;
      offered++;
      observe({ kind: 'delivery', record, modes });
    },
    observeCall(record) {
      if (alive) observe({ kind: 'call', record });
    },
    async reconcile(modes) {
      const on = Object.values(modes).some((m) => m !== 'off');
      // Deliveries observed from now on are sent after this request, so the worker's dispatcher exists when they arrive.
      if (on) alive = true;
      await request({ type: 'reconcile', modes: { ...modes } });
      alive = on;
    },
    dispatcherAlive: () => alive,
    queued: () => offered - done,
    async close() {
      if (!failure) await request({ type: 'close' });
      alive = false;
      await worker.terminate();
    },
  };
}

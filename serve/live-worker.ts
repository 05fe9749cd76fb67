import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { pino } from 'pino';
import { loadRouteMaps } from '../analyzer/routes.js';
import { loadRules, NO_RULES } from '../analyzer/rules.js';
import { systemClock } from '../core/clock.js';
import { createCapabilities, type Capabilities } from '../replayer/engine/capabilities.js';
import { loadFlowsOrThrow } from '../replayer/flows/load.js';
import type { Mode } from '../replayer/flows/model.js';
import { BUILTIN_OPS, createOpRegistry, loadUserOps } from '../replayer/ops/registry.js';
import { createDispatcher, type Dispatcher, type SettledDelivery } from './dispatcher.js';
import type { FromWorker, LiveWorkerSpec, SettledSummary, ToWorker } from './live-protocol.js';
import { openLiveStore } from './live-store.js';
import { createSegmentWriter } from './segments.js';

/** The live worker thread's nice value (0 normal, 19 lowest). */
const LIVE_WORKER_NICE = 10;

/**
 * serve's live worker thread: the dispatcher (built and torn down as the main thread's
 * modes say), the flows, the matcher, the live store and its segments. The main
 * thread only records, acknowledges and answers the API.
 */
// The flows are background work: when the machine is busy, the thread that acknowledges deliveries must
// get the cores first. On Linux the nice value is per thread and 0 names the calling thread, so this lowers
// only this one (the live store's appenders run here too). Elsewhere (macOS, the BSDs) it would lower the
// whole process, the acknowledging thread with it, so it is left alone. Not permitted: run as is.
if (process.platform === 'linux') {
  try {
    setPriority(0, LIVE_WORKER_NICE);
  } catch {
    // keep the default priority
  }
}

const port = parentPort!;
const spec = workerData as LiveWorkerSpec;
const post = (m: FromWorker) => port.postMessage(m);
const log = pino({ level: spec.logLevel, base: { thread: 'live' } });

const ops = createOpRegistry([...BUILTIN_OPS, ...(await loadUserOps(spec.opsModules, process.cwd()))]);
const { flows, digest } = await loadFlowsOrThrow(spec.flowsDir, ops);
const routes = await loadRouteMaps(spec.routeFiles);
const rules = spec.rulesFile ? await loadRules(spec.rulesFile, new Date()) : NO_RULES();
const live = await openLiveStore(spec.store);
let modes: Record<string, Mode> = Object.fromEntries(flows.map((f) => [f.name, 'off' as Mode]));
const segments = createSegmentWriter({
  store: spec.store,
  instance: spec.instance,
  flows,
  flowsDigest: digest,
  live,
  // The global mode is not known here; each flow run row carries the mode it ran in.
  modes: () => ({ mode: 'off', flows: modes }),
  clock: systemClock,
  segmentMs: spec.segmentMs,
  logger: log,
});

let dispatcher: Dispatcher | null = null;
let capabilities: Capabilities | undefined;

const summary = ({ result }: SettledDelivery): SettledSummary => {
  const bad = new Set(result.divergences.filter((d) => d.expected_by === null).map((d) => d.flow));
  return {
    delivery_id: result.delivery_id,
    received_at_us: result.received_at_us,
    event: result.event,
    action: result.action,
    runs: result.runs.map((r) => ({ flow: r.flow, mode: r.mode, status: r.status, intents: r.intents.length, divergent: bad.has(r.flow) })),
    divergences: result.divergences.length,
    unexpected: result.divergences.filter((d) => d.expected_by === null).length,
    duplicates: result.duplicates.length,
    flows: [...new Set(result.divergences.map((d) => d.flow).filter((f): f is string => f !== null))],
  };
};

let droppedIds: string[] = [];
const reconcile = async (next: Record<string, Mode>) => {
  modes = next;
  const anyLive = Object.values(next).includes('live');
  if (anyLive && !capabilities) capabilities = createCapabilities(spec.upstreams);
  if (!anyLive && capabilities) {
    const c = capabilities;
    capabilities = undefined;
    await c.close();
  }
  const anyOn = Object.values(next).some((m) => m !== 'off');
  if (anyOn && !dispatcher) {
    dispatcher = createDispatcher({
      flows,
      modes: () => modes,
      capabilities: () => capabilities,
      routes,
      rules,
      settleMs: spec.settleMs,
      queueSize: spec.queueSize,
      clock: systemClock,
      sink: async (batch) => {
        await segments.write(batch);
        post({ type: 'settled', items: batch.map(summary) });
      },
      dropped: (record) => {
        // Told in one message per turn of the event loop, not one per delivery.
        if (droppedIds.push(record.delivery_id) === 1) {
          setImmediate(() => {
            post({ type: 'dropped', delivery_ids: droppedIds });
            droppedIds = [];
          });
        }
      },
      logger: log,
    });
  } else if (!anyOn && dispatcher) {
    const d = dispatcher;
    dispatcher = null;
    await d.close();
  }
};

// One message at a time, in order: deliveries are never offered to a dispatcher a later reconcile has changed.
let chain: Promise<unknown> = Promise.resolve();
port.on('message', (m: ToWorker) => {
  chain = chain.then(async () => {
    if (m.type === 'observed') {
      let ignored = 0;
      for (const item of m.items) {
        if (item.kind === 'call') dispatcher?.observeCall(item.record);
        else if (!dispatcher) ignored++;
        else dispatcher.offer(item.record, item.modes);
      }
      // Sent while every flow was being turned off: nothing runs them, and the main thread stops counting them.
      if (ignored > 0) post({ type: 'ignored', count: ignored });
      return;
    }
    try {
      let value: unknown = null;
      if (m.type === 'reconcile') await reconcile(m.modes);
      else if (m.type === 'query') value = await live.query(m.sql, m.params);
      else {
        await reconcile(Object.fromEntries(flows.map((f) => [f.name, 'off' as Mode])));
        await segments.close();
        live.close();
      }
      post({ type: 'reply', id: m.id, ok: true, value });
    } catch (err) {
      const e = err as Error & { code?: string; details?: Record<string, unknown> };
      post({ type: 'reply', id: m.id, ok: false, error: { message: e.message, ...(e.code ? { code: e.code } : {}), ...(e.details ? { details: e.details } : {}) } });
    }
  });
});
post({ type: 'ready' });

import type { FastifyBaseLogger } from 'fastify';
import { pino } from 'pino';
import type { CallRecord, DeliveryRecord } from '../core/capture-schema.js';
import type { Clock } from '../core/clock.js';
import type { Effect } from '../core/effects.js';
import { parsePayload } from '../core/payload.js';
import { parseBody } from '../analyzer/divergences.js';
import { compareDelivery, matcherInputs, type LegacyEffect } from '../analyzer/match.js';
import type { RouteMaps } from '../analyzer/routes.js';
import type { Rules } from '../analyzer/rules.js';
import type { Capabilities } from '../replayer/engine/capabilities.js';
import { createDedupMemory } from '../replayer/engine/dedup.js';
import type { DeliveryInput } from '../replayer/engine/delivery.js';
import { NO_RECORDINGS, recordedReads, type RecordedExchange } from '../replayer/engine/recordings.js';
import { runDelivery, type FlowRun } from '../replayer/engine/run.js';
import type { CompiledFlow, Mode } from '../replayer/flows/model.js';
import type { LiveDelivery } from './live-store.js';

/**
 * The dispatcher: runs the flows for each delivery the recorder captured, off the
 * request path (specs/modes.md § The dispatcher).
 *
 * - Live flows run as soon as the delivery is captured, against the real upstreams.
 * - Once the legacy handler's calls have settled (`settleMs` after it answered), the
 *   dry-run flows run against what the legacy handler read (as a replay would), and the
 *   delivery's legacy effects are compared with every flow's intents.
 * - A bounded queue holds deliveries waiting to settle. When it is full, a new
 *   delivery's flows are not run: it is counted (`hookshadow_serve_queue_dropped_total`),
 *   logged, announced (`queue-full`), and left to an offline replay, which still has it
 *   in the store.
 */

export interface DispatcherDeps {
  flows: readonly CompiledFlow[];
  /** The flows' modes now; read when a delivery arrives. */
  modes: () => Readonly<Record<string, Mode>>;
  /** Live flows' capabilities (undefined while none is live). */
  capabilities: () => Capabilities | undefined;
  routes: RouteMaps;
  rules: Rules;
  settleMs: number;
  queueSize: number;
  clock: Clock;
  /** Receives settled deliveries, in arrival order, in batches. */
  sink(batch: SettledDelivery[]): Promise<void>;
  dropped(delivery: DeliveryRecord): void;
  logger: FastifyBaseLogger;
}

export interface SettledDelivery {
  input: DeliveryInput;
  runs: FlowRun[];
  result: LiveDelivery;
}

export interface Dispatcher {
  /** A captured delivery (the legacy handler has answered), with the modes in force when it arrived; false when the queue is full. */
  offer(record: DeliveryRecord, modes?: Readonly<Record<string, Mode>>): boolean;
  /** A legacy API call the recorder proxied. */
  observeCall(call: CallRecord): void;
  queued(): number;
  /** Settles and sinks everything queued (no waiting for the settle window), then stops. */
  close(): Promise<void>;
}

interface Job {
  record: DeliveryRecord;
  input: DeliveryInput;
  modes: Readonly<Record<string, Mode>>;
  calls: CallRecord[];
  settleAtMs: number;
  live: Promise<FlowRun[]>;
}

const silent = pino({ level: 'silent' });
// Calls for a delivery that never arrives (refused, or captured by another instance) are forgotten after this long.
const ORPHAN_MS = 120_000;

function toInput(r: DeliveryRecord): DeliveryInput {
  const payload = r.body_encoding === 'utf8' ? parsePayload(r.body, r.content_type).payload : null;
  return { delivery_id: r.delivery_id, source: r.source, event: r.event, action: r.action, received_at_us: r.received_at_us, headers: r.headers, payload, repository: r.repository };
}

const exchange = (c: CallRecord): RecordedExchange => ({ upstream: c.upstream, method: c.method, path: c.path, response_status: c.response_status, response_body: c.response_body });

export function createDispatcher(deps: DispatcherDeps): Dispatcher {
  const names = deps.flows.map((f) => f.name);
  const waiting = new Map<string, { calls: CallRecord[]; atMs: number }>();
  const byId = new Map<string, Job>();
  const queue: Job[] = [];
  const dedup = createDedupMemory();
  let wake: (() => void) | null = null;
  let closing = false;
  const nowMs = () => deps.clock.nowUs() / 1000;

  const only = (modes: Readonly<Record<string, Mode>>, mode: Mode) => Object.fromEntries(names.map((n) => [n, modes[n] === mode ? mode : 'off'])) as Record<string, Mode>;

  const runLive = async (input: DeliveryInput, modes: Readonly<Record<string, Mode>>): Promise<FlowRun[]> => {
    const capabilities = deps.capabilities();
    if (!capabilities || !names.some((n) => modes[n] === 'live')) return [];
    return runDelivery(deps.flows, input, {
      mode: 'off',
      flowModes: only(modes, 'live'),
      seed: 0,
      reads: NO_RECORDINGS,
      capabilities,
      logger: silent,
      dedup,
      nowUs: () => deps.clock.nowUs(),
      // The flow's own calls carry the delivery id, as the recorder's do for the legacy handler.
      liveHeaders: () => ({ 'x-hookshadow-delivery': input.delivery_id }),
    });
  };

  const settle = async (job: Job): Promise<SettledDelivery> => {
    const liveRuns = await job.live.catch((err: unknown) => {
      deps.logger.error({ err, delivery_id: job.record.delivery_id }, 'live flows failed to run');
      return [] as FlowRun[];
    });
    const reads = job.calls.filter((c) => c.t === 'exchange').map(exchange);
    const writes = job.calls.filter((c) => c.t === 'effect');
    const dryRuns = names.some((n) => job.modes[n] === 'dry-run')
      ? await runDelivery(deps.flows, job.input, {
          mode: 'off',
          flowModes: only(job.modes, 'dry-run'),
          seed: 0,
          reads: recordedReads(reads),
          echoes: recordedReads(writes.map(exchange)),
          logger: silent,
          dedup,
        })
      : [];
    const order = new Map(names.map((n, i) => [n, i]));
    const runs = [...liveRuns, ...dryRuns].sort((a, b) => order.get(a.flow)! - order.get(b.flow)!);
    const legacy: LegacyEffect[] = writes.map((c) => ({ effect_id: c.call_id, ...deps.routes.map({ upstream: c.upstream, method: c.method, path: c.path, body: parseBody(c.request_body, c.request_body_encoding) }) }));
    const { intents, runs: infos } = matcherInputs(runs);
    const { input, record } = job;
    const rows = compareDelivery({ delivery_id: input.delivery_id, received_at_us: input.received_at_us, source: input.source, event: input.event, action: input.action }, legacy, intents, infos, deps.rules);
    const liveFlows = new Set(liveRuns.map((r) => r.flow));
    // A live flow's intent that matches a legacy effect was carried out twice: by the flow and by the legacy handler.
    const duplicates: Effect[] = rows.filter((d) => d.class === 'match' && d.flow && liveFlows.has(d.flow)).map((d) => ({ kind: d.kind!, target: d.target!, args: intents.find((i) => i.run_id === d.run_id && i.node_id === d.node_id)?.args ?? {} }));
    const result: LiveDelivery = {
      delivery_id: input.delivery_id,
      received_at_us: input.received_at_us,
      source: input.source,
      event: input.event,
      action: input.action,
      legacy_status: record.legacy_status,
      legacy: legacy.map(({ effect_id: _id, ...e }) => e),
      runs: runs.map((r) => ({ flow: r.flow, mode: r.mode, status: r.status, error: r.error, intents: r.nodes.filter((n) => n.intent).map((n) => ({ node_id: n.node_id, kind: n.intent!.kind, target: n.intent!.target, args: n.intent!.args })) })),
      divergences: rows.filter((d) => d.class !== 'match'),
      duplicates,
    };
    return { input, runs, result };
  };

  const loop = (async () => {
    for (;;) {
      if (queue.length === 0) {
        if (closing) return;
        await new Promise<void>((r) => (wake = r));
        continue;
      }
      const head = queue[0]!;
      const wait = head.settleAtMs - nowMs();
      if (wait > 0 && !closing) {
        await new Promise<void>((r) => {
          const t = setTimeout(r, Math.min(wait, 1_000));
          wake = () => {
            clearTimeout(t);
            r();
          };
        });
        continue;
      }
      // Everything due goes out in one batch: one insert, one write.
      const due: Job[] = [];
      while (queue.length > 0 && (closing || queue[0]!.settleAtMs <= nowMs()) && due.length < 512) due.push(queue.shift()!);
      const settled: SettledDelivery[] = [];
      for (const job of due) {
        byId.delete(job.record.delivery_id);
        try {
          settled.push(await settle(job));
        } catch (err) {
          deps.logger.error({ err, delivery_id: job.record.delivery_id }, 'settling a delivery failed');
        }
      }
      try {
        await deps.sink(settled);
      } catch (err) {
        deps.logger.error({ err, deliveries: settled.length }, 'recording settled deliveries failed');
      }
    }
  })();

  const prune = () => {
    const cutoff = nowMs() - ORPHAN_MS;
    for (const [id, w] of waiting) if (w.atMs < cutoff) waiting.delete(id);
  };

  return {
    offer(record, modesNow) {
      if (closing || record.rejected !== null) return false;
      const pending = waiting.get(record.delivery_id);
      waiting.delete(record.delivery_id);
      if (queue.length >= deps.queueSize) {
        deps.dropped(record);
        return false;
      }
      const input = toInput(record);
      const modes = modesNow ?? deps.modes();
      // Live flows start on the next turn of the event loop: the sender's acknowledgement never waits for them.
      const live = new Promise<void>((r) => setImmediate(r)).then(() => runLive(input, modes));
      const job: Job = { record, input, modes, calls: pending?.calls ?? [], settleAtMs: nowMs() + deps.settleMs, live };
      job.live.catch(() => undefined);
      queue.push(job);
      byId.set(record.delivery_id, job);
      if (queue.length === 1) wake?.();
      return true;
    },
    observeCall(call) {
      if (!call.delivery_id) return;
      const job = byId.get(call.delivery_id);
      if (job) {
        job.calls.push(call);
        return;
      }
      if (waiting.size > 10_000) prune();
      const w = waiting.get(call.delivery_id);
      if (w) w.calls.push(call);
      else waiting.set(call.delivery_id, { calls: [call], atMs: nowMs() });
    },
    queued: () => queue.length,
    async close() {
      closing = true;
      wake?.();
      await loop;
    },
  };
}

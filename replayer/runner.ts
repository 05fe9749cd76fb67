import { pino } from 'pino';
import type { ReplayCounts } from '../core/replay-schema.js';
import { assertCapabilities, createCapabilities, type UpstreamConfig } from './engine/capabilities.js';
import { liveFlows } from './engine/modes.js';
import { createDedupMemory } from './engine/dedup.js';
import { recordedReads } from './engine/recordings.js';
import { runDelivery } from './engine/run.js';
import { loadFlowsOrThrow } from './flows/load.js';
import type { Mode } from './flows/model.js';
import { BUILTIN_OPS, createOpRegistry, loadUserOps } from './ops/registry.js';
import { encodeBlocks, redeliveryLine, runLines, timingsOf } from './output/ndjson.js';
import { createRedeliverer } from './redeliver.js';
import { parseStored, type StoredDelivery } from './source.js';

/** Everything a runner needs; plain data, so it crosses into a worker thread. */
export interface RunnerSpec {
  flowsDir: string;
  opsModules: string[];
  opsBaseDir: string;
  mode: Mode;
  flowModes: Record<string, Mode>;
  seed: number;
  /** Added to each delivery's received_at to give the runs' clock (noise detection perturbs it). */
  clockSkewUs: number;
  timings: boolean;
  /** For live flows, and for reads when `liveReads` is set. */
  upstreams: Record<string, UpstreamConfig>;
  /** Serve dry-run reads from the upstreams instead of the recordings. */
  liveReads: boolean;
  /** Re-send each delivery to this webhook URL, re-signed with the source's secret. */
  redeliver: { url: string; secrets: Record<string, string> } | null;
}

/**
 * A batch's rows as NDJSON: for each delivery of the batch, in order, a block of its
 * flow-run lines then a block of its node lines (empty when it matched no flow), as
 * `encodeBlocks` lays them out. The replay interleaves the runners' batches back into
 * delivery order.
 */
export interface BatchOutput {
  bytes: Uint8Array<ArrayBuffer>;
  ends: Uint32Array<ArrayBuffer>;
  redeliveries: string;
}

export type RunCounts = ReplayCounts;

export function emptyCounts(): RunCounts {
  return { deliveries: 0, runs: 0, node_runs: 0, intents: 0, errors: 0, runs_by_status: {}, redelivered: 0, redelivery_failures: 0 };
}

export function addCounts(a: RunCounts, b: RunCounts): RunCounts {
  const byStatus = { ...a.runs_by_status };
  for (const [k, v] of Object.entries(b.runs_by_status)) byStatus[k] = (byStatus[k] ?? 0) + v;
  return {
    deliveries: a.deliveries + b.deliveries,
    runs: a.runs + b.runs,
    node_runs: a.node_runs + b.node_runs,
    intents: a.intents + b.intents,
    errors: a.errors + b.errors,
    runs_by_status: byStatus,
    redelivered: a.redelivered + b.redelivered,
    redelivery_failures: a.redelivery_failures + b.redelivery_failures,
  };
}

export interface Runner {
  /** Runs the flows over a batch of deliveries (in received_at order) and returns their rows. */
  run(batch: readonly StoredDelivery[]): Promise<BatchOutput>;
  finish(): Promise<RunCounts>;
  /** Closes connections after a failure. */
  abort(): Promise<void>;
}

/** A replay runner: in this thread, or one per worker thread (worker.ts). */
export async function createRunner(spec: RunnerSpec): Promise<Runner> {
  const ops = createOpRegistry([...BUILTIN_OPS, ...(await loadUserOps(spec.opsModules, spec.opsBaseDir))]);
  const { flows } = await loadFlowsOrThrow(spec.flowsDir, ops);
  const live = liveFlows(flows, spec.mode, spec.flowModes);
  const capabilities = live.length > 0 || spec.liveReads ? createCapabilities(spec.upstreams) : undefined;
  if (capabilities) assertCapabilities(live, capabilities.upstreams);
  const t = timingsOf(spec.timings);
  const redeliverer = spec.redeliver ? createRedeliverer(spec.redeliver) : null;
  const logger = pino({ level: 'silent' });
  // Deliveries arrive in received_at order, and a worker's shard holds every instance of a delivery id.
  const dedup = createDedupMemory();
  const counts = emptyCounts();
  const close = async () => {
    await capabilities?.close();
    await redeliverer?.close();
  };
  return {
    async run(batch) {
      const blocks: string[] = [];
      let redeliveries = '';
      for (const stored of batch) {
        const { delivery, raw } = parseStored(stored);
        if (redeliverer) {
          const r = await redeliverer.send(raw);
          redeliveries += redeliveryLine(r, t);
          counts.redelivered++;
          if (r.status === null || r.status >= 400) counts.redelivery_failures++;
        }
        const runs = await runDelivery(flows, delivery, {
          mode: spec.mode,
          flowModes: spec.flowModes,
          seed: spec.seed,
          ...(spec.clockSkewUs ? { nowUs: (d: { received_at_us: number }) => d.received_at_us + spec.clockSkewUs } : {}),
          reads: recordedReads(stored.reads),
          echoes: recordedReads(stored.writes),
          capabilities,
          ...(spec.liveReads ? { liveReads: capabilities } : {}),
          logger,
          dedup,
        });
        const lines = runLines(delivery, runs, t);
        blocks.push(lines.flows, lines.nodes);
        counts.deliveries++;
        for (const run of runs) {
          counts.runs++;
          counts.runs_by_status[run.status] = (counts.runs_by_status[run.status] ?? 0) + 1;
          if (run.status === 'failed') counts.errors++;
          counts.node_runs += run.nodes.length;
          for (const n of run.nodes) if (n.intent) counts.intents++;
        }
      }
      return { ...encodeBlocks(blocks), redeliveries };
    },
    async finish() {
      await close();
      return counts;
    },
    abort: close,
  };
}

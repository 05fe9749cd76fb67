import { pino } from 'pino';
import { createOpRegistry, BUILTIN_OPS, loadUserOps } from './ops/registry.js';
import { loadFlowsOrThrow } from './flows/load.js';
import { assertCapabilities, createCapabilities, type UpstreamConfig } from './engine/capabilities.js';
import { runDelivery } from './engine/run.js';
import { liveFlows } from './engine/modes.js';
import type { Mode } from './flows/model.js';
import { recordedReads } from './engine/recordings.js';
import { openRunWriter } from './output/ndjson.js';
import { createRedeliverer } from './redeliver.js';
import { openStoreReader, streamDeliveries, type DeliveryFilter } from './source.js';

/** Everything one partition of a replay needs; plain data, so it crosses into a worker thread. */
export interface PartitionSpec {
  store: string;
  flowsDir: string;
  opsModules: string[];
  opsBaseDir: string;
  filter: DeliveryFilter;
  mode: Mode;
  flowModes: Record<string, Mode>;
  seed: number;
  timings: boolean;
  /** For live flows, and for reads when `liveReads` is set. */
  upstreams: Record<string, UpstreamConfig>;
  /** Serve dry-run reads from the upstreams instead of the recordings. */
  liveReads: boolean;
  /** Re-send each delivery to this webhook URL, re-signed with the source's secret. */
  redeliver: { url: string; secrets: Record<string, string> } | null;
  tempDir: string;
  memoryLimit: string;
  out: { flowRuns: string; nodeRuns: string; redeliveries: string };
}

export interface PartitionCounts {
  deliveries: number;
  runs: number;
  node_runs: number;
  intents: number;
  errors: number;
  runs_by_status: Record<string, number>;
  redelivered: number;
  redelivery_failures: number;
}

export function emptyCounts(): PartitionCounts {
  return { deliveries: 0, runs: 0, node_runs: 0, intents: 0, errors: 0, runs_by_status: {}, redelivered: 0, redelivery_failures: 0 };
}

export function addCounts(a: PartitionCounts, b: PartitionCounts): PartitionCounts {
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

/** Replays one partition of the store's deliveries into NDJSON; `onProgress` gets the deliveries done since the last call. */
export async function runPartition(spec: PartitionSpec, onProgress: (done: number) => void = () => {}): Promise<PartitionCounts> {
  const ops = createOpRegistry([...BUILTIN_OPS, ...(await loadUserOps(spec.opsModules, spec.opsBaseDir))]);
  const { flows } = await loadFlowsOrThrow(spec.flowsDir, ops);
  const live = liveFlows(flows, spec.mode, spec.flowModes);
  const capabilities = live.length > 0 || spec.liveReads ? createCapabilities(spec.upstreams) : undefined;
  if (capabilities) assertCapabilities(live, capabilities.upstreams);
  const reader = await openStoreReader(spec.store);
  const writer = openRunWriter(spec.out, { timings: spec.timings });
  const redeliverer = spec.redeliver ? createRedeliverer(spec.redeliver) : null;
  const logger = pino({ level: 'silent' });
  const counts = emptyCounts();
  let pending = 0;
  try {
    await reader.conn.run(`SET threads = 1; SET memory_limit = '${spec.memoryLimit}'; SET temp_directory = '${spec.tempDir.replaceAll("'", "''")}'; SET preserve_insertion_order = false`);
    for await (const { delivery, reads, writes, raw } of streamDeliveries(reader, spec.filter)) {
      if (redeliverer) {
        const r = await redeliverer.send(raw);
        await writer.writeRedelivery(r);
        counts.redelivered++;
        if (r.status === null || r.status >= 400) counts.redelivery_failures++;
      }
      const runs = await runDelivery(flows, delivery, { mode: spec.mode, flowModes: spec.flowModes, seed: spec.seed, reads: recordedReads(reads), echoes: recordedReads(writes), capabilities, ...(spec.liveReads ? { liveReads: capabilities } : {}), logger });
      await writer.write(delivery, runs);
      counts.deliveries++;
      for (const run of runs) {
        counts.runs++;
        counts.runs_by_status[run.status] = (counts.runs_by_status[run.status] ?? 0) + 1;
        if (run.status === 'failed') counts.errors++;
        counts.node_runs += run.nodes.length;
        for (const n of run.nodes) if (n.intent) counts.intents++;
      }
      if (++pending === 256) {
        onProgress(pending);
        pending = 0;
      }
    }
    onProgress(pending);
  } finally {
    await writer.close();
    reader.close();
    await capabilities?.close();
    await redeliverer?.close();
  }
  return counts;
}

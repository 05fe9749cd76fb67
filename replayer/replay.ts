import { availableParallelism } from 'node:os';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { DuckDBInstance } from '@duckdb/node-api';
import { formatUs } from '../core/clock.js';
import { HsError } from '../core/errors.js';
import { REPLAY_FORMAT_VERSION, type ReplayManifest } from '../core/replay-schema.js';
import { mkdirDurable, storePaths, syncDir, syncFile, writeFileAtomic } from '../core/store/layout.js';
import { VERSION } from '../core/version.js';
import { assertCapabilities } from './engine/capabilities.js';
import type { UpstreamConfig } from './engine/capabilities.js';
import { assertKnownFlows, liveFlows } from './engine/modes.js';
import type { Mode } from './flows/model.js';
import { loadFlowsOrThrow } from './flows/load.js';
import { BUILTIN_OPS, createOpRegistry, loadUserOps } from './ops/registry.js';
import { writeReplayParquet } from './output/parquet.js';
import { addCounts, emptyCounts, runPartition, type PartitionCounts, type PartitionSpec } from './partition.js';
import { assertReplayId, newReplayId } from './replays.js';
import { countDeliveries, openStoreReader, type DeliveryFilter } from './source.js';

export interface ReplayOptions {
  store: string;
  flowsDir: string;
  opsModules?: string[];
  opsBaseDir?: string;
  id?: string;
  sinceUs?: number | null;
  untilUs?: number | null;
  /** Every flow's mode unless overridden (default dry-run). */
  mode?: Mode;
  /** Per-flow modes: `{ "assign-agent": "live", "retry-agent": "off" }`. */
  flowModes?: Record<string, Mode>;
  /** Worker threads; 1 runs in this thread. Default: one per core, fewer for small stores (a thread costs more than 1,000 deliveries take). */
  concurrency?: number;
  /** 1-based: `{ k: 2, n: 4 }` is the second of four shards. */
  shard?: { k: number; n: number } | null;
  seed?: number;
  /** Record measured durations; without them two replays write byte-identical files. */
  timings?: boolean;
  upstreams?: Record<string, UpstreamConfig>;
  /** Serve dry-run reads from the upstreams (live data, still no mutation) instead of the recorded exchanges. */
  liveReads?: boolean;
  /** Re-send every delivery to this webhook URL, re-signed with the secret for its source. */
  redeliver?: { url: string; secrets: Record<string, string> } | null;
  onStart?(total: number): void;
  onProgress?(done: number): void;
}

export interface ReplaySummary {
  replay_id: string;
  dir: string;
  deliveries: number;
  runs: number;
  node_runs: number;
  intents: number;
  errors: number;
  runs_by_status: Record<string, number>;
  seconds: number;
  manifest: ReplayManifest;
}

const WORKER_MEMORY_LIMIT = '192MB';

function workerUrl(): { url: URL; execArgv: string[] } {
  // From the compiled CLI the worker is JavaScript; from sources (tests) tsx compiles it on the fly.
  if (import.meta.url.endsWith('.ts')) return { url: new URL('./worker.ts', import.meta.url), execArgv: ['--import', 'tsx'] };
  return { url: new URL('./worker.js', import.meta.url), execArgv: [] };
}

function runInWorker(spec: PartitionSpec, onProgress: (done: number) => void): Promise<PartitionCounts> {
  const { url, execArgv } = workerUrl();
  return new Promise((resolve, reject) => {
    const worker = new Worker(url, { workerData: spec, execArgv });
    let settled = false;
    worker.on('message', (m: { type: string; done?: number; counts?: PartitionCounts; error?: { message: string; code?: string; details?: Record<string, unknown> } }) => {
      if (m.type === 'progress') onProgress(m.done!);
      else if (m.type === 'done') {
        settled = true;
        resolve(m.counts!);
      } else if (m.type === 'error') {
        settled = true;
        const e = m.error!;
        reject(e.code?.startsWith('HS_ERR_') ? new HsError(e.code as never, e.message, { details: e.details }) : new Error(e.message));
      }
    });
    worker.on('error', (err) => {
      if (!settled) reject(err);
    });
    worker.on('exit', (code) => {
      if (!settled) reject(new Error(`replay worker exited with code ${code}`));
    });
  });
}

/**
 * Replays the store's deliveries through the flows. Output goes to a staging directory
 * and moves to `replays/<id>/` only when complete, so a replay directory with a
 * manifest is always whole.
 */
export async function replay(opts: ReplayOptions): Promise<ReplaySummary> {
  const started = performance.now();
  const startedAt = new Date();
  const mode = opts.mode ?? 'dry-run';
  const opsModules = opts.opsModules ?? [];
  const opsBaseDir = opts.opsBaseDir ?? process.cwd();
  const upstreams = opts.upstreams ?? {};
  const shard = opts.shard ?? null;
  if (shard && (!Number.isInteger(shard.k) || !Number.isInteger(shard.n) || shard.n < 1 || shard.k < 1 || shard.k > shard.n)) {
    throw new HsError('HS_ERR_USAGE', `--shard must be K/N with 1 <= K <= N, e.g. 2/4.`);
  }

  // Fail fast, in this thread, on bad flows and missing capabilities: before any output exists.
  const ops = createOpRegistry([...BUILTIN_OPS, ...(await loadUserOps(opsModules, opsBaseDir))]);
  const loaded = await loadFlowsOrThrow(opts.flowsDir, ops);
  const flowModes = opts.flowModes ?? {};
  assertKnownFlows(loaded.flows, flowModes);
  const live = liveFlows(loaded.flows, mode, flowModes);
  if (live.length > 0) assertCapabilities(live, new Set(Object.keys(upstreams)));
  if (opts.liveReads && Object.keys(upstreams).length === 0) throw new HsError('HS_ERR_USAGE', '--live-reads needs at least one --upstream to read from.');

  const id = opts.id ?? `${newReplayId(startedAt.getTime())}${shard ? `-shard-${shard.k}-of-${shard.n}` : ''}`;
  assertReplayId(id);
  const finalDir = storePaths.replay(opts.store, id);
  if (await stat(finalDir).catch(() => null)) throw new HsError('HS_ERR_USAGE', `Replay "${id}" already exists in ${opts.store}; choose another --id or remove ${finalDir}.`);

  const filter: DeliveryFilter = { sinceUs: opts.sinceUs ?? null, untilUs: opts.untilUs ?? null, shard: shard ? { index: shard.k - 1, of: shard.n } : null };
  const reader = await openStoreReader(opts.store);
  let total: number;
  try {
    total = await countDeliveries(reader, filter);
  } finally {
    reader.close();
  }
  opts.onStart?.(total);

  const staging = storePaths.replayStaging(opts.store, id);
  await rm(staging, { recursive: true, force: true });
  await mkdir(join(staging, 'parts'), { recursive: true });
  try {
    // Worker w of W takes the deliveries whose hash, within this shard, falls to it.
    const workers = opts.concurrency ?? Math.max(1, Math.min(availableParallelism(), Math.ceil(total / 1000)));
    const baseIndex = filter.shard?.index ?? 0;
    const baseOf = filter.shard?.of ?? 1;
    const specs: PartitionSpec[] = Array.from({ length: workers }, (_, w) => ({
      store: opts.store,
      flowsDir: opts.flowsDir,
      opsModules,
      opsBaseDir,
      filter: { ...filter, shard: workers === 1 && !filter.shard ? null : { index: baseIndex + baseOf * w, of: baseOf * workers } },
      mode,
      flowModes,
      seed: opts.seed ?? 0,
      timings: opts.timings ?? true,
      upstreams,
      liveReads: opts.liveReads ?? false,
      redeliver: opts.redeliver ?? null,
      tempDir: join(staging, `tmp-${w}`),
      memoryLimit: WORKER_MEMORY_LIMIT,
      out: {
        flowRuns: join(staging, 'parts', `flow_runs-${w}.ndjson`),
        nodeRuns: join(staging, 'parts', `node_runs-${w}.ndjson`),
        redeliveries: join(staging, 'parts', `redeliveries-${w}.ndjson`),
      },
    }));
    const progress = (done: number) => opts.onProgress?.(done);
    const results = workers === 1 ? [await runPartition(specs[0]!, progress)] : await Promise.all(specs.map((s) => runInWorker(s, progress)));
    const counts = results.reduce(addCounts, emptyCounts());

    const db = await DuckDBInstance.create(':memory:', { memory_limit: '256MB', temp_directory: join(staging, 'tmp-copy') });
    const conn = await db.connect();
    try {
      await writeReplayParquet(
        conn,
        { flowRuns: specs.map((s) => s.out.flowRuns), nodeRuns: specs.map((s) => s.out.nodeRuns), redeliveries: specs.map((s) => s.out.redeliveries) },
        { flowRuns: join(staging, 'flow_runs.parquet'), nodeRuns: join(staging, 'node_runs.parquet'), redeliveries: opts.redeliver ? join(staging, 'redeliveries.parquet') : null },
      );
    } finally {
      conn.closeSync();
      db.closeSync();
    }
    for (const file of ['flow_runs.parquet', 'node_runs.parquet', ...(opts.redeliver ? ['redeliveries.parquet'] : [])]) await syncFile(join(staging, file));
    await rm(join(staging, 'parts'), { recursive: true, force: true });
    for (const s of specs) await rm(s.tempDir, { recursive: true, force: true });
    await rm(join(staging, 'tmp-copy'), { recursive: true, force: true });

    const manifest: ReplayManifest = {
      format: 'hookshadow-replay',
      version: REPLAY_FORMAT_VERSION,
      replay_id: id,
      hookshadow_version: VERSION,
      flows_digest: loaded.digest,
      flows: loaded.flows.map((f) => ({ name: f.name, version: f.version, file: f.file })),
      mode,
      flow_modes: flowModes,
      live_reads: opts.liveReads ?? false,
      seed: opts.seed ?? 0,
      filters: {
        since: filter.sinceUs === null ? null : formatUs(filter.sinceUs),
        until: filter.untilUs === null ? null : formatUs(filter.untilUs),
        shard: shard ? `${shard.k}/${shard.n}` : null,
      },
      counts,
      started_at: startedAt.toISOString(),
      finished_at: new Date().toISOString(),
      workers,
    };
    await writeFileAtomic(join(staging, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    await syncDir(staging);
    await mkdirDurable(storePaths.replays(opts.store));
    await rename(staging, finalDir);
    await syncDir(storePaths.replays(opts.store));
    return { replay_id: id, dir: finalDir, ...counts, seconds: (performance.now() - started) / 1000, manifest };
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
}

import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { startWorker } from '../core/worker-script.js';
import { DuckDBInstance } from '@duckdb/node-api';
import { formatUs } from '../core/clock.js';
import { sqlString } from '../core/sql.js';
import { HsError } from '../core/errors.js';
import { REPLAY_FORMAT_VERSION, type ReplayCounts, type ReplayManifest } from '../core/replay-schema.js';
import { mkdirDurable, storePaths, syncDir, syncFile, writeFileAtomic } from '../core/store/layout.js';
import { VERSION } from '../core/version.js';
import { assertCapabilities } from './engine/capabilities.js';
import type { UpstreamConfig } from './engine/capabilities.js';
import { assertKnownFlows, liveFlows } from './engine/modes.js';
import type { Mode } from './flows/model.js';
import { loadFlowsOrThrow } from './flows/load.js';
import { BUILTIN_OPS, createOpRegistry, loadUserOps } from './ops/registry.js';
import { mergeParts } from './output/merge.js';
import { writeReplayParquet } from './output/parquet.js';
import { addCounts, createRunner, emptyCounts, type RunCounts, type RunnerSpec } from './runner.js';
import { assertReplayId, newReplayId } from './replays.js';
import { countDeliveries, openStoreReader, streamDeliveries, type DeliveryFilter, type StoredDelivery } from './source.js';

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
  /** Shift every run's clock (`now`, timestamps) by this many microseconds from received_at; default 0. */
  clockSkewUs?: number;
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

export interface ReplaySummary extends ReplayCounts {
  replay_id: string;
  dir: string;
  seconds: number;
  manifest: ReplayManifest;
}

/** DuckDB's share: the one reader sorts receive times and one window of deliveries at a time (more when bodies are huge). */
const READER_MEMORY_MB = 96;
/** Each worker's old generation: small, so V8 collects often instead of growing. */
const WORKER_HEAP_MB = 64;
/** Deliveries per message to a worker, and messages a worker may have queued: bounds what is in flight. */
const BATCH = 128;
const IN_FLIGHT = 4;

/** Where batches of deliveries go: a runner in this thread, or one in a worker thread. */
interface Sink {
  send(batch: StoredDelivery[]): Promise<void>;
  finish(): Promise<RunCounts>;
  abort(): Promise<void>;
}

async function inlineSink(spec: RunnerSpec, onProgress: (done: number) => void): Promise<Sink> {
  const runner = await createRunner(spec);
  return {
    async send(batch) {
      await runner.run(batch);
      onProgress(batch.length);
    },
    finish: () => runner.finish(),
    abort: () => runner.abort(),
  };
}

/** The runner for a delivery id: the first 32 bits of its MD5, as --shard splits (SHARD_HASH_SQL). */
function shardOf(deliveryId: string, n: number): number {
  return createHash('md5').update(deliveryId).digest().readUInt32BE(0) % n;
}

type WorkerMessage =
  | { type: 'ready' }
  | { type: 'ack'; done: number }
  | { type: 'done'; counts: RunCounts }
  | { type: 'error'; error: { message: string; code?: string; details?: Record<string, unknown> } };

function workerSink(spec: RunnerSpec, onProgress: (done: number) => void): Promise<Sink> {
  const worker = startWorker(import.meta.url, 'worker', { workerData: spec, resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB } });
  let failure: Error | null = null;
  let inFlight = 0;
  let wake: (() => void) | null = null;
  let finished: ((counts: RunCounts) => void) | null = null;
  const settle = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  return new Promise((resolveReady, rejectReady) => {
    const sink: Sink = {
      async send(batch) {
        while (inFlight >= IN_FLIGHT && !failure) await new Promise<void>((r) => (wake = r));
        if (failure) throw failure;
        inFlight++;
        worker.postMessage({ type: 'batch', rows: batch });
      },
      async finish() {
        while (inFlight > 0 && !failure) await new Promise<void>((r) => (wake = r));
        if (failure) throw failure;
        const counts = new Promise<RunCounts>((r) => (finished = r));
        worker.postMessage({ type: 'end' });
        const result = await Promise.race([counts, new Promise<never>((_, reject) => (wake = () => reject(failure)))]);
        return result;
      },
      async abort() {
        await worker.terminate();
      },
    };
    const fail = (err: Error) => {
      if (failure) return;
      failure = err;
      rejectReady(err);
      settle();
    };
    worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'ready') resolveReady(sink);
      else if (m.type === 'ack') {
        inFlight--;
        onProgress(m.done);
        settle();
      } else if (m.type === 'done') finished?.(m.counts);
      else fail(m.error.code?.startsWith('HS_ERR_') ? new HsError(m.error.code as never, m.error.message, { details: m.error.details }) : new Error(m.error.message));
    });
    worker.on('error', fail);
    worker.on('exit', (code) => {
      if (!finished || code !== 0) fail(new Error(`replay worker exited with code ${code}`));
    });
  });
}

/** DuckDB's out-of-memory and disk-full errors become HS_ERR_REPLAY_RESOURCES; anything else passes through. */
export function asResourceError(err: unknown): unknown {
  const message = (err as Error)?.message ?? '';
  if (err instanceof HsError || !/Out of Memory Error|No space left on device|Could not write/i.test(message)) return err;
  return new HsError('HS_ERR_REPLAY_RESOURCES', `The replay ran out of memory or disk and was abandoned; nothing was written (${message.split('\n')[0]}).`, { cause: err });
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
  const staging = storePaths.replayStaging(opts.store, id);
  await rm(staging, { recursive: true, force: true });
  await mkdir(join(staging, 'parts'), { recursive: true });
  const reader = await openStoreReader(opts.store);
  let readerOpen = true;
  const closeReader = () => {
    if (readerOpen) reader.close();
    readerOpen = false;
  };
  const sinks: Sink[] = [];
  try {
    // A window holds whole bodies: a store with near-limit (25 MiB) bodies needs room for several.
    const [largest] = await reader.query<{ mb: number | null }>('SELECT (max(body_size) / 1048576)::DOUBLE AS mb FROM deliveries');
    const memoryMb = Math.max(READER_MEMORY_MB, Math.ceil(8 * (largest?.mb ?? 0)));
    await reader.conn.run(`SET memory_limit = '${memoryMb}MB'; SET threads = 1; SET preserve_insertion_order = false; SET temp_directory = ${sqlString(join(staging, 'tmp'))}`);
    const total = await countDeliveries(reader, filter);
    opts.onStart?.(total);
    // One reader (this thread) streams deliveries in received_at order; batches go round-robin
    // to the runners, so each runner's output is in delivery order too and mergeParts can interleave them.
    const workers = opts.concurrency ?? Math.max(1, Math.min(availableParallelism(), Math.ceil(total / 1000)));
    const specs: RunnerSpec[] = Array.from({ length: workers }, (_, w) => ({
      flowsDir: opts.flowsDir,
      opsModules,
      opsBaseDir,
      mode,
      flowModes,
      seed: opts.seed ?? 0,
      clockSkewUs: opts.clockSkewUs ?? 0,
      timings: opts.timings ?? true,
      upstreams,
      liveReads: opts.liveReads ?? false,
      redeliver: opts.redeliver ?? null,
      out: {
        flowRuns: join(staging, 'parts', `flow_runs-${w}.ndjson`),
        nodeRuns: join(staging, 'parts', `node_runs-${w}.ndjson`),
        redeliveries: join(staging, 'parts', `redeliveries-${w}.ndjson`),
      },
    }));
    const progress = (done: number) => opts.onProgress?.(done);
    sinks.push(...(workers === 1 ? [await inlineSink(specs[0]!, progress)] : await Promise.all(specs.map((s) => workerSink(s, progress)))));
    // Every instance of a delivery id goes to the same runner, in order: its dedup memory sees redeliveries.
    const batches: StoredDelivery[][] = sinks.map(() => []);
    for await (const stored of streamDeliveries(reader, filter)) {
      const k = sinks.length === 1 ? 0 : shardOf(stored.delivery_id, sinks.length);
      batches[k]!.push(stored);
      if (batches[k]!.length === BATCH) {
        await sinks[k]!.send(batches[k]!);
        batches[k] = [];
      }
    }
    for (const [k, batch] of batches.entries()) if (batch.length > 0) await sinks[k]!.send(batch);
    closeReader();
    const results: RunCounts[] = [];
    for (const sink of sinks.splice(0)) results.push(await sink.finish());
    const counts = results.reduce(addCounts, emptyCounts());

    const merged = { flowRuns: join(staging, 'parts', 'flow_runs.ndjson'), nodeRuns: join(staging, 'parts', 'node_runs.ndjson') };
    await mergeParts(specs.map((s) => s.out), merged);
    // One thread keeps the file order (insertion order is preserved) and the memory small.
    const db = await DuckDBInstance.create(':memory:', { memory_limit: '256MB', threads: '1', temp_directory: join(staging, 'tmp-copy') });
    const conn = await db.connect();
    try {
      await writeReplayParquet(
        conn,
        { flowRuns: [merged.flowRuns], nodeRuns: [merged.nodeRuns], redeliveries: specs.map((s) => s.out.redeliveries) },
        { flowRuns: join(staging, 'flow_runs.parquet'), nodeRuns: join(staging, 'node_runs.parquet'), redeliveries: opts.redeliver ? join(staging, 'redeliveries.parquet') : null },
      );
    } finally {
      conn.closeSync();
      db.closeSync();
    }
    for (const file of ['flow_runs.parquet', 'node_runs.parquet', ...(opts.redeliver ? ['redeliveries.parquet'] : [])]) await syncFile(join(staging, file));
    await rm(join(staging, 'parts'), { recursive: true, force: true });
    await rm(join(staging, 'tmp'), { recursive: true, force: true });
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
      clock_skew_us: opts.clockSkewUs ?? 0,
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
    await Promise.all(sinks.map((s) => s.abort().catch(() => {})));
    closeReader();
    await rm(staging, { recursive: true, force: true });
    throw asResourceError(err);
  }
}

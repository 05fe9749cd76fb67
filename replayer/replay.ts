import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { startWorker } from '../core/worker-script.js';
import { DuckDBInstance } from '@duckdb/node-api';
import { formatUs } from '../core/clock.js';
import { sqlString } from '../core/sql.js';
import { HsError, isOutOfResources } from '../core/errors.js';
import { REPLAY_FORMAT_VERSION, type ReplayCounts, type ReplayManifest } from '../core/replay-schema.js';
import { mkdirDurable, storePaths, syncDir, syncFile, writeFileAtomic } from '../core/store/layout.js';
import { VERSION } from '../core/version.js';
import { assertCapabilities } from './engine/capabilities.js';
import type { UpstreamConfig } from './engine/capabilities.js';
import { assertKnownFlows, liveFlows } from './engine/modes.js';
import type { Mode } from './flows/model.js';
import { loadFlowsOrThrow } from './flows/load.js';
import { BUILTIN_OPS, createOpRegistry, loadUserOps } from './ops/registry.js';
import { BufferedLines } from './output/ndjson.js';
import { writeReplayParquet } from './output/parquet.js';
import { addCounts, createRunner, emptyCounts, type BatchOutput, type RunCounts, type RunnerSpec } from './runner.js';
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
/** Deliveries per runner in a window, and windows in flight: bounds what the runners have queued and what waits to be written. */
const BATCH = 128;
const IN_FLIGHT = 4;

/** Where batches of deliveries go: a runner in this thread, or one in a worker thread. Batches run in the order given. */
interface Sink {
  run(batch: StoredDelivery[]): Promise<BatchOutput>;
  finish(): Promise<RunCounts>;
  abort(): Promise<void>;
}

async function inlineSink(spec: RunnerSpec): Promise<Sink> {
  const runner = await createRunner(spec);
  // One batch at a time: the dedup memory must see deliveries in order.
  let chain: Promise<unknown> = Promise.resolve();
  return {
    run(batch) {
      const out = chain.then(() => runner.run(batch));
      chain = out.catch(() => {});
      return out;
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
  | { type: 'output'; output: BatchOutput }
  | { type: 'done'; counts: RunCounts }
  | { type: 'error'; error: { message: string; code?: string; details?: Record<string, unknown> } };

function workerSink(spec: RunnerSpec): Promise<Sink> {
  const worker = startWorker(import.meta.url, 'worker', { workerData: spec, resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB } });
  let failure: Error | null = null;
  // The worker answers batches in the order they were sent.
  const waiting: { resolve(o: BatchOutput): void; reject(e: Error): void }[] = [];
  let finished: { resolve(c: RunCounts): void; reject(e: Error): void } | null = null;
  return new Promise((resolveReady, rejectReady) => {
    const sink: Sink = {
      run(batch) {
        if (failure) return Promise.reject(failure);
        worker.postMessage({ type: 'batch', rows: batch });
        return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
      },
      finish() {
        if (failure) return Promise.reject(failure);
        worker.postMessage({ type: 'end' });
        return new Promise((resolve, reject) => (finished = { resolve, reject }));
      },
      async abort() {
        await worker.terminate();
      },
    };
    const fail = (err: Error) => {
      if (failure) return;
      failure = err;
      rejectReady(err);
      for (const w of waiting.splice(0)) w.reject(err);
      finished?.reject(err);
    };
    let done = false;
    worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'ready') resolveReady(sink);
      else if (m.type === 'output') waiting.shift()?.resolve(m.output);
      else if (m.type === 'done') {
        done = true;
        finished?.resolve(m.counts);
      } else fail(m.error.code?.startsWith('HS_ERR_') ? new HsError(m.error.code as never, m.error.message, { details: m.error.details }) : new Error(m.error.message));
    });
    worker.on('error', fail);
    worker.on('exit', (code) => {
      if (!done || code !== 0) fail(new Error(`replay worker exited with code ${code}`));
    });
  });
}

/**
 * The replay's NDJSON, written in delivery order as windows of deliveries come back
 * from the runners: each window is cut into one batch per runner, and its rows are
 * put back in the window's order. The final Parquet then needs no sort, and the
 * output is the same whatever the number of runners.
 */
async function windowWriter(sinks: Sink[], paths: { flowRuns: string; nodeRuns: string; redeliveries: string }, onProgress: (done: number) => void) {
  const files = await Promise.all([open(paths.flowRuns, 'w'), open(paths.nodeRuns, 'w')]);
  const redeliveries = BufferedLines.open(paths.redeliveries);
  const pending: { owners: number[]; outputs: Promise<BatchOutput[]> }[] = [];
  let window: StoredDelivery[] = [];

  const writeOldest = async () => {
    const { owners, outputs } = pending.shift()!;
    const parts = await outputs;
    const next = parts.map(() => 0);
    const flows: Uint8Array[] = [];
    const nodes: Uint8Array[] = [];
    for (const k of owners) {
      const { bytes, ends } = parts[k]!;
      const i = next[k]!++;
      const start = i === 0 ? 0 : ends[2 * i - 1]!;
      if (ends[2 * i]! > start) flows.push(bytes.subarray(start, ends[2 * i]));
      if (ends[2 * i + 1]! > ends[2 * i]!) nodes.push(bytes.subarray(ends[2 * i], ends[2 * i + 1]));
    }
    const [flowFile, nodeFile] = files;
    await Promise.all([flows.length > 0 && flowFile.writev(flows), nodes.length > 0 && nodeFile.writev(nodes)]);
    await redeliveries.push(parts.map((p) => p.redeliveries).join(''));
    onProgress(owners.length);
  };
  const close = async () => {
    await Promise.all([...files.map((f) => f.close()), redeliveries.close()]);
  };
  const dispatch = async () => {
    // Every instance of a delivery id goes to the same runner, in order: its dedup memory sees redeliveries.
    const owners = window.map((d) => (sinks.length === 1 ? 0 : shardOf(d.delivery_id, sinks.length)));
    const outputs = Promise.all(sinks.map((sink, k) => sink.run(window.filter((_, i) => owners[i] === k))));
    // Awaited in turn by writeOldest; until then a failure must not count as unhandled.
    outputs.catch(() => {});
    pending.push({ owners, outputs });
    window = [];
    while (pending.length > IN_FLIGHT) await writeOldest();
  };
  return {
    async add(d: StoredDelivery) {
      window.push(d);
      if (window.length === BATCH * sinks.length) await dispatch();
    },
    async finish() {
      if (window.length > 0) await dispatch();
      while (pending.length > 0) await writeOldest();
      await close();
    },
    async abort() {
      await Promise.all(pending.splice(0).map((p) => p.outputs.catch(() => {})));
      await close().catch(() => {});
    },
  };
}

/** DuckDB's out-of-memory and disk-full errors become HS_ERR_REPLAY_RESOURCES; anything else passes through. */
export function asResourceError(err: unknown): unknown {
  if (!isOutOfResources(err)) return err;
  return new HsError('HS_ERR_REPLAY_RESOURCES', `The replay ran out of memory or disk and was abandoned; nothing was written (${(err as Error).message.split('\n')[0]}).`, { cause: err });
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
  let abortOutput = async () => {};
  try {
    // A window holds whole bodies: a store with near-limit (25 MiB) bodies needs room for several.
    const [largest] = await reader.query<{ mb: number | null }>('SELECT (max(body_size) / 1048576)::DOUBLE AS mb FROM deliveries');
    const memoryMb = Math.max(READER_MEMORY_MB, Math.ceil(8 * (largest?.mb ?? 0)));
    await reader.conn.run(`SET memory_limit = '${memoryMb}MB'; SET threads = 1; SET preserve_insertion_order = false; SET temp_directory = ${sqlString(join(staging, 'tmp'))}`);
    const total = await countDeliveries(reader, filter);
    opts.onStart?.(total);
    const workers = opts.concurrency ?? Math.max(1, Math.min(availableParallelism(), Math.ceil(total / 1000)));
    const spec: RunnerSpec = {
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
    };
    sinks.push(...(workers === 1 ? [await inlineSink(spec)] : await Promise.all(Array.from({ length: workers }, () => workerSink(spec)))));
    const parts = { flowRuns: join(staging, 'parts', 'flow_runs.ndjson'), nodeRuns: join(staging, 'parts', 'node_runs.ndjson'), redeliveries: join(staging, 'parts', 'redeliveries.ndjson') };
    // One reader (this thread) streams deliveries in received_at order; the runners run them while it reads on.
    const output = await windowWriter(sinks, parts, (done) => opts.onProgress?.(done));
    abortOutput = () => output.abort();
    for await (const stored of streamDeliveries(reader, filter)) await output.add(stored);
    await output.finish();
    closeReader();
    const results: RunCounts[] = [];
    for (const sink of sinks.splice(0)) results.push(await sink.finish());
    const counts = results.reduce(addCounts, emptyCounts());

    // One thread keeps the file order (insertion order is preserved) and the memory small.
    const db = await DuckDBInstance.create(':memory:', { memory_limit: '256MB', threads: '1', temp_directory: join(staging, 'tmp-copy') });
    const conn = await db.connect();
    try {
      await writeReplayParquet(
        conn,
        { flowRuns: [parts.flowRuns], nodeRuns: [parts.nodeRuns], redeliveries: [parts.redeliveries] },
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
    await abortOutput();
    closeReader();
    await rm(staging, { recursive: true, force: true });
    throw asResourceError(err);
  }
}

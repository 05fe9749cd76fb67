/**
 * One measured phase of the replay benchmark, alone in its own process, so its peak RSS
 * (getrusage maxRSS: every thread of the process, DuckDB's and the replay workers' included)
 * and its CPU time belong to that phase only. Started by bench/replay/run.ts:
 *
 *   node dist/bench/replay/child.js '<json PhaseSpec>'
 *
 * Writes one JSON line per event to stdout ({"event": ...}); the last is {"event":"result", ...}.
 */
import { readFileSync, statSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { DuckDBInstance } from '@duckdb/node-api';
import { storePaths } from '../../core/store/layout.js';
import { loadFlowsOrThrow } from '../../replayer/flows/load.js';
import { BUILTIN_OPS, createOpRegistry } from '../../replayer/ops/registry.js';
import { replay } from '../../replayer/replay.js';
import * as source from '../../replayer/source.js';
import { countDeliveries, openStoreReader, streamDeliveries } from '../../replayer/source.js';

export type PhaseSpec =
  | {
      kind: 'floor';
      name: string;
      store: string;
      /** DuckDB settings applied before the query (as a replay worker does); null: openStoreReader's defaults. */
      settings: { threads: number; memoryLimit: string; tempDir: string } | null;
    }
  | {
      kind: 'replay';
      name: string;
      store: string;
      flowsDir: string;
      concurrency: number;
      id: string;
      /** Delete the replay directory once measured. */
      cleanup: boolean;
    }
  | {
      /**
       * Diagnostic for the replayer as of 8b3b4aa-9377d93 (replayer/partition.ts, replayer/worker.ts, writeReplayParquet
       * with flowRuns/nodeRuns/redeliveries): replay()'s own building blocks (runPartition in replayer/worker.js
       * threads, then writeReplayParquet under replay()'s 256MB), wired as replay() wires them, but with each
       * worker's DuckDB memory_limit set to `workerMemory` instead of replay()'s fixed 192MB. No manifest, no
       * rename. Those internals are loaded at run time (not type-checked), so this file builds whatever shape
       * they have now; on a commit without them the phase reports that it cannot run.
       */
      kind: 'replay-mem';
      name: string;
      store: string;
      flowsDir: string;
      concurrency: number;
      id: string;
      workerMemory: string;
      /** Retry the final COPY under this memory_limit when replay()'s 256MB fails; null: no retry. */
      copyRetryMemory: string | null;
      cleanup: boolean;
    };

const emit = (event: string, fields: Record<string, unknown> = {}) =>
  process.stdout.write(JSON.stringify({ event, t: performance.now() / 1000, ...fields }) + '\n');

function vm(): { rssKiB: number; hwmKiB: number } {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssKiB: kib('VmRSS'), hwmKiB: kib('VmHWM') };
}

async function floor(spec: Extract<PhaseSpec, { kind: 'floor' }>): Promise<Record<string, unknown>> {
  const tOpen = performance.now();
  const reader = await openStoreReader(spec.store);
  let deliveries = 0;
  let withReads = 0;
  let payloadBytes = 0;
  let firstRowAt: number | null = null;
  const every = 50_000;
  try {
    if (spec.settings) {
      const s = spec.settings;
      await reader.conn.run(
        `SET threads = ${s.threads}; SET memory_limit = '${s.memoryLimit}'; SET temp_directory = '${s.tempDir.replaceAll("'", "''")}'; SET preserve_insertion_order = false`,
      );
    }
    emit('opened', { seconds: (performance.now() - tOpen) / 1000 });
    // streamDeliveries yields either the parsed delivery (`{ delivery, reads, writes }`, up to 8b3b4aa) or the
    // stored row, which `parseStored` turns into the same (later): either way every payload is parsed here,
    // exactly as a replay worker parses it, and nothing else is done.
    const parseStored = (source as unknown as Record<string, unknown>).parseStored as ((s: unknown) => { delivery: { payload: unknown } }) | undefined;
    for await (const item of streamDeliveries(reader, { sinceUs: null, untilUs: null, shard: null }) as AsyncIterable<unknown>) {
      if (firstRowAt === null) {
        firstRowAt = performance.now();
        emit('first', {});
      }
      const row = item as { delivery?: { payload: unknown }; reads: unknown[] };
      const delivery = row.delivery ?? parseStored?.(item).delivery;
      if (!delivery) throw new Error('streamDeliveries yields rows this benchmark does not know (neither { delivery } nor parseStored)');
      deliveries += 1;
      if (row.reads.length > 0) withReads += 1;
      // Touch the parsed payload so nothing can be skipped.
      if (delivery.payload !== null) payloadBytes += 1;
      if (deliveries % every === 0) emit('progress', { done: deliveries });
    }
  } finally {
    reader.close();
  }
  if (spec.settings) await rm(spec.settings.tempDir, { recursive: true, force: true });
  return { deliveries, withReads, parsedPayloads: payloadBytes };
}

async function replayPhase(spec: Extract<PhaseSpec, { kind: 'replay' }>): Promise<Record<string, unknown>> {
  let done = 0;
  let nextMark = 0;
  let total = 0;
  let first = true;
  const summary = await replay({
    store: spec.store,
    flowsDir: spec.flowsDir,
    concurrency: spec.concurrency,
    timings: true,
    id: spec.id,
    onStart: (n) => {
      total = n;
      nextMark = Math.max(1, Math.round(n / 20));
      emit('counted', { total: n });
    },
    onProgress: (k) => {
      if (first && k > 0) {
        first = false;
        emit('first', {});
      }
      done += k;
      if (done >= nextMark) {
        emit('progress', { done });
        nextMark += Math.max(1, Math.round(total / 20));
      }
      if (done === total) emit('streamed', { done });
    },
  });
  const out = { flowRunsBytes: 0, nodeRunsBytes: 0 };
  try {
    out.flowRunsBytes = statSync(join(summary.dir, 'flow_runs.parquet')).size;
    out.nodeRunsBytes = statSync(join(summary.dir, 'node_runs.parquet')).size;
  } catch {
    // sizes are informative only
  }
  if (spec.cleanup) await rm(storePaths.replay(spec.store, spec.id), { recursive: true, force: true });
  return {
    deliveries: summary.deliveries,
    runs: summary.runs,
    nodeRuns: summary.node_runs,
    intents: summary.intents,
    errors: summary.errors,
    runsByStatus: summary.runs_by_status,
    workers: summary.manifest.workers,
    replaySeconds: summary.seconds,
    output: out,
  };
}

/** replayer/partition.ts's PartitionCounts (as of 8b3b4aa). */
interface PartitionCounts {
  deliveries: number;
  runs: number;
  node_runs: number;
  intents: number;
  errors: number;
  runs_by_status: Record<string, number>;
}
/** replayer/partition.ts's PartitionSpec (as of 8b3b4aa): plain data for a worker thread. */
type PartitionSpec = Record<string, unknown> & { out: { flowRuns: string; nodeRuns: string; redeliveries: string } };
/** The internals replay-mem wires together, loaded at run time. */
interface Internals {
  runPartition(spec: PartitionSpec, onProgress: (done: number) => void): Promise<PartitionCounts>;
  addCounts(a: PartitionCounts, b: PartitionCounts): PartitionCounts;
  emptyCounts(): PartitionCounts;
  writeReplayParquet(conn: unknown, parts: Record<string, string[]>, out: Record<string, string | null>): Promise<void>;
}

async function loadInternals(): Promise<Internals> {
  const url = (path: string) => new URL(path, import.meta.url).href;
  try {
    const partition = (await import(url('../../replayer/partition.js'))) as Partial<Internals>;
    const parquet = (await import(url('../../replayer/output/parquet.js'))) as Partial<Internals>;
    if (!partition.runPartition || !partition.addCounts || !partition.emptyCounts || !parquet.writeReplayParquet) throw new Error('missing exports');
    return { runPartition: partition.runPartition, addCounts: partition.addCounts, emptyCounts: partition.emptyCounts, writeReplayParquet: parquet.writeReplayParquet };
  } catch (err) {
    throw new Error(`replay-mem wires replayer/partition.ts (runPartition) and writeReplayParquet as they were at 8b3b4aa; this build does not have them (${(err as Error).message})`);
  }
}

function runInWorker(spec: PartitionSpec, onProgress: (done: number) => void): Promise<PartitionCounts> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('../../replayer/worker.js', import.meta.url), { workerData: spec });
    let settled = false;
    worker.on('message', (m: { type: string; done?: number; counts?: PartitionCounts; error?: { message: string } }) => {
      if (m.type === 'progress') onProgress(m.done!);
      else if (m.type === 'done') {
        settled = true;
        resolve(m.counts!);
      } else if (m.type === 'error') {
        settled = true;
        reject(new Error(m.error!.message));
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

async function replayMemPhase(spec: Extract<PhaseSpec, { kind: 'replay-mem' }>): Promise<Record<string, unknown>> {
  const started = performance.now();
  const { runPartition, addCounts, emptyCounts, writeReplayParquet } = await loadInternals();
  await loadFlowsOrThrow(spec.flowsDir, createOpRegistry(BUILTIN_OPS));
  const filter = { sinceUs: null, untilUs: null, shard: null };
  const reader = await openStoreReader(spec.store);
  let total: number;
  try {
    total = await countDeliveries(reader, filter);
  } finally {
    reader.close();
  }
  emit('counted', { total });
  const staging = storePaths.replayStaging(spec.store, spec.id);
  await rm(staging, { recursive: true, force: true });
  await mkdir(join(staging, 'parts'), { recursive: true });
  const workers = spec.concurrency;
  const specs: PartitionSpec[] = Array.from({ length: workers }, (_, w) => ({
    store: spec.store,
    flowsDir: spec.flowsDir,
    opsModules: [],
    opsBaseDir: process.cwd(),
    filter: { ...filter, shard: workers === 1 ? null : { index: w, of: workers } },
    mode: 'dry-run',
    flowModes: {},
    seed: 0,
    timings: true,
    upstreams: {},
    liveReads: false,
    redeliver: null,
    tempDir: join(staging, `tmp-${w}`),
    memoryLimit: spec.workerMemory,
    out: {
      flowRuns: join(staging, 'parts', `flow_runs-${w}.ndjson`),
      nodeRuns: join(staging, 'parts', `node_runs-${w}.ndjson`),
      redeliveries: join(staging, 'parts', `redeliveries-${w}.ndjson`),
    },
  }));
  let done = 0;
  let nextMark = Math.max(1, Math.round(total / 20));
  const progress = (k: number) => {
    if (done === 0 && k > 0) emit('first', {});
    done += k;
    if (done >= nextMark) {
      emit('progress', { done });
      nextMark += Math.max(1, Math.round(total / 20));
    }
  };
  try {
    const results = workers === 1 ? [await runPartition(specs[0]!, progress)] : await Promise.all(specs.map((s) => runInWorker(s, progress)));
    emit('streamed', { done });
    const tStreamed = performance.now();
    const counts = results.reduce(addCounts, emptyCounts());
    const partsBytes = specs.reduce((n, s) => n + statSync(s.out.flowRuns).size + statSync(s.out.nodeRuns).size, 0);
    // replay()'s final COPY runs under memory_limit 256MB; when it fails, it is tried again under
    // `copyRetryMemory` (when given) so the run still yields the COPY's time and memory.
    const copyAttempts: { memoryLimit: string; seconds: number; error: string | null; flowRunsWritten: boolean }[] = [];
    for (const memoryLimit of ['256MB', ...(spec.copyRetryMemory ? [spec.copyRetryMemory] : [])]) {
      await rm(join(staging, 'flow_runs.parquet'), { force: true });
      await rm(join(staging, 'node_runs.parquet'), { force: true });
      const db = await DuckDBInstance.create(':memory:', { memory_limit: memoryLimit, temp_directory: join(staging, 'tmp-copy') });
      const conn = await db.connect();
      const tCopy = performance.now();
      let error: string | null = null;
      try {
        await writeReplayParquet(
          conn,
          { flowRuns: specs.map((s) => s.out.flowRuns), nodeRuns: specs.map((s) => s.out.nodeRuns), redeliveries: specs.map((s) => s.out.redeliveries) },
          { flowRuns: join(staging, 'flow_runs.parquet'), nodeRuns: join(staging, 'node_runs.parquet'), redeliveries: null },
        );
      } catch (err) {
        error = (err as Error).message.split('\n')[0]!;
      } finally {
        conn.closeSync();
        db.closeSync();
        await rm(join(staging, 'tmp-copy'), { recursive: true, force: true });
      }
      const flowRunsWritten = statSync(join(staging, 'flow_runs.parquet'), { throwIfNoEntry: false }) !== undefined;
      copyAttempts.push({ memoryLimit, seconds: (performance.now() - tCopy) / 1000, error, flowRunsWritten });
      emit(error ? 'copy-failed' : 'copied', { memoryLimit, error });
      if (!error) break;
    }
    const copied = copyAttempts.find((a) => a.error === null) ?? null;
    const failedCopySeconds = copyAttempts.filter((a) => a.error !== null).reduce((n, a) => n + a.seconds, 0);
    const copySeconds = copied?.seconds ?? null;
    const output = copied
      ? { flowRunsBytes: statSync(join(staging, 'flow_runs.parquet')).size, nodeRunsBytes: statSync(join(staging, 'node_runs.parquet')).size, ndjsonPartsBytes: partsBytes }
      : { flowRunsBytes: 0, nodeRunsBytes: 0, ndjsonPartsBytes: partsBytes };
    return {
      deliveries: counts.deliveries,
      runs: counts.runs,
      nodeRuns: counts.node_runs,
      intents: counts.intents,
      errors: counts.errors,
      runsByStatus: counts.runs_by_status,
      workers,
      workerMemory: spec.workerMemory,
      /** As replay() would take if its COPY had run under the memory that worked: failed COPY attempts left out. */
      replaySeconds: (performance.now() - started) / 1000 - failedCopySeconds,
      streamedSeconds: (tStreamed - started) / 1000,
      copySeconds,
      copyAttempts,
      copyOkAt256MB: copyAttempts[0]?.error === null,
      output,
    };
  } finally {
    if (spec.cleanup) await rm(staging, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '{}') as PhaseSpec;
  const started = performance.now();
  const cpu0 = process.resourceUsage();
  emit('start', { pid: process.pid, ...vm() });
  let figures: Record<string, unknown>;
  let error: string | null = null;
  try {
    figures = spec.kind === 'floor' ? await floor(spec) : spec.kind === 'replay' ? await replayPhase(spec) : await replayMemPhase(spec);
  } catch (err) {
    figures = {};
    error = (err as Error).stack ?? String(err);
  }
  const wall = (performance.now() - started) / 1000;
  const ru = process.resourceUsage();
  const mem = process.memoryUsage();
  emit('result', {
    name: spec.name,
    error,
    wallSeconds: wall,
    userSeconds: (ru.userCPUTime - cpu0.userCPUTime) / 1e6,
    systemSeconds: (ru.systemCPUTime - cpu0.systemCPUTime) / 1e6,
    /** getrusage: KiB on Linux; covers every thread of this process. */
    maxRssKiB: ru.maxRSS,
    ...vm(),
    heapUsedMiB: mem.heapUsed / 2 ** 20,
    fsReadBlocks: ru.fsRead,
    fsWriteBlocks: ru.fsWrite,
    figures,
  });
  process.exitCode = error ? 1 : 0;
}

void main();

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

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '{}') as PhaseSpec;
  const started = performance.now();
  const cpu0 = process.resourceUsage();
  emit('start', { pid: process.pid, ...vm() });
  let figures: Record<string, unknown>;
  let error: string | null = null;
  try {
    figures = spec.kind === 'floor' ? await floor(spec) : await replayPhase(spec);
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

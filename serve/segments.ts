import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import { appendDivergence, createDivergenceTable, writeDivergencesParquet } from '../analyzer/divergences.js';
import type { Clock } from '../core/clock.js';
import { formatUs } from '../core/clock.js';
import { REPLAY_FORMAT_VERSION, type ReplayManifest } from '../core/replay-schema.js';
import { mkdirDurable, storePaths, syncDir, syncFile, writeFileAtomic } from '../core/store/layout.js';
import { VERSION } from '../core/version.js';
import type { CompiledFlow, Mode } from '../replayer/flows/model.js';
import { openRunWriter, type RunWriter } from '../replayer/output/ndjson.js';
import { writeReplayParquet } from '../replayer/output/parquet.js';
import { addCounts, emptyCounts, type RunCounts } from '../replayer/runner.js';
import type { SettledDelivery } from './dispatcher.js';
import { LIVE_FILE, LIVE_REPLAY_PREFIX, type LiveStore } from './live-store.js';

/**
 * Live results in the offline replays' layout (specs/modes.md § Live data): every
 * `segmentMs` (and at shutdown) the settled deliveries become a replay directory
 * `replays/live-<instance>-<time>/` with `flow_runs.parquet`, `node_runs.parquet`,
 * `divergences.parquet`, `live_deliveries.parquet` and `manifest.json`. `hookshadow
 * analyze`, `sql` and the notebooks run on it unchanged.
 */

export interface SegmentWriterDeps {
  store: string;
  instance: string;
  flows: readonly CompiledFlow[];
  flowsDigest: string;
  live: LiveStore;
  modes: () => { mode: Mode; flows: Record<string, Mode> };
  clock: Clock;
  segmentMs: number;
  logger: FastifyBaseLogger;
}

export interface SegmentWriter {
  write(batch: SettledDelivery[]): Promise<void>;
  /** Turns what was written since the last roll into a replay directory; null when there was nothing. */
  roll(): Promise<string | null>;
  close(): Promise<void>;
}

interface Open {
  dir: string;
  writer: RunWriter;
  firstUs: number;
  lastUs: number;
  counts: RunCounts;
  startedAt: string;
}

const FLUSH_MS = 250;
const FLUSH_ROWS = 2_048;

const stamp = (us: number) => formatUs(us).replace(/[-:]/g, '').replace(/\.(\d+)Z$/, '$1Z');

export function createSegmentWriter(deps: SegmentWriterDeps): SegmentWriter {
  let open: Open | null = null;
  let chain: Promise<unknown> = Promise.resolve();
  const serialized = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = chain.then(fn, fn);
    chain = next.catch(() => undefined);
    return next;
  };
  const staging = join(storePaths.staging(deps.store, deps.instance), 'live');
  let divergenceTable: Promise<void> | null = null;
  const timer = setInterval(() => void roll().catch((err: unknown) => deps.logger.error({ err }, 'rolling a live segment failed; its deliveries stay in memory and are tried again')), deps.segmentMs);
  timer.unref();

  const start = async (firstUs: number): Promise<Open> => {
    const dir = join(staging, `${stamp(deps.clock.nowUs())}`);
    await mkdir(join(dir, 'parts'), { recursive: true });
    const writer = openRunWriter({ flowRuns: join(dir, 'parts', 'flow_runs.ndjson'), nodeRuns: join(dir, 'parts', 'node_runs.ndjson'), redeliveries: join(dir, 'parts', 'redeliveries.ndjson') }, { timings: true });
    return { dir, writer, firstUs, lastUs: firstUs, counts: emptyCounts(), startedAt: formatUs(deps.clock.nowUs()) };
  };

  // Settled deliveries wait here up to FLUSH_MS: each write to DuckDB has a fixed cost (an appender
  // to close, an insert to plan) that a few hundred rows at once pay once, not per settle batch.
  let pending: SettledDelivery[] = [];
  let flushTimer: NodeJS.Timeout | null = null;
  const flush = () => {
    if (flushTimer) clearTimeout(flushTimer);
    flushTimer = null;
    const batch = pending;
    pending = [];
    return writeNow(batch);
  };
  const write = async (batch: SettledDelivery[]) => {
    pending.push(...batch);
    if (pending.length >= FLUSH_ROWS) await flush();
    else flushTimer ??= setTimeout(() => void flush().catch((err: unknown) => deps.logger.error({ err }, 'writing settled deliveries failed')), FLUSH_MS);
  };

  const writeNow = (batch: SettledDelivery[]) =>
    serialized(async () => {
      if (batch.length === 0) return;
      divergenceTable ??= createDivergenceTable(deps.live.conn);
      await divergenceTable;
      const seg = (open ??= await start(batch[0]!.input.received_at_us));
      const appender = await deps.live.conn.createAppender('divergence_rows');
      for (const s of batch) {
        await seg.writer.write(s.input, s.runs);
        seg.firstUs = Math.min(seg.firstUs, s.input.received_at_us);
        seg.lastUs = Math.max(seg.lastUs, s.input.received_at_us);
        const c = emptyCounts();
        c.deliveries = 1;
        for (const run of s.runs) {
          c.runs++;
          c.runs_by_status[run.status] = (c.runs_by_status[run.status] ?? 0) + 1;
          if (run.status === 'failed') c.errors++;
          c.node_runs += run.nodes.length;
          c.intents += run.nodes.filter((n) => n.intent).length;
        }
        seg.counts = addCounts(seg.counts, c);
        for (const d of s.result.divergences) appendDivergence(appender, d);
      }
      appender.closeSync();
      await deps.live.add(batch.map((s) => s.result));
    });

  const roll = async () => {
    await flush();
    return rollNow();
  };

  const rollNow = () =>
    serialized(async (): Promise<string | null> => {
      const seg = open;
      if (!seg) return null;
      open = null;
      await seg.writer.close();
      const untilUs = seg.lastUs + 1;
      const id = `${LIVE_REPLAY_PREFIX}${deps.instance}-${stamp(seg.firstUs)}`;
      await writeReplayParquet(
        deps.live.conn,
        { flowRuns: [join(seg.dir, 'parts', 'flow_runs.ndjson')], nodeRuns: [join(seg.dir, 'parts', 'node_runs.ndjson')], redeliveries: [] },
        { flowRuns: join(seg.dir, 'flow_runs.parquet'), nodeRuns: join(seg.dir, 'node_runs.parquet'), redeliveries: null },
      );
      const tmp = await writeDivergencesParquet(deps.live.conn, join(seg.dir, 'divergences.parquet'));
      await rename(tmp, join(seg.dir, 'divergences.parquet'));
      await deps.live.conn.run('DELETE FROM divergence_rows');
      await deps.live.rollTo(join(seg.dir, LIVE_FILE));
      for (const f of ['flow_runs.parquet', 'node_runs.parquet', LIVE_FILE]) await syncFile(join(seg.dir, f));
      await rm(join(seg.dir, 'parts'), { recursive: true, force: true });
      const modes = deps.modes();
      const manifest: ReplayManifest = {
        format: 'hookshadow-replay',
        version: REPLAY_FORMAT_VERSION,
        replay_id: id,
        hookshadow_version: VERSION,
        flows_digest: deps.flowsDigest,
        flows: deps.flows.map((f) => ({ name: f.name, version: f.version, file: f.file })),
        mode: modes.mode,
        flow_modes: modes.flows,
        live_reads: false,
        seed: 0,
        clock_skew_us: 0,
        // Exactly the deliveries this segment settled lie in [since, until) for this instance.
        filters: { since: formatUs(seg.firstUs), until: formatUs(untilUs), shard: null },
        counts: seg.counts,
        started_at: seg.startedAt,
        finished_at: formatUs(deps.clock.nowUs()),
        workers: 1,
      };
      await writeFileAtomic(join(seg.dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
      await syncDir(seg.dir);
      await mkdirDurable(storePaths.replays(deps.store));
      await rename(seg.dir, storePaths.replay(deps.store, id));
      await syncDir(storePaths.replays(deps.store));
      await deps.live.refresh();
      deps.logger.info({ replay: id, deliveries: seg.counts.deliveries }, 'live segment written');
      return id;
    });

  return {
    write,
    roll,
    async close() {
      clearInterval(timer);
      await roll();
    },
  };
}

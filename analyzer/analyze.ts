import { mkdtemp, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DIVERGENCE_CLASSES, DIVERGENCE_COLUMNS, DIVERGENCE_FORMAT_VERSION, type Divergence, type DivergenceClass } from '../core/divergence-schema.js';
import { HsError, isOutOfResources } from '../core/errors.js';
import type { ReplayManifest } from '../core/replay-schema.js';
import { sqlIdent, sqlString } from '../core/sql.js';
import { storePaths, syncDir, writeFileAtomic } from '../core/store/layout.js';
import { deliveryWhere, filterOfManifest } from '../replayer/source.js';
import { readReplayManifest, resolveReplayId } from '../replayer/replays.js';
import { computeDivergences, writeDivergencesParquet, type ComputeCounts } from './divergences.js';
import { markNoise, measureNoise } from './noise.js';
import type { AnalysisResult, BaselineReport, DailySummaryRow, DivergentDelivery, FlowSummary, NoisePath, Ranked } from './result.js';
import { loadRules, NO_RULES, staleRules } from './rules.js';
import { loadRouteMaps, type RouteMaps } from './routes.js';
import { openAnalysisReader, replayFiles, UNEXPECTED, type AnalysisReader } from './views.js';

export interface AnalyzeOptions {
  store: string;
  /** A replay id or `latest` (default). */
  replay?: string;
  rulesFile?: string | null;
  routeFiles?: string[];
  /** An earlier replay of the same deliveries to report introduced and resolved divergences against. */
  baseline?: string | null;
  /** A replay of the same deliveries with a perturbed seed and clock (see noise.ts); `exclude` suppresses the noisy paths. */
  noise?: { replay: string; exclude: boolean } | null;
  /** How many divergent deliveries the result lists in full (default 1000). */
  limit?: number;
  /** The analysis's clock: rule expiry is judged against it. */
  now?: Date;
  /** DuckDB's memory while matching, in MB (default 512); what does not fit spills to disk in the replay's directory. */
  memoryMb?: number;
  onProgress?(deliveries: number): void;
}

/** DuckDB's share while matching, by default: the streaming sort of effects, intents and runs spills to disk beyond it. */
export const DEFAULT_MEMORY_MB = 512;

/**
 * Analyzes one replay: computes its divergences, writes `divergences.parquet` and
 * `analysis.json` into the replay's directory, and returns the result every report
 * format renders (specs/divergence.md).
 */
export async function analyze(opts: AnalyzeOptions): Promise<AnalysisResult> {
  const now = opts.now ?? new Date();
  const replayId = await resolveReplayId(opts.store, opts.replay ?? 'latest');
  const rules = opts.rulesFile ? await loadRules(opts.rulesFile, now) : NO_RULES();
  const routes = await loadRouteMaps(opts.routeFiles ?? []);
  const baselineId = opts.baseline ? await resolveReplayId(opts.store, opts.baseline) : null;
  if (baselineId === replayId) throw new HsError('HS_ERR_USAGE', `--baseline names the replay being analyzed (${replayId}); give an earlier replay of the same deliveries.`);
  const noiseId = opts.noise ? await resolveReplayId(opts.store, opts.noise.replay) : null;
  const limit = opts.limit ?? 1000;
  const memoryMb = opts.memoryMb ?? DEFAULT_MEMORY_MB;
  const manifest = (await readReplayManifest(opts.store, replayId))!;
  for (const [flag, other] of [['--baseline', baselineId], ['--noise-replay', noiseId]] as const) {
    if (other) await assertSameDeliveries(opts.store, manifest, other, flag);
  }

  // DuckDB spills the matching sort here; a directory per analysis, so two at once never share one.
  const spill = await mkdtemp(join(storePaths.replay(opts.store, replayId), '_spill-'));
  // The analysis replaces its divergences; removing the old file first lets a damaged one be replaced too.
  await rm(replayFiles(opts.store, replayId).divergences, { force: true });
  let tmpFile: string | null = null;
  const reader = await openAnalysisReader(opts.store, replayId).catch(async (err) => {
    await rm(spill, { recursive: true, force: true });
    throw err;
  });
  try {
    await reader.conn.run(`SET memory_limit = '${memoryMb}MB'; SET temp_directory = ${sqlString(spill)}`);
    const counts = await computeDivergences(reader, { manifest, rules, routes, ...(opts.onProgress ? { onProgress: opts.onProgress } : {}) });
    const noise = noiseId
      ? await measureNoise(reader, { noiseReplay: replayFiles(opts.store, noiseId).nodeRuns, noiseReplayId: noiseId, rules, exclude: opts.noise!.exclude, matchesByKind: counts.matchesByKind })
      : null;
    tmpFile = await writeDivergencesParquet(reader.conn, replayFiles(opts.store, replayId).divergences);
    await reader.conn.run(`CREATE OR REPLACE VIEW divergences AS SELECT * FROM read_parquet(${sqlString(tmpFile)})`);
    const baseline = baselineId
      ? await compareBaseline(reader, tmpFile, baselineId, await baselineDivergences({ ...opts, now, routes, baselineId, spill, noisy: noise?.excluded ? noise.paths.filter((p) => p.noise) : [] }), limit)
      : null;
    const result: AnalysisResult = {
      format: 'hookshadow-analysis',
      version: DIVERGENCE_FORMAT_VERSION,
      replay_id: replayId,
      store: opts.store,
      generated_at: now.toISOString(),
      rules_file: rules.file,
      totals: await totals(reader, manifest, counts),
      counts_by_class: await countsByClass(reader, counts.matches),
      by_flow: await byFlow(reader),
      worst: await worst(reader),
      ...(await divergentDeliveries(reader, limit)),
      unattributed: await selectDivergences(reader, `class = 'unattributed'`, [], 'divergences', limit),
      unattributed_total: await countRows(reader, `(SELECT * FROM divergences WHERE class = 'unattributed')`),
      rules: {
        expect: rules.expect.map((r) => ({ id: r.id, reason: r.reason, owner: r.owner, expires: r.expires, suppressed: r.suppressed, expired: r.expired })),
        ...staleRules(rules),
      },
      noise,
      baseline,
      daily: await reader.query<DailySummaryRow>(
        `SELECT strftime(day, '%Y-%m-%d') AS day, deliveries::DOUBLE AS deliveries, deliveries_with_flow::DOUBLE AS deliveries_with_flow,
                flow_runs::DOUBLE AS flow_runs, divergent_runs::DOUBLE AS divergent_runs, divergence_rate FROM daily_summary ORDER BY day`,
      ),
    };
    // The Parquet and analysis.json land together, once everything above has succeeded.
    await rename(tmpFile, replayFiles(opts.store, replayId).divergences);
    tmpFile = null;
    await writeFileAtomic(replayFiles(opts.store, replayId).analysis, JSON.stringify(result, null, 2) + '\n');
    await syncDir(storePaths.replay(opts.store, replayId));
    return result;
  } catch (err) {
    if (!isOutOfResources(err)) throw err;
    throw new HsError(
      'HS_ERR_ANALYZE_RESOURCES',
      `The analysis of ${replayId} ran out of memory or temporary disk and was abandoned; nothing was written (${(err as Error).message.split('\n')[0]}). ` +
        `Raise --memory-limit (now ${memoryMb} MB), or free disk space under ${storePaths.replay(opts.store, replayId)}, where DuckDB spills.`,
      { cause: err },
    );
  } finally {
    reader.close();
    if (tmpFile) await rm(tmpFile, { force: true });
    await rm(spill, { recursive: true, force: true });
  }
}

/** Baselines and noise replays only mean something over the same deliveries. */
async function assertSameDeliveries(store: string, manifest: ReplayManifest, otherId: string, flag: string): Promise<void> {
  const other = (await readReplayManifest(store, otherId))!;
  if (JSON.stringify(other.filters) !== JSON.stringify(manifest.filters)) {
    throw new HsError(
      'HS_ERR_USAGE',
      `${flag} ${otherId} covered other deliveries (${JSON.stringify(other.filters)}) than ${manifest.replay_id} (${JSON.stringify(manifest.filters)}); replay both with the same --since, --until and --shard.`,
    );
  }
}

/**
 * The baseline's divergences under this analysis's rules (fresh counters: the baseline
 * must not mark rules used) and noise exclusions, in a temporary file: comparing under
 * whatever rules the baseline was last analyzed with would report rule changes as
 * introduced or resolved divergences. The baseline's own analysis is left alone.
 */
async function baselineDivergences(opts: AnalyzeOptions & { now: Date; routes: RouteMaps; baselineId: string; spill: string; noisy: NoisePath[] }): Promise<string> {
  const reader = await openAnalysisReader(opts.store, opts.baselineId);
  try {
    await reader.conn.run(`SET memory_limit = '${opts.memoryMb ?? DEFAULT_MEMORY_MB}MB'; SET temp_directory = ${sqlString(opts.spill)}`);
    const manifest = (await readReplayManifest(opts.store, opts.baselineId))!;
    const rules = opts.rulesFile ? await loadRules(opts.rulesFile, opts.now) : NO_RULES();
    await computeDivergences(reader, { manifest, rules, routes: opts.routes });
    await markNoise(reader.conn, opts.noisy);
    return await writeDivergencesParquet(reader.conn, join(opts.spill, 'baseline-divergences.parquet'));
  } finally {
    reader.close();
  }
}


async function totals(reader: AnalysisReader, manifest: Parameters<typeof filterOfManifest>[0], counts: ComputeCounts) {
  const w = deliveryWhere(filterOfManifest(manifest));
  const [d] = await reader.query<{ n: number }>(`SELECT count(*)::DOUBLE AS n FROM deliveries ${w.sql}`, w.params);
  const [r] = await reader.query<{ runs: number; with_flow: number }>(`SELECT count(*)::DOUBLE AS runs, count(DISTINCT (delivery_id, received_at))::DOUBLE AS with_flow FROM flow_runs`);
  const [v] = await reader.query<{ runs: number; deliveries: number; unexpected: number; expected: number }>(
    `SELECT count(DISTINCT run_id) FILTER (WHERE ${UNEXPECTED})::DOUBLE AS runs,
            count(DISTINCT delivery_id) FILTER (WHERE ${UNEXPECTED})::DOUBLE AS deliveries,
            count(*) FILTER (WHERE ${UNEXPECTED})::DOUBLE AS unexpected,
            count(*) FILTER (WHERE class <> 'match' AND expected_by IS NOT NULL)::DOUBLE AS expected
     FROM divergences`,
  );
  return {
    deliveries: d!.n,
    deliveries_with_flow: r!.with_flow,
    flow_runs: r!.runs,
    divergent_runs: v!.runs,
    divergent_deliveries: v!.deliveries,
    legacy_effects: counts.legacy_effects,
    intents: counts.intents,
    matches: counts.matches,
    unexpected: v!.unexpected,
    expected: v!.expected,
  };
}

async function countsByClass(reader: AnalysisReader, matches: number): Promise<AnalysisResult['counts_by_class']> {
  const out = Object.fromEntries(DIVERGENCE_CLASSES.map((c) => [c, { unexpected: 0, expected: 0 }])) as AnalysisResult['counts_by_class'];
  out.match = { unexpected: matches, expected: 0 };
  const rows = await reader.query<{ class: DivergenceClass; unexpected: number; expected: number }>(
    `SELECT class, count(*) FILTER (WHERE expected_by IS NULL)::DOUBLE AS unexpected, count(*) FILTER (WHERE expected_by IS NOT NULL)::DOUBLE AS expected FROM divergences GROUP BY class`,
  );
  for (const r of rows) out[r.class] = { unexpected: r.unexpected, expected: r.expected };
  return out;
}

async function byFlow(reader: AnalysisReader): Promise<FlowSummary[]> {
  const runs = await reader.query<{ flow: string; runs: number; divergent: number }>(
    `WITH bad AS (SELECT DISTINCT run_id FROM divergences WHERE ${UNEXPECTED} AND run_id IS NOT NULL)
     SELECT fr.flow, count(*)::DOUBLE AS runs, count(bad.run_id)::DOUBLE AS divergent FROM flow_runs fr LEFT JOIN bad USING (run_id) GROUP BY fr.flow ORDER BY fr.flow`,
  );
  const classes = await reader.query<{ flow: string; class: DivergenceClass; unexpected: number; expected: number }>(
    `SELECT flow, class, count(*) FILTER (WHERE expected_by IS NULL)::DOUBLE AS unexpected, count(*) FILTER (WHERE expected_by IS NOT NULL)::DOUBLE AS expected
     FROM divergences WHERE class <> 'match' AND flow IS NOT NULL GROUP BY ALL`,
  );
  return runs.map((r) => {
    const mine = classes.filter((c) => c.flow === r.flow);
    return {
      flow: r.flow,
      runs: r.runs,
      divergent_runs: r.divergent,
      divergence_rate: r.runs ? r.divergent / r.runs : 0,
      unexpected: Object.fromEntries(mine.filter((c) => c.unexpected > 0).map((c) => [c.class, c.unexpected])),
      expected: mine.reduce((n, c) => n + c.expected, 0),
    };
  });
}

async function worst(reader: AnalysisReader): Promise<AnalysisResult['worst']> {
  const top = (col: string) =>
    reader.query<Ranked>(`SELECT ${col} AS key, count(*)::DOUBLE AS count FROM divergences WHERE ${UNEXPECTED} AND ${col} IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10`);
  return { kinds: await top('kind'), targets: await top('target'), flows: await top('flow') };
}

const DIVERGENCE_SELECT = `delivery_id, epoch_us(received_at)::DOUBLE AS received_at_us, source, event, action, class, flow, node_id, iteration, run_id, kind, target, path,
  legacy_value::VARCHAR AS legacy_value, flow_value::VARCHAR AS flow_value, text_diff, effect_id, route, expected_by`;

function toDivergence(row: Record<string, unknown>): Divergence {
  // In the JSON result an absent value is null, so every difference has the same keys.
  const parse = (v: unknown) => (v === null || v === undefined ? null : JSON.parse(v as string));
  return { ...(row as unknown as Divergence), legacy_value: parse(row.legacy_value), flow_value: parse(row.flow_value) };
}

async function selectDivergences(reader: AnalysisReader, where: string, params: unknown[] = [], from = 'divergences', limit?: number): Promise<Divergence[]> {
  const rows = await reader.query(
    `SELECT ${DIVERGENCE_SELECT} FROM ${from} WHERE ${where} ORDER BY received_at, delivery_id, flow NULLS FIRST, node_id, class, path${limit === undefined ? '' : ` LIMIT ${Math.trunc(limit)}`}`,
    params,
  );
  return rows.map(toDivergence);
}

async function countRows(reader: AnalysisReader, from: string): Promise<number> {
  const [row] = await reader.query<{ n: number }>(`SELECT count(*)::DOUBLE AS n FROM ${from}`);
  return row!.n;
}

async function divergentDeliveries(reader: AnalysisReader, limit: number): Promise<{ deliveries: DivergentDelivery[]; deliveries_total: number }> {
  const [total] = await reader.query<{ n: number }>(`SELECT count(DISTINCT delivery_id)::DOUBLE AS n FROM divergences WHERE class NOT IN ('match', 'unattributed')`);
  // Unexpected first, then by time: when the list is cut, what needs attention stays in it.
  const picked = `SELECT delivery_id FROM divergences WHERE class NOT IN ('match', 'unattributed')
     GROUP BY delivery_id ORDER BY bool_or(expected_by IS NULL) DESC, min(received_at), delivery_id LIMIT $1`;
  const rows = await selectDivergences(reader, `class NOT IN ('match', 'unattributed') AND delivery_id IN (${picked})`, [limit]);
  const byId = new Map<string, DivergentDelivery>();
  for (const d of rows) {
    let entry = byId.get(d.delivery_id!);
    if (!entry) {
      entry = { delivery_id: d.delivery_id!, received_at: new Date(d.received_at_us / 1000).toISOString(), source: d.source, event: d.event, action: d.action, unexpected: false, differences: [] };
      byId.set(d.delivery_id!, entry);
    }
    entry.differences.push(d);
    if (d.expected_by === null) entry.unexpected = true;
  }
  return { deliveries: [...byId.values()], deliveries_total: total!.n };
}

/**
 * Introduced: unexpected now and not in the baseline; resolved: the reverse. As
 * multisets over every column but expected_by (both sides judged by the same rules), so
 * two identical differences before and one now is one resolved.
 */
async function compareBaseline(reader: AnalysisReader, currentFile: string, baselineId: string, baselineFile: string, limit: number): Promise<BaselineReport> {
  const cols = DIVERGENCE_COLUMNS.filter((c) => c.name !== 'expected_by').map((c) => sqlIdent(c.name));
  const side = (file: string) => `SELECT ${cols.join(', ')} FROM read_parquet(${sqlString(file)}) WHERE ${UNEXPECTED}`;
  const only = (a: string, b: string) => `(SELECT *, NULL::VARCHAR AS expected_by FROM (${side(a)} EXCEPT ALL ${side(b)}))`;
  return {
    replay_id: baselineId,
    introduced: await selectDivergences(reader, 'true', [], only(currentFile, baselineFile), limit),
    resolved: await selectDivergences(reader, 'true', [], only(baselineFile, currentFile), limit),
    introduced_total: await countRows(reader, only(currentFile, baselineFile)),
    resolved_total: await countRows(reader, only(baselineFile, currentFile)),
  };
}

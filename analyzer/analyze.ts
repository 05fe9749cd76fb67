import { access, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DIVERGENCE_CLASSES, DIVERGENCE_FORMAT_VERSION, type Divergence, type DivergenceClass } from '../core/divergence-schema.js';
import { HsError } from '../core/errors.js';
import { sqlString } from '../core/sql.js';
import { storePaths, writeFileAtomic } from '../core/store/layout.js';
import { deliveryWhere, filterOfManifest } from '../replayer/source.js';
import { readReplayManifest, resolveReplayId } from '../replayer/replays.js';
import { computeDivergences, writeDivergencesParquet } from './divergences.js';
import { measureNoise, NOISE_TABLE } from './noise.js';
import type { AnalysisResult, BaselineReport, DailySummaryRow, DivergentDelivery, FlowSummary, Ranked } from './result.js';
import { loadRules, NO_RULES, staleRules, type Rules } from './rules.js';
import { loadRouteMaps } from './routes.js';
import { openAnalysisReader, replayFiles, type AnalysisReader } from './views.js';

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
  onProgress?(deliveries: number): void;
}

/** DuckDB's share while matching: the streaming sort of effects, intents and runs spills to disk beyond it. */
const MEMORY_MB = 512;

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

  const divergencesOf = async (id: string, r: Rules, reader?: AnalysisReader) => {
    const own = reader ?? (await openAnalysisReader(opts.store, id));
    try {
      const manifest = (await readReplayManifest(opts.store, id))!;
      const tmp = join(storePaths.replay(opts.store, id), '_tmp');
      await mkdir(tmp, { recursive: true });
      await own.conn.run(`SET memory_limit = '${MEMORY_MB}MB'; SET temp_directory = ${sqlString(tmp)}`);
      const counts = await computeDivergences(own, { manifest, rules: r, routes, ...(opts.onProgress ? { onProgress: opts.onProgress } : {}) });
      const noise = noiseId && id === replayId ? await measureNoise(own, { noiseReplay: replayFiles(opts.store, noiseId).nodeRuns, noiseReplayId: noiseId, rules: r, exclude: opts.noise!.exclude }) : null;
      await writeDivergencesParquet(own.conn, replayFiles(opts.store, id).divergences, { noiseTable: noise?.excluded ? NOISE_TABLE : null });
      await rm(tmp, { recursive: true, force: true });
      return { counts, noise, manifest };
    } finally {
      if (!reader) own.close();
    }
  };

  // A baseline without divergences gets them first, under the same rules (fresh counters: its matches must not mark rules used).
  if (baselineId && !(await exists(replayFiles(opts.store, baselineId).divergences))) {
    await divergencesOf(baselineId, opts.rulesFile ? await loadRules(opts.rulesFile, now) : NO_RULES());
  }

  const reader = await openAnalysisReader(opts.store, replayId);
  try {
    const { counts, noise, manifest } = await divergencesOf(replayId, rules, reader);
    // The view was made before the file existed (or held the previous analysis): point it at the new one.
    await reader.conn.run(`CREATE OR REPLACE VIEW divergences AS SELECT * FROM read_parquet(${sqlString(replayFiles(opts.store, replayId).divergences)})`);
    const stale = staleRules(rules);
    const result: AnalysisResult = {
      format: 'hookshadow-analysis',
      version: DIVERGENCE_FORMAT_VERSION,
      replay_id: replayId,
      store: opts.store,
      generated_at: now.toISOString(),
      rules_file: rules.file,
      totals: await totals(reader, manifest, counts),
      counts_by_class: await countsByClass(reader),
      by_flow: await byFlow(reader),
      worst: await worst(reader),
      ...(await divergentDeliveries(reader, opts.limit ?? 1000)),
      unattributed: await selectDivergences(reader, `class = 'unattributed'`),
      rules: {
        expect: rules.expect.map((r) => ({ id: r.id, reason: r.reason, owner: r.owner, expires: r.expires, suppressed: r.suppressed, expired: r.expired })),
        ...stale,
      },
      noise,
      baseline: baselineId ? await compareBaseline(reader, replayFiles(opts.store, baselineId).divergences, baselineId) : null,
      daily: await reader.query<DailySummaryRow>(
        `SELECT strftime(day, '%Y-%m-%d') AS day, deliveries::DOUBLE AS deliveries, deliveries_with_flow::DOUBLE AS deliveries_with_flow,
                flow_runs::DOUBLE AS flow_runs, divergent_runs::DOUBLE AS divergent_runs, divergence_rate FROM daily_summary ORDER BY day`,
      ),
    };
    await writeFileAtomic(replayFiles(opts.store, replayId).analysis, JSON.stringify(result, null, 2) + '\n');
    return result;
  } finally {
    reader.close();
  }
}

const exists = (file: string) =>
  access(file).then(
    () => true,
    () => false,
  );

const UNEXPECTED = `class <> 'match' AND expected_by IS NULL`;

async function totals(reader: AnalysisReader, manifest: Parameters<typeof filterOfManifest>[0], counts: { legacy_effects: number; intents: number }) {
  const w = deliveryWhere(filterOfManifest(manifest));
  const [d] = await reader.query<{ n: number }>(`SELECT count(*)::DOUBLE AS n FROM deliveries ${w.sql}`, w.params);
  const [r] = await reader.query<{ runs: number; with_flow: number }>(`SELECT count(*)::DOUBLE AS runs, count(DISTINCT delivery_id)::DOUBLE AS with_flow FROM flow_runs`);
  const [v] = await reader.query<{ runs: number; deliveries: number; matches: number; unexpected: number; expected: number }>(
    `SELECT count(DISTINCT run_id) FILTER (WHERE ${UNEXPECTED})::DOUBLE AS runs,
            count(DISTINCT delivery_id) FILTER (WHERE ${UNEXPECTED})::DOUBLE AS deliveries,
            count(*) FILTER (WHERE class = 'match')::DOUBLE AS matches,
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
    matches: v!.matches,
    unexpected: v!.unexpected,
    expected: v!.expected,
  };
}

async function countsByClass(reader: AnalysisReader): Promise<AnalysisResult['counts_by_class']> {
  const out = Object.fromEntries(DIVERGENCE_CLASSES.map((c) => [c, { unexpected: 0, expected: 0 }])) as AnalysisResult['counts_by_class'];
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

async function selectDivergences(reader: AnalysisReader, where: string, params: unknown[] = [], from = 'divergences'): Promise<Divergence[]> {
  const rows = await reader.query(`SELECT ${DIVERGENCE_SELECT} FROM ${from} WHERE ${where} ORDER BY received_at, delivery_id, flow NULLS FIRST, node_id, class, path`, params);
  return rows.map(toDivergence);
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

/** Divergences are the same when they concern the same delivery, class, flow, node, kind, target and path with the same values. */
const SAME = `a.delivery_id IS NOT DISTINCT FROM b.delivery_id AND a.class = b.class AND a.flow IS NOT DISTINCT FROM b.flow
  AND a.node_id IS NOT DISTINCT FROM b.node_id AND a.iteration IS NOT DISTINCT FROM b.iteration AND a.kind IS NOT DISTINCT FROM b.kind
  AND a.target IS NOT DISTINCT FROM b.target AND a.path IS NOT DISTINCT FROM b.path
  AND a.legacy_value::VARCHAR IS NOT DISTINCT FROM b.legacy_value::VARCHAR AND a.flow_value::VARCHAR IS NOT DISTINCT FROM b.flow_value::VARCHAR`;

async function compareBaseline(reader: AnalysisReader, baselineFile: string, baselineId: string): Promise<BaselineReport> {
  const base = `(SELECT * FROM read_parquet(${sqlString(baselineFile)}) WHERE ${UNEXPECTED})`;
  const cur = `(SELECT * FROM divergences WHERE ${UNEXPECTED})`;
  const only = (left: string, right: string) => `(SELECT a.* FROM ${left} a WHERE NOT EXISTS (SELECT 1 FROM ${right} b WHERE ${SAME}))`;
  return {
    replay_id: baselineId,
    introduced: await selectDivergences(reader, 'true', [], only(cur, base)),
    resolved: await selectDivergences(reader, 'true', [], only(base, cur)),
  };
}

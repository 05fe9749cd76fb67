import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DIVERGENCE_COLUMNS } from '../core/divergence-schema.js';
import { FLOW_RUN_COLUMNS, NODE_RUN_COLUMNS, type ReplayColumn } from '../core/replay-schema.js';
import { TABLES } from '../core/capture-schema.js';
import { sqlIdent, sqlString } from '../core/sql.js';
import { pathExists, storePaths } from '../core/store/layout.js';
import { openStoreReader, parquetMetadataValue, viewSql, type StoreReader } from '../core/store/reader.js';
import { listReplays, readReplayManifest, resolveReplayId } from '../replayer/replays.js';
import { SHARD_HASH_SQL } from '../replayer/source.js';
import { parseIsoUs } from '../core/clock.js';
import type { ReplayManifest } from '../core/replay-schema.js';

/**
 * The analysis views: the capture store's tables, one replay's outputs, and the
 * summaries built on them. `hookshadow sql`, notebooks, `analyze` and `serve` all
 * query these, and `hookshadow sql --print-views` prints the same statements for any
 * DuckDB client. specs/divergence.md § Views documents each one.
 */
export const VIEW_NAMES = [
  'deliveries',
  'effects',
  'exchanges',
  'replay_deliveries',
  'flow_runs',
  'node_runs',
  'intents',
  'divergences',
  'daily_summary',
  'daily_flow_summary',
  'daily_event_summary',
] as const;

export interface ViewStatement {
  name: string;
  sql: string;
}

export const replayFiles = (store: string, id: string) => ({
  flowRuns: join(storePaths.replay(store, id), 'flow_runs.parquet'),
  nodeRuns: join(storePaths.replay(store, id), 'node_runs.parquet'),
  divergences: join(storePaths.replay(store, id), 'divergences.parquet'),
  analysis: join(storePaths.replay(store, id), 'analysis.json'),
});

function emptyView(name: string, cols: ReplayColumn[]): string {
  return `CREATE OR REPLACE VIEW ${sqlIdent(name)} AS SELECT ${cols.map((c) => `NULL::${c.type} AS ${sqlIdent(c.name)}`).join(', ')} WHERE false`;
}

function fileView(name: string, file: string): string {
  return `CREATE OR REPLACE VIEW ${sqlIdent(name)} AS SELECT * FROM read_parquet(${sqlString(file)})`;
}

/** `intents`: the planned or performed mutations of `node_runs`, one row each, the effect's fields as columns. */
export const INTENTS_VIEW = `CREATE OR REPLACE VIEW intents AS
SELECT run_id, delivery_id, flow, node_id, seq, iteration, op, status,
       intent->>'kind' AS kind, intent->>'target' AS target, intent->'args' AS args, intent->'request' AS request
FROM node_runs WHERE intent IS NOT NULL`;

/** A divergence no rule expected (the predicate over `divergences` rows). */
export const UNEXPECTED = `class <> 'match' AND expected_by IS NULL`;

// A run is divergent when any row about it is a difference no rule expected.
const DIVERGENT_RUNS = `SELECT DISTINCT run_id FROM divergences WHERE ${UNEXPECTED} AND run_id IS NOT NULL`;

const DERIVED: ViewStatement[] = [
  { name: 'intents', sql: INTENTS_VIEW },
  {
    name: 'daily_summary',
    sql: `CREATE OR REPLACE VIEW daily_summary AS
WITH d AS (SELECT received_at::DATE AS day, count(*) AS deliveries FROM replay_deliveries GROUP BY 1),
     bad AS (${DIVERGENT_RUNS}),
     r AS (SELECT fr.received_at::DATE AS day, count(DISTINCT (fr.delivery_id, fr.received_at)) AS deliveries_with_flow, count(*) AS flow_runs,
                  count(bad.run_id) AS divergent_runs
           FROM flow_runs fr LEFT JOIN bad USING (run_id) GROUP BY 1)
SELECT coalesce(d.day, r.day) AS day, coalesce(d.deliveries, 0) AS deliveries, coalesce(r.deliveries_with_flow, 0) AS deliveries_with_flow,
       coalesce(r.flow_runs, 0) AS flow_runs, coalesce(r.divergent_runs, 0) AS divergent_runs,
       coalesce(r.divergent_runs / nullif(r.flow_runs, 0), 0)::DOUBLE AS divergence_rate
FROM d FULL JOIN r ON d.day = r.day ORDER BY day`,
  },
  {
    name: 'daily_flow_summary',
    sql: `CREATE OR REPLACE VIEW daily_flow_summary AS
WITH bad AS (${DIVERGENT_RUNS})
SELECT fr.received_at::DATE AS day, fr.flow, count(*) AS flow_runs, count(bad.run_id) AS divergent_runs,
       (count(bad.run_id) / count(*))::DOUBLE AS divergence_rate
FROM flow_runs fr LEFT JOIN bad USING (run_id) GROUP BY 1, 2 ORDER BY 1, 2`,
  },
  {
    name: 'daily_event_summary',
    sql: `CREATE OR REPLACE VIEW daily_event_summary AS
WITH d AS (SELECT received_at::DATE AS day, event, action, count(*) AS deliveries FROM replay_deliveries GROUP BY ALL),
     bad AS (${DIVERGENT_RUNS}),
     r AS (SELECT fr.received_at::DATE AS day, fr.event, fr.action, count(DISTINCT (fr.delivery_id, fr.received_at)) AS deliveries_with_flow,
                  count(*) AS flow_runs, count(bad.run_id) AS divergent_runs
           FROM flow_runs fr LEFT JOIN bad USING (run_id) GROUP BY ALL)
SELECT d.day, d.event, d.action, d.deliveries, coalesce(r.deliveries_with_flow, 0) AS deliveries_with_flow,
       coalesce(r.flow_runs, 0) AS flow_runs, coalesce(r.divergent_runs, 0) AS divergent_runs,
       coalesce(r.divergent_runs / nullif(r.flow_runs, 0), 0)::DOUBLE AS divergence_rate
FROM d LEFT JOIN r ON d.day = r.day AND d.event IS NOT DISTINCT FROM r.event AND d.action IS NOT DISTINCT FROM r.action
ORDER BY 1, 2, 3`,
  },
];

/**
 * The CREATE VIEW statements for a store and (optionally) one replay, in dependency
 * order. Tables with no files yet, or a replay without divergences, get empty views
 * with the right columns, so every query runs on every store.
 */
export async function analysisViews(store: string, replayId: string | null): Promise<ViewStatement[]> {
  const out: ViewStatement[] = [];
  for (const table of TABLES) {
    const files = await hasParquet(store, table);
    out.push({ name: table, sql: viewSql(store, table, files) });
  }
  const files = replayId ? replayFiles(store, replayId) : null;
  out.push({ name: 'flow_runs', sql: files ? fileView('flow_runs', files.flowRuns) : emptyView('flow_runs', FLOW_RUN_COLUMNS) });
  out.push({ name: 'node_runs', sql: files ? fileView('node_runs', files.nodeRuns) : emptyView('node_runs', NODE_RUN_COLUMNS) });
  out.push({
    name: 'divergences',
    sql: files && (await pathExists(files.divergences)) ? fileView('divergences', files.divergences) : emptyView('divergences', DIVERGENCE_COLUMNS),
  });
  out.push({ name: 'replay_deliveries', sql: `CREATE OR REPLACE VIEW replay_deliveries AS SELECT * FROM deliveries WHERE ${scopeSql(replayId ? await readReplayManifest(store, replayId) : null)}` });
  out.push(...DERIVED);
  return out;
}

/**
 * The replay's deliveries, as a WHERE clause over `deliveries` with the manifest's filters
 * inlined (a view cannot take parameters; the values are our own timestamps and integers).
 * Without a replay: every delivery that reached the legacy handler.
 */
function scopeSql(m: ReplayManifest | null): string {
  const clauses = ['rejected IS NULL'];
  const since = m?.filters.since ? parseIsoUs(m.filters.since) : null;
  const until = m?.filters.until ? parseIsoUs(m.filters.until) : null;
  if (since !== null) clauses.push(`received_at >= make_timestamp(${Math.trunc(since)}::BIGINT)`);
  if (until !== null) clauses.push(`received_at < make_timestamp(${Math.trunc(until)}::BIGINT)`);
  const shard = m?.filters.shard?.split('/').map((x) => Math.trunc(Number(x)));
  if (shard && shard.every(Number.isFinite)) clauses.push(`${SHARD_HASH_SQL} % ${shard[1]} = ${shard[0]! - 1}`);
  return clauses.join(' AND ');
}

async function hasParquet(store: string, table: (typeof TABLES)[number]): Promise<boolean> {
  const dir = storePaths.table(store, table);
  for (const partition of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (!partition.isDirectory()) continue;
    const files = await readdir(join(dir, partition.name)).catch(() => [] as string[]);
    if (files.some((f) => f.endsWith('.parquet'))) return true;
  }
  return false;
}

/** A replay's Parquet that cannot be read is named, with what to do, before any query fails on it. */
async function checkReplayFiles(reader: StoreReader, store: string, id: string): Promise<void> {
  const files = replayFiles(store, id);
  for (const file of [files.flowRuns, files.nodeRuns]) {
    await parquetMetadataValue(reader.conn, file, 'hookshadow_replay_format_version', `Replay ${id} is damaged: replay again with --id ${id} after removing ${storePaths.replay(store, id)}.`);
  }
  if (await pathExists(files.divergences)) {
    await parquetMetadataValue(reader.conn, files.divergences, 'hookshadow_divergence_format_version', `Run \`hookshadow analyze --replay ${id}\` again: it rewrites the file.`);
  }
}

export interface AnalysisReader extends StoreReader {
  /** The replay whose outputs the replay views show, or null (the store has none, or none was asked for). */
  readonly replayId: string | null;
}

/** The replay the views show: the one named (or `latest`), or by default the latest if there is any. */
export async function pickReplay(store: string, replay?: string): Promise<string | null> {
  return replay !== undefined ? resolveReplayId(store, replay) : ((await listReplays(store))[0]?.replay_id ?? null);
}

/**
 * Opens the store with every analysis view. `replay`: an id, `latest`, or undefined for
 * the latest replay when there is one (no error when the store has none).
 */
export async function openAnalysisReader(store: string, replay?: string): Promise<AnalysisReader> {
  const reader = await openStoreReader(store);
  try {
    const replayId = await pickReplay(store, replay);
    if (replayId) await checkReplayFiles(reader, store, replayId);
    for (const view of await analysisViews(store, replayId)) {
      if (TABLES.includes(view.name as never)) continue; // openStoreReader made these, after checking each file
      await reader.conn.run(view.sql);
    }
    return Object.assign(reader, { replayId });
  } catch (err) {
    reader.close();
    throw err;
  }
}

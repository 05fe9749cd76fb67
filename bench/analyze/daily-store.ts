/**
 * Analyze benchmark, part 2: a store of N deliveries (default 10,000,000) for the `daily_summary` view,
 * written directly by DuckDB SQL (generated rows, no recorder, no replay): generating and replaying
 * 10M realistic deliveries would take the better part of an hour, and the view reads only a few columns.
 *
 *   node dist/bench/analyze/daily-store.js [--count 10000000] [--days 30] [--data-dir DIR]
 *
 * What it writes, in `<data dir>/daily-<count>/store`, is shaped like a recorder's store:
 *   - `store.json` (ensureStore) and `deliveries/date=YYYY-MM-DD/*.parquet` with exactly the columns and types
 *     of DELIVERY_COLUMNS, the capture format's kv metadata (the reader checks it), zstd, 2,048-row groups,
 *     one file per ~25,000 deliveries and UTC day, as the recorder's 32 MiB WAL segments give with small
 *     bodies. Deliveries are spread evenly over `days` UTC days from 2026-09-01, in arrival order; small
 *     bodies (~100 bytes); one in 997 is rejected (bad signature).
 *   - `replays/bench-daily/`: `manifest.json` (a ReplayManifest), `flow_runs.parquet` (FLOW_RUN_COLUMNS:
 *     3 in 10 deliveries have a flow run, 1 in 10 a second one: 0.4 runs per delivery), an empty
 *     `node_runs.parquet` with NODE_RUN_COLUMNS (the view does not read it), and `divergences.parquet`
 *     (DIVERGENCE_COLUMNS: differences only, as analyze writes them, for a few percent of deliveries, some
 *     expected by a rule, plus a few unattributed effects), in delivery order.
 * A directory already holding this count and number of days (daily.json) is reused.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { CAPTURE_FORMAT_NAME, CAPTURE_FORMAT_VERSION, DELIVERY_COLUMNS } from '../../core/capture-schema.js';
import { DIVERGENCE_COLUMNS, DIVERGENCE_FORMAT_VERSION } from '../../core/divergence-schema.js';
import { FLOW_RUN_COLUMNS, NODE_RUN_COLUMNS, REPLAY_FORMAT_VERSION, type ReplayColumn, type ReplayManifest } from '../../core/replay-schema.js';
import { sqlIdent, sqlString } from '../../core/sql.js';
import { ensureStore, storePaths } from '../../core/store/layout.js';
import { VERSION } from '../../core/version.js';
import { parseCount } from '../replay/make-store.js';
import { flag } from '../shared/args.js';
import { defaultDataDir } from './data.js';

export const DAILY_REPLAY_ID = 'bench-daily';
const INSTANCE = 'bench-daily';
const MARKER = 'daily.json';
/** 2: divergences.parquet holds differences only, as analyze writes it since matches are counted instead. */
const MARKER_VERSION = 2;
/** Deliveries per Parquet file (per day): what a 32 MiB WAL segment holds with small bodies. */
const SEGMENT_DELIVERIES = 25_000;
/** 2026-09-01T00:00:00Z in µs. */
const BASE_US = Date.UTC(2026, 8, 1) * 1000;

export interface DailyInfo {
  version: number;
  count: number;
  days: number;
  store: string;
  rows: { deliveries: number; rejected: number; flowRuns: number; divergences: number };
  files: number;
  seconds: number;
  createdAt: string;
  reused?: boolean;
}

export const dailyStorePath = (dir: string, count: number) => join(dir, `daily-${count}`, 'store');

/** A UUID-shaped id from a text, as SQL (a macro on the generating connection; DuckDB computes the md5 once per row). */
const UUID_MACRO = `CREATE OR REPLACE TEMP MACRO bench_uuid(t) AS
  substr(md5(t), 1, 8) || '-' || substr(md5(t), 9, 4) || '-4' || substr(md5(t), 14, 3) || '-a' || substr(md5(t), 18, 3) || '-' || substr(md5(t), 21, 12)`;
const EVENTS = `['issues', 'issue_comment', 'pull_request', 'issues', 'push', 'check_run', 'workflow_run', 'issue_comment', 'release', 'pull_request']`;
const ACTIONS = `['assigned', 'created', 'opened', 'opened', NULL, 'completed', 'completed', 'edited', 'published', 'synchronize']`;
const REPOS = `['octo-org/widgets', 'octo-org/gadgets', 'acme/api', 'acme/web']`;

/** Columns of one delivery: `i`, its id, time, event, action, repository. */
const BASE = (count: number, days: number) => {
  const spacing = Math.floor((days * 86_400_000_000) / count);
  return `i, bench_uuid('delivery' || i::VARCHAR) AS delivery_id, ${BASE_US} + i * ${spacing} + (i * 7919) % ${spacing} AS r,
          ${EVENTS}[1 + i % 10] AS event, ${ACTIONS}[1 + i % 10] AS action, ${REPOS}[1 + (i // 7) % 4] AS repo, 1 + (i // 3) % 200 AS n`;
};

/** The SELECT list producing DELIVERY_COLUMNS (in order) plus the `date` partition, from BASE's columns. */
function deliveryColumns(): string {
  const expr: Record<string, string> = {
    schema_version: '1',
    delivery_id: 'delivery_id',
    delivery_id_origin: `'header'`,
    source: `CASE WHEN i % 3 = 0 THEN 'gitea' ELSE 'github' END`,
    event: 'event',
    action: 'action',
    received_at: 'make_timestamp(r)',
    headers: `'{"content-type":"application/json","user-agent":"GitHub-Hookshot/7d4f2a1","x-github-delivery":"' || delivery_id || '","x-github-event":"' || event || '"}'`,
    body: 'body',
    body_encoding: `'utf8'`,
    body_size: 'strlen(body)',
    body_sha256: 'sha256(body)',
    content_type: `'application/json'`,
    parse_error: 'NULL',
    repository: 'repo',
    issue_number: `CASE WHEN event IN ('issues', 'issue_comment', 'pull_request') THEN n END`,
    signature_valid: 'i % 997 <> 0',
    rejected: `CASE WHEN i % 997 = 0 THEN 'signature_invalid' END`,
    redacted: `CASE WHEN i % 3 = 0 THEN [] ELSE ['headers.x-hub-signature-256'] END`,
    mode: `'tee'`,
    legacy_status: `CASE WHEN i % 997 = 0 THEN NULL ELSE 200 END`,
    legacy_latency_us: `CASE WHEN i % 997 = 0 THEN NULL ELSE 1800 + i % 4000 END`,
    legacy_error: 'NULL',
    recorder_instance: sqlString(INSTANCE),
  };
  const cols = DELIVERY_COLUMNS.map((c) => {
    if (!(c.name in expr)) throw new Error(`daily-store: no generator for deliveries column ${c.name}`);
    return `(${expr[c.name]})::${c.type} AS ${sqlIdent(c.name)}`;
  });
  return [...cols, `strftime(make_timestamp(r), '%Y-%m-%d') AS date`].join(',\n       ');
}

const BODY = `'{"action":' || coalesce('"' || action || '"', 'null') || ',"number":' || n || ',"repository":{"full_name":"' || repo || '"},"sender":{"login":"' || ['alice', 'bob', 'carol', 'dave'][1 + i % 4] || '"}}'`;

function typed(cols: ReplayColumn[], expr: Record<string, string>): string {
  return cols
    .map((c) => {
      if (!(c.name in expr)) throw new Error(`daily-store: no generator for column ${c.name}`);
      return `(${expr[c.name]})::${c.type} AS ${sqlIdent(c.name)}`;
    })
    .join(',\n       ');
}

/** Flow runs, one row per (delivery, k): k 0 for 3 in 10 deliveries, k 1 for 1 in 10; in delivery order. */
const RUNS_SQL = (count: number, days: number) => `
  SELECT b.*, k, i * 2 + k AS run_i, bench_uuid('run' || (i * 2 + k)::VARCHAR) AS run_id,
         CASE WHEN k = 1 THEN 'activity-feed' WHEN event = 'issues' THEN 'assign-agent' WHEN event = 'issue_comment' THEN 'retry-agent' ELSE 'request-review' END AS flow
  FROM (SELECT ${BASE(count, days)} FROM range(${count}) t(i) WHERE i % 10 < 3 AND i % 997 <> 0) b,
       LATERAL unnest(CASE WHEN i % 10 = 0 THEN [0, 1] ELSE [0] END) u(k)
  ORDER BY i, k`;

function flowRunColumns(): string {
  return typed(FLOW_RUN_COLUMNS, {
    run_id: 'run_id',
    delivery_id: 'delivery_id',
    flow: 'flow',
    flow_version: `'sha256:' || left(md5(flow), 12)`,
    mode: `'dry-run'`,
    status: `CASE WHEN i % 500 = 2 THEN 'incomplete' ELSE 'ok' END`,
    error: 'NULL',
    started_at: 'make_timestamp(r)',
    duration_us: '40 + i % 300',
    source: `CASE WHEN i % 3 = 0 THEN 'gitea' ELSE 'github' END`,
    event: 'event',
    action: 'action',
    received_at: 'make_timestamp(r)',
    node_count: `CASE WHEN k = 1 THEN 1 ELSE 4 END`,
    intent_count: `CASE WHEN k = 1 THEN 1 ELSE 3 END`,
  });
}

/**
 * Divergence rows per run: `m` 0-2 are matches (analyze counts them and writes no row: they are
 * filtered out below); 3 a difference for a few percent of runs (class by i), 4 an order difference.
 */
function divergenceColumns(): string {
  return typed(DIVERGENCE_COLUMNS, {
    delivery_id: 'delivery_id',
    received_at: 'make_timestamp(r)',
    source: `CASE WHEN i % 3 = 0 THEN 'gitea' ELSE 'github' END`,
    event: 'event',
    action: 'action',
    class: 'class',
    flow: 'flow',
    node_id: `CASE WHEN k = 1 THEN 'record' ELSE ['enqueue', 'ack', 'mark', 'label'][1 + m % 4] END`,
    iteration: '0',
    run_id: 'run_id',
    kind: `CASE WHEN k = 1 THEN 'agent.enqueue' ELSE ['agent.enqueue', 'issue.comment', 'issue.labels.add', 'issue.labels.add'][1 + m % 4] END`,
    target: `CASE WHEN k = 1 OR m % 4 = 0 THEN 'queue:triage' ELSE repo || '#' || n END`,
    path: `CASE WHEN class = 'args_differ' THEN '$.ref' END`,
    legacy_value: `CASE WHEN class = 'args_differ' THEN '"' || repo || '@' || event || '"' WHEN class = 'missing_in_flow' THEN '{"queue":"legacy-metrics"}' WHEN class = 'match' THEN '{"labels":["agent-running"]}' END`,
    flow_value: `CASE WHEN class = 'args_differ' THEN '"https://github.com/' || repo || '"' WHEN class = 'extra_in_flow' THEN '{"labels":["agent-running"]}' WHEN class = 'match' THEN '{"labels":["agent-running"]}' END`,
    text_diff: 'NULL',
    effect_id: `CASE WHEN class <> 'extra_in_flow' THEN bench_uuid('effect' || (run_i * 8 + m)::VARCHAR) END`,
    route: `CASE WHEN class <> 'extra_in_flow' THEN 'POST /jobs' END`,
    expected_by: `CASE WHEN class <> 'match' AND i % 250 = 2 THEN 'expect:known-ref-drift' END`,
  });
}

const DIVERGENCES_SQL = (count: number, days: number) => `
  SELECT * FROM (
    SELECT runs.*, m,
      CASE WHEN m < 3 THEN 'match'
           WHEN m = 4 THEN 'order_differs'
           WHEN i % 100 = 0 THEN 'extra_in_flow'
           WHEN i % 200 = 1 THEN 'missing_in_flow'
           ELSE 'args_differ' END AS class
    FROM (${RUNS_SQL(count, days)}) runs,
         LATERAL unnest(
           CASE WHEN k = 1 THEN (CASE WHEN i % 100 = 0 THEN [3] ELSE [0] END)
                ELSE [0] || (CASE WHEN i % 10 = 1 THEN [1, 2] ELSE [] END)
                         || (CASE WHEN i % 50 = 2 OR i % 200 = 1 OR i % 250 = 2 THEN [3] ELSE [] END)
                         || (CASE WHEN i % 300 = 1 THEN [4] ELSE [] END) END) v(m)
  ) WHERE class <> 'match' ORDER BY i, k, m`;

async function copyTo(conn: DuckDBConnection, select: string, target: string, kv: string): Promise<void> {
  await conn.run(`COPY (${select}) TO ${sqlString(target)} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 2048, KV_METADATA {${kv}})`);
}

/** Reuses `<dir>/daily-<count>` when it holds this count and number of days; otherwise writes it. */
export async function ensureDailyStore(opts: { dir: string; count: number; days: number; log?: (line: string) => void }): Promise<DailyInfo> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const store = dailyStorePath(opts.dir, opts.count);
  const markerFile = join(store, '..', MARKER);
  const marker = await readFile(markerFile, 'utf8').then((t) => JSON.parse(t) as DailyInfo, () => null);
  if (marker && marker.version === MARKER_VERSION && marker.count === opts.count && marker.days === opts.days) {
    log(`daily store: reusing ${store} (${marker.rows.deliveries.toLocaleString('en')} deliveries in ${marker.files} files, ${marker.rows.flowRuns.toLocaleString('en')} flow runs, ${marker.rows.divergences.toLocaleString('en')} divergence rows; generated ${marker.createdAt})`);
    return { ...marker, reused: true };
  }
  await rm(join(store, '..'), { recursive: true, force: true });
  const t0 = performance.now();
  await ensureStore(store);
  const db = await DuckDBInstance.create(':memory:', { temp_directory: join(store, '..', 'tmp') });
  const conn = await db.connect();
  await conn.run(UUID_MACRO);
  const replayDir = storePaths.replay(store, DAILY_REPLAY_ID);
  try {
    // 1. Deliveries, one COPY per "segment", partitioned by UTC day as the roll does.
    const captureKv = (table: string) => `hookshadow_format: ${sqlString(CAPTURE_FORMAT_NAME)}, hookshadow_format_version: '${CAPTURE_FORMAT_VERSION}', hookshadow_table: ${sqlString(table)}`;
    const target = storePaths.table(store, 'deliveries');
    const segments = Math.ceil(opts.count / SEGMENT_DELIVERIES);
    for (let s = 0; s < segments; s++) {
      const from = s * SEGMENT_DELIVERIES;
      const to = Math.min(opts.count, from + SEGMENT_DELIVERIES);
      await conn.run(
        `COPY (SELECT ${deliveryColumns()} FROM (SELECT *, ${BODY} AS body FROM (SELECT ${BASE(opts.count, opts.days)} FROM range(${from}, ${to}) t(i))))
         TO ${sqlString(target)} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 2048, PARTITION_BY (date), OVERWRITE_OR_IGNORE,
           FILENAME_PATTERN ${sqlString(`${INSTANCE}_${String(s).padStart(6, '0')}_{i}`)}, KV_METADATA {${captureKv('deliveries')}})`,
      );
      if ((s + 1) % 50 === 0 || s + 1 === segments) log(`daily store: ${to.toLocaleString('en')} / ${opts.count.toLocaleString('en')} deliveries (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    }

    // 2. The replay's files.
    await mkdir(replayDir, { recursive: true });
    const replayKv = `hookshadow_replay_format_version: '${REPLAY_FORMAT_VERSION}'`;
    await copyTo(conn, `SELECT ${flowRunColumns()} FROM (${RUNS_SQL(opts.count, opts.days)})`, join(replayDir, 'flow_runs.parquet'), replayKv);
    await copyTo(conn, `SELECT ${NODE_RUN_COLUMNS.map((c) => `NULL::${c.type} AS ${sqlIdent(c.name)}`).join(', ')} WHERE false`, join(replayDir, 'node_runs.parquet'), replayKv);
    log(`daily store: flow_runs written (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    const unattributed = typed(DIVERGENCE_COLUMNS, {
      ...Object.fromEntries(DIVERGENCE_COLUMNS.map((c) => [c.name, 'NULL'])),
      received_at: `make_timestamp(${BASE_US} + u * 86400000000 + 3600000000)`,
      class: `'unattributed'`,
      kind: `'issue.comment'`,
      target: `'acme/api#1'`,
      legacy_value: `'{"body":"done by hand"}'`,
      effect_id: `'unattributed-' || u`,
      route: `'POST /repos/{owner}/{repo}/issues/{number}/comments'`,
    });
    await copyTo(
      conn,
      `SELECT ${divergenceColumns()} FROM (${DIVERGENCES_SQL(opts.count, opts.days)}) UNION ALL SELECT ${unattributed} FROM range(${opts.days}) t(u)`,
      join(replayDir, 'divergences.parquet'),
      `hookshadow_divergence_format_version: '${DIVERGENCE_FORMAT_VERSION}'`,
    );
    log(`daily store: divergences written (${((performance.now() - t0) / 1000).toFixed(0)} s)`);

    // 3. Counts, and the manifest that makes the directory a replay.
    const count = async (sql: string) => Number((await (await conn.runAndReadAll(`SELECT (${sql})::VARCHAR AS n`)).getRowObjectsJson())[0]!.n);
    const glob = sqlString(storePaths.glob(store, 'deliveries'));
    const rows = {
      deliveries: await count(`SELECT count(*) FROM read_parquet(${glob})`),
      rejected: await count(`SELECT count(*) FROM read_parquet(${glob}) WHERE rejected IS NOT NULL`),
      flowRuns: await count(`SELECT count(*) FROM read_parquet(${sqlString(join(replayDir, 'flow_runs.parquet'))})`),
      divergences: await count(`SELECT count(*) FROM read_parquet(${sqlString(join(replayDir, 'divergences.parquet'))})`),
    };
    const files = await count(`SELECT count(*) FROM glob(${glob})`);
    if (rows.deliveries !== opts.count) throw new Error(`daily store: wrote ${rows.deliveries} deliveries, expected ${opts.count}`);
    const byStatus = (await (await conn.runAndReadAll(`SELECT status, count(*)::DOUBLE AS n FROM read_parquet(${sqlString(join(replayDir, 'flow_runs.parquet'))}) GROUP BY 1`)).getRowObjectsJson()) as { status: string; n: number }[];
    const now = new Date().toISOString();
    const manifest: ReplayManifest = {
      format: 'hookshadow-replay',
      version: REPLAY_FORMAT_VERSION,
      replay_id: DAILY_REPLAY_ID,
      hookshadow_version: VERSION,
      flows_digest: 'bench-daily-synthetic',
      flows: ['assign-agent', 'retry-agent', 'request-review', 'activity-feed'].map((name) => ({ name, version: 'synthetic', file: `${name}.yaml` })),
      mode: 'dry-run',
      flow_modes: {},
      live_reads: false,
      seed: 0,
      clock_skew_us: 0,
      filters: { since: null, until: null, shard: null },
      counts: {
        deliveries: rows.deliveries - rows.rejected,
        runs: rows.flowRuns,
        node_runs: 0,
        intents: 0,
        errors: 0,
        runs_by_status: Object.fromEntries(byStatus.map((r) => [r.status, r.n])),
        redelivered: 0,
        redelivery_failures: 0,
      },
      started_at: now,
      finished_at: now,
      workers: 1,
    };
    await writeFile(join(replayDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    const info: DailyInfo = { version: MARKER_VERSION, count: opts.count, days: opts.days, store, rows, files, seconds: (performance.now() - t0) / 1000, createdAt: now };
    await writeFile(markerFile, JSON.stringify(info, null, 2) + '\n');
    log(`daily store: ${rows.deliveries.toLocaleString('en')} deliveries (${rows.rejected.toLocaleString('en')} rejected) in ${files} files, ${rows.flowRuns.toLocaleString('en')} flow runs, ${rows.divergences.toLocaleString('en')} divergence rows in ${info.seconds.toFixed(0)} s`);
    return { ...info, reused: false };
  } finally {
    conn.closeSync();
    db.closeSync();
    await rm(join(store, '..', 'tmp'), { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const arg = (name: string) => flag(argv, name);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(`Writes (or reuses) the daily-summary benchmark's store.
  --count N        deliveries (default 10000000)
  --days N         UTC days they spread over (default 30)
  --data-dir DIR   default $HOOKSHADOW_BENCH_ANALYZE_DIR or /tmp/hookshadow-bench-analyze`);
    return;
  }
  await ensureDailyStore({ dir: arg('data-dir') ?? defaultDataDir(), count: parseCount(arg('count'), 10_000_000), days: parseCount(arg('days'), 30) });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}

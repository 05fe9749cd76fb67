/**
 * One measured phase of the analyze benchmark, alone in its own process (bench/analyze/run.ts starts it
 * under /usr/bin/time, which gives its peak RSS):
 *
 *   node dist/bench/analyze/child.js '<json PhaseSpec>'
 *
 *   floor  a bare DuckDB scan (a fresh in-memory database, DuckDB's defaults) that reads once, in
 *          one query per file set, every column `hookshadow analyze` reads from the same Parquet
 *          files: the store's deliveries and effects and the replay's flow_runs and node_runs. Each
 *          column is aggregated (strlen of text, max of times, sum of numbers), so every value is
 *          decompressed and decoded; nothing is sorted, joined or returned.
 *   daily  `SELECT * FROM daily_summary` through openAnalysisReader (the views `hookshadow sql`,
 *          notebooks and `serve` use): the open, the first (cold) query, then `repeats` more.
 *
 * Prints one JSON line: {"event":"result", ...}.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { sqlIdent, sqlString } from '../../core/sql.js';
import { storePaths } from '../../core/store/layout.js';
import { openAnalysisReader } from '../../analyzer/views.js';

export type PhaseSpec =
  | { kind: 'floor'; store: string; replayDir: string }
  | { kind: 'daily'; store: string; replayId: string; repeats: number };

/** What `hookshadow analyze` reads, per file set (analyzer/divergences.ts, analyze.ts and the daily_summary view). */
export const FLOOR_READS: { name: string; from: (spec: { store: string; replayDir: string }) => string; columns: [string, 'text' | 'time' | 'number'][] }[] = [
  {
    name: 'deliveries',
    from: (s) => `read_parquet(${sqlString(storePaths.glob(s.store, 'deliveries'))}, hive_partitioning = true, union_by_name = true)`,
    columns: [
      ['delivery_id', 'text'],
      ['received_at', 'time'],
      ['source', 'text'],
      ['event', 'text'],
      ['action', 'text'],
      ['rejected', 'text'],
    ],
  },
  {
    name: 'effects',
    from: (s) => `read_parquet(${sqlString(storePaths.glob(s.store, 'effects'))}, hive_partitioning = true, union_by_name = true)`,
    columns: [
      ['effect_id', 'text'],
      ['delivery_id', 'text'],
      ['observed_at', 'time'],
      ['upstream', 'text'],
      ['method', 'text'],
      ['path', 'text'],
      ['request_body', 'text'],
      ['request_body_encoding', 'text'],
    ],
  },
  {
    name: 'flow_runs',
    from: (s) => `read_parquet(${sqlString(join(s.replayDir, 'flow_runs.parquet'))})`,
    columns: [
      ['run_id', 'text'],
      ['delivery_id', 'text'],
      ['flow', 'text'],
      ['status', 'text'],
      ['error', 'text'],
      ['received_at', 'time'],
    ],
  },
  {
    name: 'node_runs',
    from: (s) => `read_parquet(${sqlString(join(s.replayDir, 'node_runs.parquet'))})`,
    columns: [
      ['run_id', 'text'],
      ['delivery_id', 'text'],
      ['flow', 'text'],
      ['node_id', 'text'],
      ['seq', 'number'],
      ['iteration', 'number'],
      ['status', 'text'],
      ['intent', 'text'],
    ],
  },
];

export function floorSql(spec: { store: string; replayDir: string }): { name: string; sql: string }[] {
  return FLOOR_READS.map((t) => {
    const agg = t.columns.map(([c, kind]) => {
      const col = sqlIdent(c);
      const e = kind === 'text' ? `sum(strlen(${col}::VARCHAR))` : kind === 'time' ? `max(${col})` : `sum(${col})`;
      return `${e}::VARCHAR AS ${sqlIdent(`${c}`)}`;
    });
    return { name: t.name, sql: `SELECT count(*)::VARCHAR AS rows, ${agg.join(', ')} FROM ${t.from(spec)}` };
  });
}

async function floor(spec: Extract<PhaseSpec, { kind: 'floor' }>): Promise<Record<string, unknown>> {
  const t0 = performance.now();
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  const tables: Record<string, { seconds: number; rows: number }> = {};
  try {
    for (const q of floorSql(spec)) {
      const t = performance.now();
      const [row] = (await conn.runAndReadAll(q.sql)).getRowObjectsJson();
      tables[q.name] = { seconds: (performance.now() - t) / 1000, rows: Number(row!.rows) };
    }
  } finally {
    conn.closeSync();
    db.closeSync();
  }
  return { seconds: (performance.now() - t0) / 1000, tables };
}

async function daily(spec: Extract<PhaseSpec, { kind: 'daily' }>): Promise<Record<string, unknown>> {
  const t0 = performance.now();
  const reader = await openAnalysisReader(spec.store, spec.replayId);
  const openSeconds = (performance.now() - t0) / 1000;
  const runs: number[] = [];
  let days = 0;
  let deliveries = 0;
  let flowRuns = 0;
  let profile: Awaited<ReturnType<typeof profileQuery>> | null = null;
  try {
    for (let k = 0; k <= spec.repeats; k++) {
      const t = performance.now();
      const rows = await reader.query<{ deliveries: string; flow_runs: string }>('SELECT * FROM daily_summary');
      runs.push((performance.now() - t) / 1000);
      days = rows.length;
      deliveries = rows.reduce((n, r) => n + Number(r.deliveries), 0);
      flowRuns = rows.reduce((n, r) => n + Number(r.flow_runs), 0);
    }
    profile = await profileQuery(reader.conn, 'SELECT * FROM daily_summary');
  } finally {
    reader.close();
  }
  return { openSeconds, firstSeconds: runs[0], repeatSeconds: runs.slice(1), days, deliveries, flowRuns, profile };
}

interface ProfileNode {
  operator_name?: string;
  operator_timing?: number;
  operator_cardinality?: number;
  extra_info?: Record<string, unknown>;
  children?: ProfileNode[];
}

/** One more run under DuckDB's JSON profiler: its operators (CPU seconds summed over threads), in plan order. */
async function profileQuery(conn: DuckDBConnection, sql: string): Promise<{ latency: number; operators: { operator: string; depth: number; seconds: number; rows: number; detail: string }[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'hookshadow-bench-profile-'));
  const file = join(dir, 'profile.json');
  try {
    await conn.run(`SET enable_profiling = 'json'; SET profiling_output = ${sqlString(file)}`);
    await conn.runAndReadAll(sql);
    await conn.run(`SET enable_profiling = 'no_output'`);
    const p = JSON.parse(await readFile(file, 'utf8')) as ProfileNode & { latency: number };
    const operators: { operator: string; depth: number; seconds: number; rows: number; detail: string }[] = [];
    const walk = (n: ProfileNode, depth: number) => {
      const x = n.extra_info ?? {};
      const detail = [x['Function'], x['Projections'], x['Filters'], x['Aggregates'], x['Conditions'], x['Total Files Read'] ? `${String(x['Total Files Read'])} files` : null]
        .filter((v) => v !== undefined && v !== null && v !== '')
        .map((v) => (Array.isArray(v) ? v.join(', ') : String(v)))
        .join('; ');
      operators.push({ operator: n.operator_name ?? '?', depth, seconds: n.operator_timing ?? 0, rows: n.operator_cardinality ?? 0, detail: detail.slice(0, 160) });
      for (const c of n.children ?? []) walk(c, depth + 1);
    };
    for (const c of p.children ?? []) walk(c, 0);
    return { latency: p.latency, operators };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '{}') as PhaseSpec;
  const figures = spec.kind === 'floor' ? await floor(spec) : await daily(spec);
  const ru = process.resourceUsage();
  process.stdout.write(JSON.stringify({ event: 'result', kind: spec.kind, maxRssKiB: ru.maxRSS, figures }) + '\n');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

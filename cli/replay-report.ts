import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { sqlString } from '../core/sql.js';
import type { ReplaySummary } from '../replayer/replay.js';

/** Per flow: runs by status and intents by kind, read back from the replay's Parquet. */
export interface Breakdown {
  flow: string;
  runs: number;
  ok: number;
  incomplete: number;
  failed: number;
  intents: number;
  kinds: string | null;
}

export async function replayBreakdown(dir: string): Promise<Breakdown[]> {
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  try {
    const reader = await conn.runAndReadAll(
      `WITH f AS (SELECT flow, count(*)::INTEGER AS runs, count(*) FILTER (status = 'ok')::INTEGER AS ok,
                         count(*) FILTER (status = 'incomplete')::INTEGER AS incomplete, count(*) FILTER (status = 'failed')::INTEGER AS failed
                  FROM read_parquet(${sqlString(join(dir, 'flow_runs.parquet'))}) GROUP BY flow),
            k AS (SELECT flow, intent->>'kind' AS kind, count(*) AS n FROM read_parquet(${sqlString(join(dir, 'node_runs.parquet'))})
                  WHERE intent IS NOT NULL GROUP BY ALL),
            i AS (SELECT flow, sum(n)::INTEGER AS intents, string_agg(kind || ' ' || n, ', ' ORDER BY n DESC, kind) AS kinds FROM k GROUP BY flow)
       SELECT f.*, coalesce(i.intents, 0) AS intents, i.kinds FROM f LEFT JOIN i USING (flow) ORDER BY runs DESC, flow`,
    );
    return reader.getRowObjectsJson() as unknown as Breakdown[];
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

export function printReplayText(s: ReplaySummary, flows: Breakdown[]): void {
  const out = [
    `replay ${s.replay_id} (${[s.manifest.mode, ...Object.entries(s.manifest.flow_modes).map(([f, m]) => `${f} ${m}`)].join('; ')}, seed ${s.manifest.seed}, ${s.manifest.workers} worker${s.manifest.workers === 1 ? '' : 's'}) in ${s.seconds.toFixed(1)} s`,
    `  deliveries ${s.deliveries}   flow runs ${s.runs}   node runs ${s.node_runs}   intents ${s.intents}   failed runs ${s.errors}`,
    `  runs by status: ${Object.entries(s.runs_by_status).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`,
    '',
    `  ${'flow'.padEnd(24)} ${'runs'.padStart(6)} ${'ok'.padStart(6)} ${'incompl'.padStart(7)} ${'failed'.padStart(6)} ${'intents'.padStart(7)}  kinds`,
    ...flows.map((f) => `  ${f.flow.padEnd(24)} ${String(f.runs).padStart(6)} ${String(f.ok).padStart(6)} ${String(f.incomplete).padStart(7)} ${String(f.failed).padStart(6)} ${String(f.intents).padStart(7)}  ${f.kinds ?? '-'}`),
    '',
    `  output ${s.dir}/{flow_runs,node_runs}.parquet, manifest.json`,
    `  e.g. SELECT flow, node_id, intent FROM read_parquet('${s.dir}/node_runs.parquet') WHERE intent IS NOT NULL LIMIT 10;`,
  ];
  process.stdout.write(out.join('\n') + '\n');
}


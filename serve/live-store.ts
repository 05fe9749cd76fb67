import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DuckDBInstance, DuckDBTimestampValue, LIST, VARCHAR, type DuckDBAppender, type DuckDBConnection } from '@duckdb/node-api';
import { formatUs } from '../core/clock.js';
import type { Divergence } from '../core/divergence-schema.js';
import type { Effect } from '../core/effects.js';
import { sqlString } from '../core/sql.js';
import { storePaths } from '../core/store/layout.js';
import type { Mode } from '../replayer/flows/model.js';

/**
 * What serve knows about each delivery once it has settled: the legacy handler's
 * effects, every flow run with its intents, and the divergences. The current segment
 * is a table in an in-memory DuckDB; rolled segments are `live_deliveries.parquet` in
 * their replay directory. `live` (a view over both) is what the API, the cutover gate
 * and the daily summary query. specs/modes.md § Live data.
 */

export interface LiveRun {
  flow: string;
  mode: Mode;
  status: string;
  error: string | null;
  intents: (Effect & { node_id: string })[];
}

export interface LiveDelivery {
  delivery_id: string;
  received_at_us: number;
  source: string;
  event: string | null;
  action: string | null;
  legacy_status: number | null;
  legacy: (Effect & { route: string | null })[];
  runs: LiveRun[];
  divergences: Divergence[];
  /** Effects a live flow performed that the legacy handler performed too: done twice. */
  duplicates: Effect[];
}

export const LIVE_COLUMNS = [
  ['delivery_id', 'VARCHAR'],
  ['received_at', 'TIMESTAMP'],
  ['source', 'VARCHAR'],
  ['event', 'VARCHAR'],
  ['action', 'VARCHAR'],
  ['legacy_status', 'INTEGER'],
  ['legacy', 'JSON'],
  ['runs', 'JSON'],
  ['divergences', 'JSON'],
  ['duplicates', 'JSON'],
  ['flows', 'VARCHAR[]'],
  ['dry_run_flows', 'VARCHAR[]'],
  ['live_flows', 'VARCHAR[]'],
  ['divergent_flows', 'VARCHAR[]'],
  ['unexpected', 'INTEGER'],
] as const;

/** A run is divergent when a divergence about it is one no rule expected. */
function divergentFlows(d: LiveDelivery): string[] {
  const out = new Set<string>();
  for (const x of d.divergences) if (x.class !== 'match' && x.expected_by === null && x.flow) out.add(x.flow);
  return [...out];
}

export function liveRow(d: LiveDelivery): Record<string, unknown> {
  const flowsIn = (mode: Mode) => d.runs.filter((r) => r.mode === mode).map((r) => r.flow);
  return {
    delivery_id: d.delivery_id,
    received_at: formatUs(d.received_at_us),
    source: d.source,
    event: d.event,
    action: d.action,
    legacy_status: d.legacy_status,
    legacy: JSON.stringify(d.legacy),
    runs: JSON.stringify(d.runs),
    divergences: JSON.stringify(d.divergences.map(({ legacy_value, flow_value, ...rest }) => ({ ...rest, legacy_value: legacy_value ?? null, flow_value: flow_value ?? null }))),
    duplicates: JSON.stringify(d.duplicates),
    flows: d.runs.map((r) => r.flow),
    dry_run_flows: flowsIn('dry-run'),
    live_flows: flowsIn('live'),
    divergent_flows: divergentFlows(d),
    unexpected: d.divergences.filter((x) => x.class !== 'match' && x.expected_by === null).length,
  };
}

export interface LiveStore {
  conn: DuckDBConnection;
  add(rows: LiveDelivery[]): Promise<void>;
  /** The current segment's rows, copied to `file` then removed from the table. */
  rollTo(file: string): Promise<number>;
  /** Re-points the `live` view after a segment is written. */
  refresh(): Promise<void>;
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  close(): void;
}

const VARCHARS = LIST(VARCHAR);

/**
 * Appends rows through an appender, which runs on the calling thread (the live worker,
 * whose priority is lowered): an INSERT would be parsed, planned and run on libuv's
 * pool, which the recorder's WAL writes share.
 */
function appendLive(a: DuckDBAppender, rows: { row: Record<string, unknown>; receivedAtUs: number }[]): void {
  for (const { row, receivedAtUs } of rows) {
    for (const [name, type] of LIVE_COLUMNS) {
      const v = row[name];
      if (v === null || v === undefined) a.appendNull();
      else if (type === 'TIMESTAMP') a.appendTimestamp(new DuckDBTimestampValue(BigInt(receivedAtUs)));
      else if (type === 'INTEGER') a.appendInteger(v as number);
      else if (type === 'VARCHAR[]') a.appendList(v as string[], VARCHARS);
      else a.appendVarchar(v as string);
    }
    a.endRow();
  }
}

export async function openLiveStore(store: string): Promise<LiveStore> {
  const db = await DuckDBInstance.create(':memory:', { threads: '1' });
  const conn = await db.connect();
  await conn.run(`CREATE TABLE live_current (${LIVE_COLUMNS.map(([n, t]) => `${n} ${t}`).join(', ')})`);
  const refresh = async () => {
    const files = await segmentFiles(store);
    const rolled = files.length > 0 ? ` UNION ALL BY NAME SELECT ${LIVE_COLUMNS.map(([n]) => n).join(', ')} FROM read_parquet([${files.map(sqlString).join(', ')}])` : '';
    await conn.run(`CREATE OR REPLACE VIEW live AS SELECT * FROM live_current${rolled}`);
  };
  await refresh();
  return {
    conn,
    async add(rows) {
      if (rows.length === 0) return;
      // Every row is built before the first is appended: one that cannot be built stops the batch before any lands.
      const prepared = rows.map((d) => ({ row: liveRow(d), receivedAtUs: d.received_at_us }));
      const appender = await conn.createAppender('live_current');
      appendLive(appender, prepared);
      appender.closeSync();
    },
    async rollTo(file) {
      const [{ n }] = (await conn.runAndReadAll('SELECT count(*)::INTEGER AS n FROM live_current')).getRowObjectsJson() as [{ n: number }];
      await conn.run(`COPY (SELECT * FROM live_current ORDER BY received_at, delivery_id) TO ${sqlString(file)} (FORMAT parquet, COMPRESSION zstd)`);
      await conn.run('DELETE FROM live_current');
      return n;
    },
    refresh,
    async query<T>(sql: string, params: unknown[] = []) {
      return (await conn.runAndReadAll(sql, params as never)).getRowObjectsJson() as T[];
    },
    close() {
      conn.closeSync();
      db.closeSync();
    },
  };
}

export const LIVE_FILE = 'live_deliveries.parquet';
export const LIVE_REPLAY_PREFIX = 'live-';

/** Every rolled segment's live file, oldest first. */
async function segmentFiles(store: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(storePaths.replays(store));
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const name of names.filter((n) => n.startsWith(LIVE_REPLAY_PREFIX)).sort()) {
    const file = join(storePaths.replay(store, name), LIVE_FILE);
    try {
      await readdir(storePaths.replay(store, name)).then((files) => files.includes(LIVE_FILE) && out.push(file));
    } catch {
      // A segment being written: its directory appears only once complete.
    }
  }
  return out;
}

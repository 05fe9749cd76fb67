import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { TABLE_SPECS, type Table } from '../../core/capture-schema.js';
import { formatUs } from '../../core/clock.js';
import { HsError } from '../../core/errors.js';
import { FLOW_RUN_COLUMNS, NODE_RUN_COLUMNS, type ReplayColumn } from '../../core/replay-schema.js';
import { sqlIdent, sqlString } from '../../core/sql.js';
import type { FlowRun } from '../../replayer/engine/run.js';
import { flowRunRow, nodeRunRow } from '../../replayer/output/ndjson.js';
import { parseStored, type StoredDelivery } from '../../replayer/source.js';
import { INTENTS_VIEW } from '../views.js';

/**
 * SQL invariants: named queries over one case's replay, in the same views a replay
 * has (`deliveries`, `effects`, `exchanges`, `flow_runs`, `node_runs`, `intents`),
 * that must return no rows. Each case is loaded into an in-memory DuckDB, so an
 * invariant written here runs unchanged with `hookshadow sql` over a real replay.
 */

export interface Invariant {
  name: string;
  meaning: string;
  sql: string;
  /** Where it was declared (`checks.yaml:12:5`), for messages. */
  at: string;
}

export interface InvariantDb {
  /** The rows `inv` returns for this case (none: it holds). */
  violations(inv: Invariant, deliveries: readonly StoredDelivery[], runs: FlowRun[][]): Promise<Record<string, unknown>[]>;
  /** Fails with HS_ERR_CHECKS_INVALID, naming the invariant, when its SQL does not run against the views. */
  validate(inv: Invariant): Promise<void>;
  close(): void;
}

const structure = (cols: readonly { name: string; type: string }[]) =>
  JSON.stringify([Object.fromEntries(cols.map((c) => [c.name, c.type === 'JSON' ? 'VARCHAR' : c.type]))]);

async function createTable(conn: DuckDBConnection, name: string, cols: readonly { name: string; type: string }[]): Promise<void> {
  await conn.run(`CREATE TABLE ${sqlIdent(name)} (${cols.map((c) => `${sqlIdent(c.name)} ${c.type}`).join(', ')})`);
}

export async function openInvariantDb(): Promise<InvariantDb> {
  const db = await DuckDBInstance.create(':memory:', { threads: '1' });
  const conn = await db.connect();
  const tables: { name: string; cols: readonly ReplayColumn[] }[] = [
    ...(['deliveries', 'effects', 'exchanges'] as Table[]).map((t) => ({ name: t, cols: TABLE_SPECS[t].columns })),
    { name: 'flow_runs', cols: FLOW_RUN_COLUMNS },
    { name: 'node_runs', cols: NODE_RUN_COLUMNS },
  ];
  for (const t of tables) await createTable(conn, t.name, t.cols);
  await conn.run(INTENTS_VIEW);
  const insert = async (name: string, rows: Record<string, unknown>[]) => {
    if (rows.length === 0) return;
    const cols = tables.find((t) => t.name === name)!.cols;
    await conn.run(`INSERT INTO ${sqlIdent(name)} SELECT unnest(from_json($1::JSON, ${sqlString(structure(cols))}), recursive := true)`, [JSON.stringify(rows)] as never);
  };
  const load = async (deliveries: readonly StoredDelivery[], runs: FlowRun[][]) => {
    for (const t of tables) await conn.run(`DELETE FROM ${sqlIdent(t.name)}`);
    await insert('deliveries', deliveries.map((d) => ({ ...d, received_at: formatUs(d.received_at_us), rejected: null })));
    const calls = (kind: 'reads' | 'writes') =>
      deliveries.flatMap((d) => d[kind].map((c) => ({ delivery_id: d.delivery_id, correlation: 'exact', observed_at: formatUs(d.received_at_us), ...c })));
    await insert('effects', calls('writes'));
    await insert('exchanges', calls('reads'));
    const zero = () => 0;
    await insert('flow_runs', deliveries.flatMap((d, i) => runs[i]!.map((r) => flowRunRow(parseStored(d).delivery, r, zero))));
    await insert('node_runs', runs.flat().flatMap((r) => r.nodes.map((n) => nodeRunRow(r, n, zero))));
  };
  return {
    async violations(inv, deliveries, runs) {
      await load(deliveries, runs);
      const reader = await conn.runAndReadAll(inv.sql);
      return reader.getRowObjectsJson() as Record<string, unknown>[];
    },
    async validate(inv) {
      try {
        await conn.run(`DESCRIBE ${inv.sql}`);
      } catch (err) {
        throw new HsError('HS_ERR_CHECKS_INVALID', `${inv.at}: invariant "${inv.name}" does not run against the replay views: ${(err as Error).message.split('\n')[0]}`);
      }
    },
    close() {
      conn.closeSync();
      db.closeSync();
    },
  };
}

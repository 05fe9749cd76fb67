import type { DuckDBConnection } from '@duckdb/node-api';
import { FLOW_RUN_COLUMNS, NODE_RUN_COLUMNS, REDELIVERY_COLUMNS, REPLAY_FORMAT_VERSION, type ReplayColumn } from '../../core/replay-schema.js';
import { sqlIdent, sqlString } from '../../core/sql.js';

/** JSON columns travel as strings in the NDJSON and are cast back; everything else reads as declared. */
function columnsStruct(cols: ReplayColumn[]): string {
  return `{${cols.map((c) => `${sqlString(c.name)}: ${sqlString(c.type === 'JSON' ? 'VARCHAR' : c.type)}`).join(', ')}}`;
}

function selectList(cols: ReplayColumn[]): string {
  return cols.map((c) => (c.type === 'JSON' ? `${sqlIdent(c.name)}::JSON AS ${sqlIdent(c.name)}` : sqlIdent(c.name))).join(', ');
}

/**
 * Turns the partitions' NDJSON into the replay's two Parquet files, in a stable row
 * order (so byte-identical input gives byte-identical files).
 */
export async function writeReplayParquet(
  conn: DuckDBConnection,
  parts: { flowRuns: string[]; nodeRuns: string[]; redeliveries: string[] },
  out: { flowRuns: string; nodeRuns: string; redeliveries: string | null },
): Promise<void> {
  const copy = async (files: string[], cols: ReplayColumn[], order: string, target: string) => {
    const source = `read_json([${files.map(sqlString).join(', ')}], format = 'newline_delimited', columns = ${columnsStruct(cols)})`;
    await conn.run(
      `COPY (SELECT ${selectList(cols)} FROM ${source} ORDER BY ${order}) TO ${sqlString(target)}
       (FORMAT parquet, COMPRESSION zstd, KV_METADATA {hookshadow_replay_format_version: '${REPLAY_FORMAT_VERSION}'})`,
    );
  };
  await copy(parts.flowRuns, FLOW_RUN_COLUMNS, 'received_at, delivery_id, flow', out.flowRuns);
  await copy(parts.nodeRuns, NODE_RUN_COLUMNS, 'delivery_id, run_id, seq, iteration NULLS FIRST', out.nodeRuns);
  if (out.redeliveries) await copy(parts.redeliveries, REDELIVERY_COLUMNS, 'delivery_id', out.redeliveries);
}

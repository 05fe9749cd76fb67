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
 * Turns the merged NDJSON (already in delivery order, see merge.ts) into the replay's
 * Parquet files. No sort: DuckDB streams the rows through in their file order.
 */
export async function writeReplayParquet(
  conn: DuckDBConnection,
  parts: { flowRuns: string[]; nodeRuns: string[]; redeliveries: string[] },
  out: { flowRuns: string; nodeRuns: string; redeliveries: string | null },
): Promise<void> {
  const copy = async (files: string[], cols: ReplayColumn[], order: string | null, target: string) => {
    const source = `read_json([${files.map(sqlString).join(', ')}], format = 'newline_delimited', columns = ${columnsStruct(cols)})`;
    await conn.run(
      `COPY (SELECT ${selectList(cols)} FROM ${source}${order ? ` ORDER BY ${order}` : ''}) TO ${sqlString(target)}
       (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 2048, KV_METADATA {hookshadow_replay_format_version: '${REPLAY_FORMAT_VERSION}'})`,
    );
  };
  await copy(parts.flowRuns, FLOW_RUN_COLUMNS, null, out.flowRuns);
  await copy(parts.nodeRuns, NODE_RUN_COLUMNS, null, out.nodeRuns);
  // One small row per delivery: sorting it costs little.
  if (out.redeliveries) await copy(parts.redeliveries, REDELIVERY_COLUMNS, 'delivery_id', out.redeliveries);
}

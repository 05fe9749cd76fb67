import type { DuckDBConnection } from '@duckdb/node-api';
import { HsError } from '../errors.js';

let streams = 0;

/**
 * Streams a query's rows, in its order, and guarantees they are all of them.
 *
 * DuckDB's Node client ends a streaming result that fails midway (out of memory, a full
 * temp disk) exactly as if it were complete: `fetch_chunk` returns null either way and
 * the error is not surfaced. A replay or an analysis would then silently lose the rest.
 * So the query runs to completion first, into a temporary table (DuckDB spills it to
 * disk as needed), where any error is thrown; then the table is streamed, in insertion
 * order, and the number of rows read is checked against the table's count.
 */
export async function* streamVerified(conn: DuckDBConnection, sql: string, params: unknown[] = []): AsyncGenerator<unknown[][]> {
  const table = `hookshadow_stream_${process.pid}_${++streams}`;
  await conn.run(`CREATE TEMP TABLE ${table} AS ${sql}`, params as never);
  try {
    const expected = Number((await conn.runAndReadAll(`SELECT count(*)::DOUBLE FROM ${table}`)).getRowsJS()[0]![0]);
    const result = await conn.stream(`SELECT * FROM ${table}`);
    let seen = 0;
    for await (const rows of result.yieldRowsJs()) {
      seen += rows.length;
      yield rows as unknown[][];
    }
    if (seen !== expected) {
      throw new HsError(
        'HS_ERR_QUERY_INCOMPLETE',
        `DuckDB ended a result after ${seen} of ${expected} rows (most likely out of memory or temporary disk space); nothing was written. Free disk space or memory and run again.`,
        { details: { seen, expected } },
      );
    }
  } finally {
    await conn.run(`DROP TABLE IF EXISTS ${table}`);
  }
}

/**
 * Streams a query whose last row is a sentinel: a row whose first column is NULL, which
 * the query's ORDER BY puts after every other (and no other row has a NULL first
 * column). The rows come straight from the query, without the temporary table
 * `streamVerified` writes and reads back (a fifth of a large sorted query's time): a
 * result that ends before its sentinel was cut short, and is reported, never taken as
 * complete. The sentinel itself is not yielded.
 */
export async function* streamToSentinel(conn: DuckDBConnection, sql: string, params: unknown[] = []): AsyncGenerator<unknown[][]> {
  const result = await conn.stream(sql, params as never);
  let seen = 0;
  for await (const chunk of result.yieldRowsJs()) {
    const rows = chunk as unknown[][];
    if (rows.length > 0 && rows[rows.length - 1]![0] === null) {
      if (rows.length > 1) yield rows.slice(0, -1);
      return;
    }
    seen += rows.length;
    yield rows;
  }
  throw new HsError(
    'HS_ERR_QUERY_INCOMPLETE',
    `DuckDB ended a result after ${seen} rows, before its last (most likely out of memory or temporary disk space); nothing was written. Free disk space or memory and run again.`,
    { details: { seen } },
  );
}

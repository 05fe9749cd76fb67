import { ResultReturnType, type DuckDBConnection, type DuckDBPreparedStatement } from '@duckdb/node-api';
import { HsError } from '../../core/errors.js';
import type { CellValue, QueryResult } from './types.js';
import { toCell } from './values.js';

/** Rows a chart may draw: enough for a year of days per flow, few enough that drawing stays quick. */
export const MAX_CHART_ROWS = 5_000;

export interface SqlBlock {
  file: string;
  line: number;
  sql: string;
  maxRows: number;
  /** A chart draws this block: keep up to MAX_CHART_ROWS rows for it, not only the rows shown. */
  charted: boolean;
}

export interface SqlOutcome {
  /** Null when the block's last statement returns no result set (CREATE, SET …). */
  result: QueryResult | null;
  /** The first MAX_CHART_ROWS rows as objects, when a chart draws this block; else empty. */
  chartRows: Record<string, CellValue>[];
}

/**
 * Runs one sql block: every statement in it, in order, on the notebook's one
 * connection (so a TEMP table or macro made here is there for later blocks). The
 * last statement's result is the block's. Parameters are bound by name, never
 * spliced into the SQL; a name the notebook does not declare is refused.
 */
export async function runSqlBlock(conn: DuckDBConnection, block: SqlBlock, params: ReadonlyMap<string, string | null>): Promise<SqlOutcome> {
  const where = `${block.file}:${block.line}`;
  const extracted = await duckdb(where, () => conn.extractStatements(block.sql));
  let outcome: SqlOutcome = { result: null, chartRows: [] };
  for (let i = 0; i < extracted.count; i++) {
    const prepared = await duckdb(where, () => extracted.prepare(i));
    try {
      bindParams(prepared, params, where);
      if (i < extracted.count - 1) await duckdb(where, () => prepared.run());
      else outcome = await duckdb(where, () => readResult(prepared, block.maxRows, block.charted));
    } finally {
      prepared.destroySync();
    }
  }
  return outcome;
}

function bindParams(prepared: DuckDBPreparedStatement, params: ReadonlyMap<string, string | null>, where: string): void {
  for (let i = 1; i <= prepared.parameterCount; i++) {
    const name = prepared.parameterName(i);
    if (/^\d+$/.test(name)) {
      throw new HsError('HS_ERR_NOTEBOOK_INVALID', `${where}: positional parameters ($1, ?) are not supported: name them ($delivery) and declare them in the params block.`);
    }
    if (!params.has(name)) {
      const known = [...params.keys()];
      throw new HsError('HS_ERR_NOTEBOOK_INVALID', `${where}: the query uses $${name}, which the params block does not declare${known.length ? ` (it declares ${known.map((k) => `$${k}`).join(', ')})` : ' (the notebook has no params block)'}.`);
    }
    const value = params.get(name)!;
    if (value === null) prepared.bindNull(i);
    else prepared.bindVarchar(i, value);
  }
}

async function readResult(prepared: DuckDBPreparedStatement, maxRows: number, charted: boolean): Promise<SqlOutcome> {
  // Run to completion, not streamed: DuckDB's Node client ends a stream that fails midway as if it were
  // complete (core/store/stream.ts), and a notebook must not show a silently cut count. Only the rows a
  // table or chart can use are converted to JS.
  const result = await prepared.run();
  if (result.returnType !== ResultReturnType.QUERY_RESULT) return { result: null, chartRows: [] };
  const names = result.deduplicatedColumnNames();
  const types = result.columnTypes();
  const keep = charted ? Math.max(maxRows, MAX_CHART_ROWS) : maxRows;
  const rows: CellValue[][] = [];
  let rowCount = 0;
  for (let chunk = await result.fetchChunk(); chunk && chunk.rowCount > 0; chunk = await result.fetchChunk()) {
    for (let r = 0; r < chunk.rowCount && rows.length < keep; r++) {
      rows.push(chunk.getRowValues(r).map((v, c) => toCell(v, types[c]!)));
    }
    rowCount += chunk.rowCount;
  }
  return {
    result: { columns: names.map((name, c) => ({ name, type: types[c]!.toString() })), rows: rows.slice(0, maxRows), row_count: rowCount },
    chartRows: (charted ? rows.slice(0, MAX_CHART_ROWS) : []).map((row) => Object.fromEntries(names.map((name, c) => [name, row[c] ?? null]))),
  };
}

/** DuckDB's own message, with the block's FILE:LINE in front; our own errors pass through. */
async function duckdb<T>(where: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof HsError) throw err;
    const message = (err as Error).message.replace(/^Failed to extract statements:\s*/, '').trim();
    throw new HsError('HS_ERR_QUERY_FAILED', `${where}: sql block failed: ${message}`, { cause: err, details: { location: where } });
  }
}

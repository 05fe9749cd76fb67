import Table from 'cli-table3';
import { stringify } from 'csv-stringify/sync';
import { HsError } from '../core/errors.js';
import type { StoreReader } from '../core/store/reader.js';

/** A query's result as plain JSON values: integers as numbers (strings beyond 2^53), JSON columns parsed. */
export interface QueryResult {
  columns: string[];
  rows: Record<string, unknown>[];
}

const WIDE_INTEGERS = new Set(['BIGINT', 'UBIGINT', 'HUGEINT', 'UHUGEINT']);

/**
 * Runs one query for a human or a script. Values only ever arrive as bound parameters
 * (`params`); the SQL text is the user's own, run with the user's own permissions (like
 * the DuckDB CLI over the same files), against an in-memory database holding the views.
 */
export async function runQuery(reader: StoreReader, sql: string, params: Record<string, unknown> | unknown[] = []): Promise<QueryResult> {
  let result;
  try {
    result = await reader.conn.runAndReadAll(sql, params as never);
  } catch (err) {
    throw new HsError('HS_ERR_QUERY_FAILED', (err as Error).message, { cause: err });
  }
  const columns = result.columnNames();
  const types = result.columnTypes().map((t) => (t.alias === 'JSON' ? 'JSON' : t.toString()));
  const rows = result.getRowObjectsJson().map((row) => {
    const out: Record<string, unknown> = {};
    columns.forEach((c, i) => {
      const v = row[c];
      if (typeof v === 'string' && WIDE_INTEGERS.has(types[i]!) && Number.isSafeInteger(Number(v))) out[c] = Number(v);
      else if (typeof v === 'string' && types[i] === 'JSON') out[c] = JSON.parse(v);
      else out[c] = v;
    });
    return out;
  });
  return { columns, rows };
}

export const OUTPUT_FORMATS = ['table', 'csv', 'json'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

const cell = (v: unknown): string => (v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));

export function formatResult(r: QueryResult, format: OutputFormat): string {
  if (format === 'json') return JSON.stringify(r.rows) + '\n';
  if (format === 'csv') return stringify([r.columns, ...r.rows.map((row) => r.columns.map((c) => cell(row[c])))]);
  if (r.columns.length === 0) return 'OK\n';
  const table = new Table({ head: r.columns, style: { head: [], border: [] }, wordWrap: false, chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' } });
  for (const row of r.rows) table.push(r.columns.map((c) => truncate(cell(row[c]))));
  return `${table.toString()}\n(${r.rows.length} row${r.rows.length === 1 ? '' : 's'})\n`;
}

// A JSON body can be kilobytes: a table cell shows its start; csv and json carry it whole.
const truncate = (s: string) => {
  const line = s.replace(/\s*\n\s*/g, ' ');
  return line.length > 80 ? `${line.slice(0, 79)}…` : line;
};

import { DuckDBTypeId, JsonDuckDBValueConverter, type DuckDBType, type DuckDBValue, type Json } from '@duckdb/node-api';
import type { CellValue } from './types.js';

const WIDE_NUMBERS = new Set<DuckDBTypeId>([
  DuckDBTypeId.BIGINT,
  DuckDBTypeId.UBIGINT,
  DuckDBTypeId.HUGEINT,
  DuckDBTypeId.UHUGEINT,
  DuckDBTypeId.DECIMAL,
  DuckDBTypeId.BIGNUM,
]);
const TIMESTAMPS = new Set<DuckDBTypeId>([DuckDBTypeId.TIMESTAMP, DuckDBTypeId.TIMESTAMP_S, DuckDBTypeId.TIMESTAMP_MS, DuckDBTypeId.TIMESTAMP_NS]);

/**
 * One DuckDB value as a table cell and a chart datum. count(*) is a BIGINT, which
 * DuckDB's JSON form gives as a string; a chart needs a number, so wide numbers
 * become numbers when that loses nothing that matters. TIMESTAMP (no zone) is UTC
 * in every hookshadow table: giving it a `Z` stops charts reading it as local time.
 */
export function toCell(value: DuckDBValue, type: DuckDBType): CellValue {
  const json = JsonDuckDBValueConverter(value, type, JsonDuckDBValueConverter) as Json;
  if (json === null || typeof json === 'boolean' || typeof json === 'number') return json;
  if (typeof json === 'string') {
    if (WIDE_NUMBERS.has(type.typeId)) {
      const n = Number(json);
      const exact = type.typeId === DuckDBTypeId.DECIMAL ? Number.isFinite(n) : Number.isSafeInteger(n);
      return exact ? n : json;
    }
    if (TIMESTAMPS.has(type.typeId) && /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?$/.test(json)) return `${json.replace(' ', 'T')}Z`;
    return json;
  }
  return JSON.stringify(json);
}

const NUMERIC_TYPE = /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|DOUBLE|DECIMAL|BIGNUM)\b/;

/** Right-align these columns. */
export function isNumericType(type: string): boolean {
  return NUMERIC_TYPE.test(type);
}

/** Characters of one cell shown in a report; JSON args and text diffs can be kilobytes. */
export const MAX_CELL_CHARS = 200;

/** A cell as report text (before any escaping), or null for SQL NULL. */
export function displayCell(value: CellValue): string | null {
  if (value === null) return null;
  if (typeof value === 'number') return formatNumber(value);
  const text = String(value);
  return text.length > MAX_CELL_CHARS ? `${text.slice(0, MAX_CELL_CHARS)}… (${text.length - MAX_CELL_CHARS} more characters)` : text;
}

function formatNumber(n: number): string {
  if (Number.isInteger(n) || !Number.isFinite(n)) return String(n);
  // Rates and averages: six decimals are plenty to read, and hide binary-fraction noise (0.30000000000000004).
  if (Math.abs(n) < 1e-6) return n.toExponential(3);
  return String(parseFloat(n.toFixed(6)));
}

/** The note under a result table: "No rows.", or how many rows the table leaves out. */
export function rowsNote(shown: number, total: number, maxRows: number): string | null {
  // rows=0 feeds a chart, not a reader: the chart says what it drew.
  if (maxRows === 0) return null;
  if (total === 0) return 'No rows.';
  if (shown >= total) return null;
  const more = total - shown;
  return `… ${more} more row${more === 1 ? '' : 's'} not shown (${total} in all).`;
}

/**
 * The capture store's schema: the contract between the recorder (which writes it),
 * the replayer and the analyzer (which read it). `specs/capture-format.md` explains
 * each column; this file is the single definition the code uses.
 */

/** Bumped on any incompatible change; readers refuse files with a newer version. */
export const CAPTURE_FORMAT_VERSION = 1;
export const CAPTURE_FORMAT_NAME = 'hookshadow-capture';

export const SOURCES = ['github', 'gitea', 'forgejo', 'gitlab', 'generic'] as const;
export type Source = (typeof SOURCES)[number];

export const MUTATING_METHODS = ['POST', 'PUT', 'PATCH', 'DELETE'] as const;
export const CORRELATIONS = ['exact', 'inferred', 'none'] as const;
export type Correlation = (typeof CORRELATIONS)[number];

export const TABLES = ['deliveries', 'effects', 'exchanges'] as const;
export type Table = (typeof TABLES)[number];

/** Body text as stored: UTF-8 text when the bytes are valid UTF-8, otherwise base64 of the raw bytes. */
export type BodyEncoding = 'utf8' | 'base64';

/** One webhook delivery, as written to the WAL and then to `deliveries/`. Times are microseconds since the epoch, UTC. */
export interface DeliveryRecord {
  t: 'delivery';
  schema_version: number;
  delivery_id: string;
  delivery_id_origin: 'header' | 'generated' | 'import';
  source: Source;
  event: string | null;
  action: string | null;
  received_at_us: number;
  headers: Record<string, string>;
  body: string | null;
  body_encoding: BodyEncoding;
  body_size: number;
  body_sha256: string | null;
  content_type: string | null;
  parse_error: string | null;
  repository: string | null;
  issue_number: number | null;
  signature_valid: boolean | null;
  rejected: string | null;
  redacted: string[];
  mode: 'passive' | 'tee' | 'import';
  legacy_status: number | null;
  legacy_latency_us: number | null;
  legacy_error: string | null;
  recorder_instance: string;
}

/** One outgoing API call of the legacy handler. Mutating calls are effects, reads are exchanges. */
export interface CallRecord {
  t: 'effect' | 'exchange';
  schema_version: number;
  call_id: string;
  delivery_id: string | null;
  correlation: Correlation;
  observed_at_us: number;
  origin: 'proxy' | 'reported' | 'import';
  upstream: string;
  method: string;
  path: string;
  request_headers: Record<string, string>;
  request_body: string | null;
  request_body_encoding: BodyEncoding;
  response_status: number | null;
  response_headers: Record<string, string>;
  response_body: string | null;
  response_body_encoding: BodyEncoding;
  response_truncated: boolean;
  latency_us: number | null;
  error: string | null;
  redacted: string[];
  recorder_instance: string;
}

export type CaptureRecord = DeliveryRecord | CallRecord;

/** A column as it appears in Parquet, and the SQL expression that produces it from a WAL record. */
export interface ColumnSpec {
  name: string;
  type: string;
  /** Field in the WAL record, when it differs from `name` or needs a conversion. */
  from?: { field: string; type: string; expr: (col: string) => string };
}

const micros = (field: string) => ({ field, type: 'BIGINT', expr: (c: string) => `make_timestamp(${c})` });

export const DELIVERY_COLUMNS: ColumnSpec[] = [
  { name: 'schema_version', type: 'INTEGER' },
  { name: 'delivery_id', type: 'VARCHAR' },
  { name: 'delivery_id_origin', type: 'VARCHAR' },
  { name: 'source', type: 'VARCHAR' },
  { name: 'event', type: 'VARCHAR' },
  { name: 'action', type: 'VARCHAR' },
  { name: 'received_at', type: 'TIMESTAMP', from: micros('received_at_us') },
  { name: 'headers', type: 'JSON' },
  { name: 'body', type: 'VARCHAR' },
  { name: 'body_encoding', type: 'VARCHAR' },
  { name: 'body_size', type: 'BIGINT' },
  { name: 'body_sha256', type: 'VARCHAR' },
  { name: 'content_type', type: 'VARCHAR' },
  { name: 'parse_error', type: 'VARCHAR' },
  { name: 'repository', type: 'VARCHAR' },
  { name: 'issue_number', type: 'BIGINT' },
  { name: 'signature_valid', type: 'BOOLEAN' },
  { name: 'rejected', type: 'VARCHAR' },
  { name: 'redacted', type: 'VARCHAR[]' },
  { name: 'mode', type: 'VARCHAR' },
  { name: 'legacy_status', type: 'INTEGER' },
  { name: 'legacy_latency_us', type: 'BIGINT' },
  { name: 'legacy_error', type: 'VARCHAR' },
  { name: 'recorder_instance', type: 'VARCHAR' },
];

function callColumns(idName: string): ColumnSpec[] {
  return [
    { name: 'schema_version', type: 'INTEGER' },
    { name: idName, type: 'VARCHAR', from: { field: 'call_id', type: 'VARCHAR', expr: (c) => c } },
    { name: 'delivery_id', type: 'VARCHAR' },
    { name: 'correlation', type: 'VARCHAR' },
    { name: 'observed_at', type: 'TIMESTAMP', from: micros('observed_at_us') },
    { name: 'origin', type: 'VARCHAR' },
    { name: 'upstream', type: 'VARCHAR' },
    { name: 'method', type: 'VARCHAR' },
    { name: 'path', type: 'VARCHAR' },
    { name: 'request_headers', type: 'JSON' },
    { name: 'request_body', type: 'VARCHAR' },
    { name: 'request_body_encoding', type: 'VARCHAR' },
    { name: 'response_status', type: 'INTEGER' },
    { name: 'response_headers', type: 'JSON' },
    { name: 'response_body', type: 'VARCHAR' },
    { name: 'response_body_encoding', type: 'VARCHAR' },
    { name: 'response_truncated', type: 'BOOLEAN' },
    { name: 'latency_us', type: 'BIGINT' },
    { name: 'error', type: 'VARCHAR' },
    { name: 'redacted', type: 'VARCHAR[]' },
    { name: 'recorder_instance', type: 'VARCHAR' },
  ];
}

export const TABLE_SPECS: Record<Table, { recordType: CaptureRecord['t']; timeColumn: string; columns: ColumnSpec[] }> = {
  deliveries: { recordType: 'delivery', timeColumn: 'received_at', columns: DELIVERY_COLUMNS },
  effects: { recordType: 'effect', timeColumn: 'observed_at', columns: callColumns('effect_id') },
  exchanges: { recordType: 'exchange', timeColumn: 'observed_at', columns: callColumns('exchange_id') },
};

/** True for methods whose calls are side effects (recorded in `effects`), false for reads (`exchanges`). */
export function isMutating(method: string): boolean {
  return (MUTATING_METHODS as readonly string[]).includes(method.toUpperCase());
}

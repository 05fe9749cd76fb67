import type { Table } from '../core/capture-schema.js';
import { parseIsoUs } from '../core/clock.js';
import { parsePayload } from '../core/payload.js';
import type { ReplayManifest } from '../core/replay-schema.js';
import { sqlString } from '../core/sql.js';
import { storePaths } from '../core/store/layout.js';
import { openStoreReader, type StoreReader } from '../core/store/reader.js';
import { streamVerified } from '../core/store/stream.js';
import type { DeliveryInput } from './engine/delivery.js';
import type { RecordedExchange } from './engine/recordings.js';
import type { RawDelivery } from './redeliver.js';

/** Which deliveries a replay covers. Times are microseconds since the epoch. */
export interface DeliveryFilter {
  sinceUs: number | null;
  untilUs: number | null;
  /** Keep deliveries whose shard hash mod `of` equals `index` (0-based). */
  shard: { index: number; of: number } | null;
}

/**
 * A delivery as stored, with the calls the legacy handler made for it: plain data, so it
 * crosses into a worker thread cheaply; `parseStored` turns it into the engine's input.
 */
export interface StoredDelivery {
  delivery_id: string;
  source: string;
  event: string | null;
  action: string | null;
  received_at_us: number;
  headers: string | null;
  body: string | null;
  body_encoding: string;
  content_type: string | null;
  repository: string | null;
  /** The legacy handler's reads for this delivery (exchanges). */
  reads: RecordedExchange[];
  /** The legacy handler's mutating calls for this delivery (effects), with their responses. */
  writes: RecordedExchange[];
}

/** The engine's view of a stored delivery (payload parsed as at capture) and its raw form, for re-delivery. */
export function parseStored(s: StoredDelivery): { delivery: DeliveryInput; raw: RawDelivery } {
  const headers = s.headers ? (JSON.parse(s.headers) as Record<string, string>) : {};
  // Parsed as at capture: JSON, or the form-encoded `payload=` variant; anything else has no payload.
  const payload = s.body_encoding === 'utf8' ? parsePayload(s.body, s.content_type).payload : null;
  return {
    delivery: { delivery_id: s.delivery_id, source: s.source, event: s.event, action: s.action, received_at_us: s.received_at_us, headers, payload, repository: s.repository },
    raw: { delivery_id: s.delivery_id, source: s.source, headers, body: s.body, body_encoding: s.body_encoding as RawDelivery['body_encoding'] },
  };
}

/**
 * The shard hash: the first 32 bits of md5(delivery_id). Documented (specs/replay-format.md)
 * and computed in SQL, so any tool can reproduce a shard split.
 */
export const SHARD_HASH_SQL = `('0x' || left(md5(delivery_id), 8))::UBIGINT`;

/** The WHERE clause selecting a replay's deliveries from the `deliveries` view; values are bound parameters. */
export function deliveryWhere(f: DeliveryFilter): { sql: string; params: unknown[] } {
  // A rejected delivery (bad signature under the reject policy) never reached the legacy handler: nothing to compare.
  const clauses: string[] = ['rejected IS NULL'];
  const params: unknown[] = [];
  if (f.sinceUs !== null) {
    params.push(f.sinceUs);
    clauses.push(`received_at >= make_timestamp($${params.length}::BIGINT)`);
  }
  if (f.untilUs !== null) {
    params.push(f.untilUs);
    clauses.push(`received_at < make_timestamp($${params.length}::BIGINT)`);
  }
  if (f.shard) clauses.push(`${SHARD_HASH_SQL} % ${f.shard.of} = ${f.shard.index}`);
  return { sql: `WHERE ${clauses.join(' AND ')}`, params };
}

/** The filter a replay ran with, from its manifest: the analyzer compares exactly those deliveries. */
export function filterOfManifest(m: Pick<ReplayManifest, 'filters'>): DeliveryFilter {
  const shard = m.filters.shard?.split('/').map(Number);
  return {
    sinceUs: m.filters.since ? parseIsoUs(m.filters.since) : null,
    untilUs: m.filters.until ? parseIsoUs(m.filters.until) : null,
    shard: shard ? { index: shard[0]! - 1, of: shard[1]! } : null,
  };
}

export async function countDeliveries(reader: StoreReader, f: DeliveryFilter): Promise<number> {
  const w = deliveryWhere(f);
  const [row] = await reader.query<{ n: string }>(`SELECT count(*)::VARCHAR AS n FROM deliveries ${w.sql}`, w.params);
  return Number(row?.n ?? 0);
}

/** How many deliveries one window query sorts and returns; bounds the memory a replay needs. */
export const WINDOW_DELIVERIES = 1024;

/**
 * Streams deliveries in received_at order, each with the calls the legacy handler made
 * for it, in bounded memory whatever the store's size.
 *
 * Sorting every delivery with its body in one query would make DuckDB hold (or spill)
 * the whole store. Instead: (1) sort only the receive times and cut them into windows
 * of about WINDOW_DELIVERIES; (2) measure once how long after its delivery a call can
 * be observed; (3) per window, fetch the window's deliveries sorted, and the calls
 * observed within the window shifted by that lag. Parquet row-group statistics on the
 * time columns let DuckDB skip everything outside the window, since the recorder writes
 * rows in arrival order.
 */
export async function* streamDeliveries(
  reader: StoreReader,
  f: DeliveryFilter,
  opts: { windowSize?: number; lag?: CallLag; repeated?: Map<string, number[]> } = {},
): AsyncGenerator<StoredDelivery> {
  const w = deliveryWhere(f);
  const windows = await windowBounds(reader, w, opts.windowSize ?? WINDOW_DELIVERIES);
  if (windows.length === 0) return;
  const lag = opts.lag ?? (await callLag(reader, f));
  const repeated = opts.repeated ?? (await repeatedDeliveries(reader));
  // Each window query names only the files whose time range overlaps it: with hundreds of files,
  // opening every one per window would make the replay quadratic in the store's size.
  const spans = {
    deliveries: await fileSpans(reader, 'deliveries', 'received_at'),
    exchanges: await fileSpans(reader, 'exchanges', 'observed_at'),
    effects: await fileSpans(reader, 'effects', 'observed_at'),
  };
  const n = w.params.length;
  const inWindow = `${w.sql} AND received_at >= make_timestamp($${n + 1}::BIGINT) AND received_at < make_timestamp($${n + 2}::BIGINT)`;

  for (const [lo, hi] of windows) {
    const deliveries = overlapping(spans.deliveries, lo, hi);
    if (!deliveries) continue;
    const params = [...w.params, lo, hi, lo + lag.min, hi + lag.max];
    const byDelivery = new Map<string, { reads: (RecordedExchange & { o: number })[]; writes: (RecordedExchange & { o: number })[] }>();
    const calls = (table: 'exchanges' | 'effects', kind: 'r' | 'w'): string | null => {
      const files = lag.any ? overlapping(spans[table], lo + lag.min, hi + lag.max + 1) : null;
      return files
        ? `SELECT delivery_id, '${kind}' AS kind, upstream, method, path, response_status, response_body, epoch_us(observed_at)::DOUBLE AS o FROM ${files}
           WHERE observed_at >= make_timestamp($${n + 3}::BIGINT) AND observed_at <= make_timestamp($${n + 4}::BIGINT)
             AND delivery_id IN (SELECT delivery_id FROM ${deliveries} ${inWindow})`
        : null;
    };
    const parts = [calls('exchanges', 'r'), calls('effects', 'w')].filter((q): q is string => q !== null);
    if (parts.length > 0) {
      const rows = await reader.conn.runAndReadAll(`${parts.join(' UNION ALL ')} ORDER BY o`, params as never);
      for (const [id, kind, upstream, method, path, status, body, o] of rows.getRowsJS() as [string, string, string, string, string, number | null, string | null, number][]) {
        let entry = byDelivery.get(id);
        if (!entry) byDelivery.set(id, (entry = { reads: [], writes: [] }));
        (kind === 'r' ? entry.reads : entry.writes).push({ upstream, method, path, response_status: status, response_body: body, o });
      }
    }
    // Read whole (a window is one DuckDB chunk or so): a streamed result that fails midway would end silently (stream.ts).
    const windowRows = await reader.conn.runAndReadAll(
      `SELECT delivery_id, source, event, action, epoch_us(received_at)::DOUBLE AS received_at_us,
              headers::VARCHAR AS headers, body, body_encoding, content_type, repository
       FROM ${deliveries} ${inWindow} ORDER BY received_at, delivery_id`,
      params.slice(0, n + 2) as never,
    );
    for (const row of windowRows.getRowsJS()) {
      const [id, source, event, action, receivedAtUs, headers, body, encoding, contentType, repository] = row as [
        string, string, string | null, string | null, number, string | null, string | null, string, string | null, string | null,
      ];
      const recorded = byDelivery.get(id);
      const times = repeated.get(id);
      const own = (calls: (RecordedExchange & { o: number })[] | undefined) =>
        (calls ?? []).filter((c) => ownsCall(times, receivedAtUs, c.o)).map(({ o: _o, ...call }) => call);
      yield {
        delivery_id: id,
        source,
        event,
        action,
        received_at_us: receivedAtUs,
        headers,
        body,
        body_encoding: encoding,
        content_type: contentType,
        repository,
        reads: own(recorded?.reads),
        writes: own(recorded?.writes),
      };
    }
  }
}

/** A Parquet file and the range of its time column, from the file's statistics (null: unknown, always read). */
interface FileSpan {
  file: string;
  lo: number | null;
  hi: number | null;
}

async function fileSpans(reader: StoreReader, table: Table, column: string): Promise<FileSpan[]> {
  try {
    return await reader.query<FileSpan>(
      `SELECT file_name AS file, epoch_us(min(stats_min_value::TIMESTAMP))::DOUBLE AS lo, epoch_us(max(stats_max_value::TIMESTAMP))::DOUBLE AS hi
       FROM parquet_metadata(${sqlString(storePaths.glob(reader.store, table))}) WHERE path_in_schema = ${sqlString(column)} GROUP BY file_name`,
    );
  } catch {
    return []; // no files for this table yet
  }
}

/** A `read_parquet(...)` over the files that may hold times in [lo, hi], or null when none can. */
function overlapping(spans: FileSpan[], lo: number, hi: number): string | null {
  const files = spans.filter((s) => s.lo === null || s.hi === null || (s.lo <= hi && s.hi >= lo)).map((s) => sqlString(s.file));
  return files.length === 0 ? null : `read_parquet([${files.join(', ')}], union_by_name = true)`;
}

/** Half-open [lo, hi) receive-time windows of about `size` deliveries each; equal times never straddle two windows. */
async function windowBounds(reader: StoreReader, w: { sql: string; params: unknown[] }, size: number): Promise<[number, number][]> {
  const result = streamVerified(reader.conn, `SELECT epoch_us(received_at)::DOUBLE FROM deliveries ${w.sql} ORDER BY received_at`, w.params);
  const starts: number[] = [];
  let inWindow = 0;
  let last = -Infinity;
  for await (const rows of result) {
    for (const [t] of rows as [number][]) {
      if (starts.length === 0 || (inWindow >= size && t !== last)) {
        starts.push(t);
        inWindow = 0;
      }
      inWindow++;
      last = t;
    }
  }
  return starts.map((lo, i) => [lo, starts[i + 1] ?? last + 1]);
}

/** How long after (min < 0: before) its delivery's receipt a call was observed, in microseconds; `any` is false when no call is attributed. */
export interface CallLag {
  any: boolean;
  min: number;
  max: number;
}

/**
 * Measures the call lag once, so replay partitions need not. Joined on a 64-bit hash of
 * the delivery id (a fraction of the memory of the ids themselves): a collision could
 * only widen the bounds, never lose a call.
 */
export async function callLag(reader: StoreReader, f: DeliveryFilter): Promise<CallLag> {
  const w = deliveryWhere(f);
  // With a repeated delivery id, a call is measured against its own instance (see `ownsCall`).
  const [row] = await reader.query<{ lo: number | null; hi: number | null }>(
    `WITH i AS (SELECT hash(delivery_id) AS h, epoch_us(received_at) AS r, rejected, received_at, delivery_id,
                       lag(epoch_us(received_at)) OVER w AS pr, lead(epoch_us(received_at)) OVER w AS nr
                FROM deliveries WHERE rejected IS NULL WINDOW w AS (PARTITION BY delivery_id ORDER BY received_at)),
          d AS (SELECT h, r, pr, nr FROM i ${w.sql}),
          c AS (SELECT hash(delivery_id) AS h, epoch_us(observed_at) AS o FROM exchanges WHERE delivery_id IS NOT NULL
                UNION ALL SELECT hash(delivery_id), epoch_us(observed_at) FROM effects WHERE delivery_id IS NOT NULL)
     SELECT min(c.o - d.r)::DOUBLE AS lo, max(c.o - d.r)::DOUBLE AS hi
     FROM c JOIN d ON c.h = d.h AND (d.pr IS NULL OR c.o >= d.r) AND (d.nr IS NULL OR c.o < d.nr)`,
    w.params,
  );
  return row?.lo === null || row?.lo === undefined ? { any: false, min: 0, max: 0 } : { any: true, min: row.lo, max: row.hi! };
}

/**
 * A delivery id can repeat: a forge's redelivery keeps it. Each repeated id's receive
 * times, in order; ids received once (nearly all) are not listed.
 */
export async function repeatedDeliveries(reader: StoreReader): Promise<Map<string, number[]>> {
  // Two steps: a count per id is a small aggregate; gathering every id's times would not fit the reader's memory.
  const rows = await reader.query<{ id: string; times: number[] }>(
    `WITH r AS (SELECT delivery_id FROM deliveries WHERE rejected IS NULL GROUP BY delivery_id HAVING count(*) > 1)
     SELECT delivery_id AS id, list(epoch_us(received_at)::DOUBLE ORDER BY received_at) AS times
     FROM deliveries SEMI JOIN r USING (delivery_id) WHERE rejected IS NULL GROUP BY delivery_id`,
  );
  return new Map(rows.map((r) => [r.id, r.times.map(Number)]));
}

/**
 * Whether a call observed at `observedUs` belongs to the instance of its delivery id
 * received at `receivedUs`: the latest instance received at or before the call (calls
 * observed before the first instance belong to the first). specs/replay-format.md.
 */
// Rejected deliveries never reached the legacy handler: they own no calls.
export function ownsCall(times: number[] | undefined, receivedUs: number, observedUs: number): boolean {
  if (!times) return true;
  const k = times.indexOf(receivedUs);
  const next = times[k + 1];
  return (k === 0 || observedUs >= receivedUs) && (next === undefined || observedUs < next);
}

export { openStoreReader };

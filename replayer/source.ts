import { parsePayload } from '../core/payload.js';
import { openStoreReader, type StoreReader } from '../core/store/reader.js';
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

export interface StoredDelivery {
  delivery: DeliveryInput;
  /** The legacy handler's reads for this delivery (exchanges). */
  reads: RecordedExchange[];
  /** The legacy handler's mutating calls for this delivery (effects), with their responses. */
  writes: RecordedExchange[];
  /** The delivery as received (post-redaction headers, raw body), for re-delivery. */
  raw: RawDelivery;
}

/**
 * The shard hash: the first 32 bits of md5(delivery_id). Documented (specs/replay-format.md)
 * and computed in SQL, so any tool can reproduce a shard split.
 */
export const SHARD_HASH_SQL = `('0x' || left(md5(delivery_id), 8))::UBIGINT`;

const CALL = `{'upstream': upstream, 'method': method, 'path': path, 'response_status': response_status, 'response_body': response_body}`;

function where(f: DeliveryFilter): { sql: string; params: unknown[] } {
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

export async function countDeliveries(reader: StoreReader, f: DeliveryFilter): Promise<number> {
  const w = where(f);
  const [row] = await reader.query<{ n: string }>(`SELECT count(*)::VARCHAR AS n FROM deliveries ${w.sql}`, w.params);
  return Number(row?.n ?? 0);
}

/**
 * Streams deliveries in received_at order, each with the reads the legacy handler made
 * for it. DuckDB streams the result chunk by chunk under a memory limit (spilling the
 * sort to disk when it must), so a store of any size replays in bounded memory.
 */
export async function* streamDeliveries(reader: StoreReader, f: DeliveryFilter): AsyncGenerator<StoredDelivery> {
  const w = where(f);
  const result = await reader.conn.stream(
    `WITH d AS (SELECT * FROM deliveries ${w.sql}),
          r AS (SELECT delivery_id, list(${CALL} ORDER BY observed_at) AS reads
                FROM exchanges WHERE delivery_id IN (SELECT delivery_id FROM d) GROUP BY delivery_id),
          w AS (SELECT delivery_id, list(${CALL} ORDER BY observed_at) AS writes
                FROM effects WHERE delivery_id IN (SELECT delivery_id FROM d) GROUP BY delivery_id)
     SELECT d.delivery_id, d.source, d.event, d.action, epoch_us(d.received_at)::DOUBLE AS received_at_us,
            d.headers::VARCHAR AS headers, d.body, d.body_encoding, d.content_type, d.repository, r.reads, w.writes
     FROM d LEFT JOIN r USING (delivery_id) LEFT JOIN w USING (delivery_id)
     ORDER BY d.received_at, d.delivery_id`,
    w.params as never,
  );
  for await (const rows of result.yieldRowsJs()) {
    for (const row of rows) {
      const [id, source, event, action, receivedAtUs, headers, body, encoding, contentType, repository, reads, writes] = row as [
        string, string, string | null, string | null, number, string | null, string | null, string, string | null, string | null, RecordedExchange[] | null, RecordedExchange[] | null,
      ];
      // Parsed as at capture: JSON, or the form-encoded `payload=` variant; anything else has no payload.
      const payload = encoding === 'utf8' ? parsePayload(body, contentType).payload : null;
      const parsedHeaders = headers ? (JSON.parse(headers) as Record<string, string>) : {};
      yield {
        delivery: {
          delivery_id: id,
          source,
          event,
          action,
          received_at_us: receivedAtUs,
          headers: parsedHeaders,
          payload,
          repository,
        },
        reads: reads ?? [],
        writes: writes ?? [],
        raw: { delivery_id: id, source, headers: parsedHeaders, body, body_encoding: encoding as RawDelivery['body_encoding'] },
      };
    }
  }
}

export { openStoreReader };

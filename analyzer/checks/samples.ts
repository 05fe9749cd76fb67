import { sqlString } from '../../core/sql.js';
import type { StoreReader } from '../../core/store/reader.js';
import type { RecordedExchange } from '../../replayer/engine/recordings.js';
import { ownsCall, repeatedDeliveries, type StoredDelivery } from '../../replayer/source.js';

export interface SampleOptions {
  /** Deliveries per (source, event, action). */
  perShape: number;
  /** Which ones: the same seed picks the same deliveries. */
  seed: number;
}

/**
 * Real deliveries to start cases from: up to `perShape` of every (source, event,
 * action) the store holds, each with the reads and mutating calls the legacy handler
 * made for it (so flows replay against what really was read). Smallest body first:
 * shrinking a case's sample index moves to smaller deliveries.
 */
export async function sampleDeliveries(reader: StoreReader, opts: SampleOptions): Promise<StoredDelivery[]> {
  const rows = await reader.query<Omit<StoredDelivery, 'reads' | 'writes'>>(
    `WITH d AS (
       SELECT delivery_id, source, event, action, epoch_us(received_at)::DOUBLE AS received_at_us, headers::VARCHAR AS headers,
              body, body_encoding, content_type, repository,
              row_number() OVER (PARTITION BY source, event, action ORDER BY hash(delivery_id || $1), received_at) AS k
       FROM deliveries WHERE rejected IS NULL AND body IS NOT NULL AND body_encoding = 'utf8')
     SELECT * EXCLUDE (k) FROM d WHERE k <= $2 ORDER BY length(body), delivery_id, received_at_us`,
    [String(opts.seed), opts.perShape],
  );
  return withCalls(reader, rows);
}

/** Every delivery of a store (a saved counterexample is one or two), in received order, with its calls. */
export async function allDeliveries(reader: StoreReader): Promise<StoredDelivery[]> {
  const rows = await reader.query<Omit<StoredDelivery, 'reads' | 'writes'>>(
    `SELECT delivery_id, source, event, action, epoch_us(received_at)::DOUBLE AS received_at_us, headers::VARCHAR AS headers,
            body, body_encoding, content_type, repository
     FROM deliveries WHERE rejected IS NULL ORDER BY received_at, delivery_id`,
  );
  return withCalls(reader, rows);
}

async function withCalls(reader: StoreReader, rows: Omit<StoredDelivery, 'reads' | 'writes'>[]): Promise<StoredDelivery[]> {
  if (rows.length === 0) return [];
  const ids = [...new Set(rows.map((r) => r.delivery_id))].map(sqlString).join(', ');
  const calls = await reader.query<RecordedExchange & { delivery_id: string; kind: 'r' | 'w'; o: number }>(
    `SELECT delivery_id, 'r' AS kind, upstream, method, path, response_status, response_body, request_body, epoch_us(observed_at)::DOUBLE AS o FROM exchanges WHERE delivery_id IN (${ids})
     UNION ALL
     SELECT delivery_id, 'w', upstream, method, path, response_status, response_body, request_body, epoch_us(observed_at)::DOUBLE FROM effects WHERE delivery_id IN (${ids})
     ORDER BY o`,
  );
  const repeated = await repeatedDeliveries(reader);
  return rows.map((r) => {
    const receivedAtUs = Number(r.received_at_us);
    const own = (kind: 'r' | 'w') =>
      calls
        .filter((c) => c.delivery_id === r.delivery_id && c.kind === kind && ownsCall(repeated.get(r.delivery_id), receivedAtUs, Number(c.o)))
        .map(({ upstream, method, path, response_status, response_body, request_body }) => ({ upstream, method, path, response_status, response_body, request_body }));
    return { ...r, received_at_us: receivedAtUs, reads: own('r'), writes: own('w') };
  });
}

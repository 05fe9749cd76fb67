import { rm } from 'node:fs/promises';
import type { DuckDBAppender, DuckDBConnection } from '@duckdb/node-api';
import { DIVERGENCE_COLUMNS, DIVERGENCE_FORMAT_VERSION, type Divergence } from '../core/divergence-schema.js';
import { canonicalJson } from '../core/effects.js';
import type { ReplayManifest } from '../core/replay-schema.js';
import { sqlIdent, sqlString } from '../core/sql.js';
import { syncFile } from '../core/store/layout.js';
import { streamToSentinel } from '../core/store/stream.js';
import { deliveryWhere, filterOfManifest } from '../replayer/source.js';
import { compareDelivery, divergenceRow, type DeliveryMeta, type FlowIntent, type FlowRunInfo, type LegacyEffect } from './match.js';
import { expectedBy, type Rules } from './rules.js';
import type { RouteMaps } from './routes.js';
import type { AnalysisReader } from './views.js';

/**
 * Computes one replay's divergences (specs/divergence.md § Matching) and writes them
 * to `replays/<id>/divergences.parquet`. One query streams, in delivery order, every
 * delivery's legacy effects, intents and flow runs; the matcher turns each delivery's
 * share into rows, which an appender collects in DuckDB (spilling to disk if it must)
 * and one COPY writes out. Deliveries with neither effects nor runs never leave DuckDB.
 */

/** The working table: DIVERGENCE_COLUMNS, with JSON as text and the time in microseconds until the COPY. */
export const WORK_TABLE = 'divergence_rows';

export interface ComputeOptions {
  manifest: ReplayManifest;
  rules: Rules;
  routes: RouteMaps;
  onProgress?(deliveries: number): void;
}

export interface ComputeCounts {
  deliveries: number;
  legacy_effects: number;
  intents: number;
  /** Matches are counted, not written: nine rows in ten would say "same", and the file is about differences. */
  matches: number;
  matchesByKind: Map<string, number>;
}

export async function computeDivergences(reader: AnalysisReader, opts: ComputeOptions): Promise<ComputeCounts> {
  const { conn } = reader;
  // The appender gets a connection of its own: it flushes every 204,800 rows by running a statement, and a
  // statement on the streaming connection would end the stream (streamToSentinel would then report it cut).
  // So the work table is in the main schema, which both connections see.
  await createDivergenceTable(conn);
  const appender = await (await reader.connect()).createAppender(WORK_TABLE);
  const counts: ComputeCounts = { deliveries: 0, legacy_effects: 0, intents: 0, matches: 0, matchesByKind: new Map() };
  const flowOrder = new Map(opts.manifest.flows.map((f, i) => [f.name, i]));
  const filter = filterOfManifest(opts.manifest);
  const w = deliveryWhere(filter);

  // A delivery id can repeat (a forge's redelivery keeps it): each instance gets the runs of
  // its own receive time, and the effects observed from it until the next instance arrived.
  const rowsOf = streamToSentinel(
    conn,
    `WITH repeated AS (SELECT delivery_id FROM deliveries WHERE rejected IS NULL GROUP BY delivery_id HAVING count(*) > 1),
     instances AS (
       SELECT delivery_id, received_at, rejected, epoch_us(received_at) AS r, source, event, action, NULL::BIGINT AS prev_r, NULL::BIGINT AS next_r
       FROM deliveries ANTI JOIN repeated USING (delivery_id) WHERE rejected IS NULL
       UNION ALL
       -- Only repeated ids need their neighbours: a window over every delivery would cost a sort of the whole store.
       SELECT delivery_id, received_at, rejected, epoch_us(received_at), source, event, action,
              lag(epoch_us(received_at)) OVER w, lead(epoch_us(received_at)) OVER w
       FROM deliveries SEMI JOIN repeated USING (delivery_id) WHERE rejected IS NULL WINDOW w AS (PARTITION BY delivery_id ORDER BY received_at)),
     scope AS (SELECT delivery_id, r, source, event, action, prev_r, next_r FROM instances ${w.sql}),
     runs AS (SELECT run_id, delivery_id, flow, status, error, epoch_us(received_at) AS r FROM flow_runs),
     problems AS (SELECT run_id, arg_min(node_id, seq) AS node_id FROM node_runs WHERE status IN ('failed', 'no_recording', 'blocked') GROUP BY run_id),
     parts AS (
     SELECT s.delivery_id, s.r::DOUBLE AS r, s.source, s.event, s.action, 0 AS tag, epoch_us(e.observed_at) AS o1, NULL::INTEGER AS o2, e.effect_id AS id,
            e.upstream AS a, e.method AS b, e.path AS c, e.request_body AS d, e.request_body_encoding AS e
     FROM effects e JOIN scope s ON e.delivery_id = s.delivery_id
      AND (s.prev_r IS NULL OR epoch_us(e.observed_at) >= s.r) AND (s.next_r IS NULL OR epoch_us(e.observed_at) < s.next_r)
     UNION ALL
     -- Kind, target and args only: the intent's request repeats the args and is not compared.
     SELECT s.delivery_id, s.r, s.source, s.event, s.action, 1, n.seq, n.iteration, n.run_id, n.flow, n.node_id, n.intent->>'kind', (n.intent->'args')::VARCHAR, n.intent->>'target'
     FROM node_runs n JOIN runs USING (run_id) JOIN scope s ON s.delivery_id = runs.delivery_id AND s.r = runs.r
     WHERE n.intent IS NOT NULL
     UNION ALL
     SELECT s.delivery_id, s.r, s.source, s.event, s.action, 2, 0, NULL, runs.run_id, runs.flow, runs.status, runs.error, p.node_id, NULL
     FROM runs JOIN scope s ON s.delivery_id = runs.delivery_id AND s.r = runs.r LEFT JOIN problems p USING (run_id)
     )
     -- One JSON array per row: JSON.parse is about three times faster than the client's value-by-value conversion.
     -- Then the sentinel (a NULL row sorted last): streamToSentinel knows the result is whole when it arrives.
     SELECT row FROM (
       SELECT json_array(delivery_id, r, source, event, action, tag, o2, id, a, b, c, d, e)::VARCHAR AS row, r, delivery_id, tag, o1, o2, id FROM parts
       UNION ALL SELECT NULL, 'Infinity'::DOUBLE, NULL, NULL, NULL, NULL, NULL)
     ORDER BY r, delivery_id, tag, o1, o2, id`,
    w.params,
  );

  const countMatch = (kind: string) => {
    counts.matches++;
    counts.matchesByKind.set(kind, (counts.matchesByKind.get(kind) ?? 0) + 1);
  };
  let meta = null as DeliveryMeta | null;
  let legacy: LegacyEffect[] = [];
  let intents: FlowIntent[] = [];
  let runs: FlowRunInfo[] = [];
  const flush = () => {
    if (!meta) return;
    // Flows run independently; their intents compare in the order the flows load, then node order.
    intents.sort((x, y) => (flowOrder.get(x.flow) ?? 0) - (flowOrder.get(y.flow) ?? 0));
    for (const d of compareDelivery(meta, legacy, intents, runs, opts.rules, countMatch)) appendDivergence(appender, d);
    counts.deliveries++;
    counts.legacy_effects += legacy.length;
    counts.intents += intents.length;
    if (counts.deliveries % 4096 === 0) opts.onProgress?.(counts.deliveries);
    legacy = [];
    intents = [];
    runs = [];
  };
  type Row = [string, number, string | null, string | null, string | null, number, number | null, string, string, string, string | null, string | null, string | null];
  for await (const rows of rowsOf) {
    for (const [json] of rows as [string][]) {
      const [deliveryId, receivedUs, source, event, action, tag, o2, id, a, b, c, d, e] = JSON.parse(json) as Row;
      if (meta?.delivery_id !== deliveryId || meta.received_at_us !== receivedUs) {
        flush();
        meta = { delivery_id: deliveryId, received_at_us: receivedUs, source, event, action };
      }
      if (tag === 0) legacy.push({ effect_id: id, ...opts.routes.map({ upstream: a, method: b, path: c!, body: parseBody(d, e) }) });
      else if (tag === 1) {
        intents.push({ run_id: id, flow: a, node_id: b, iteration: o2 === null ? null : Number(o2), kind: c!, target: e!, args: d ? (JSON.parse(d) as Record<string, unknown>) : {} });
      } else runs.push({ run_id: id, flow: a, status: b, error: c, node_id: d });
    }
  }
  flush();
  // A split replay reports the calls tied to no delivery once, with its first shard.
  if (!filter.shard || filter.shard.index === 0) await appendUnattributed(reader, appender, opts, filter);
  appender.closeSync();
  return counts;
}

/** A captured body as the route maps see it: parsed JSON, else the text (base64 for binary bodies). */
export function parseBody(text: string | null, encoding: string | null): unknown {
  if (text === null) return null;
  if (encoding !== 'utf8') return text;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

async function appendUnattributed(reader: AnalysisReader, appender: DuckDBAppender, opts: ComputeOptions, filter: ReturnType<typeof filterOfManifest>): Promise<void> {
  const params: unknown[] = [];
  const window: string[] = [];
  if (filter.sinceUs !== null) window.push(`observed_at >= make_timestamp($${params.push(filter.sinceUs)}::BIGINT)`);
  if (filter.untilUs !== null) window.push(`observed_at < make_timestamp($${params.push(filter.untilUs)}::BIGINT)`);
  const rows = await reader.query<{ effect_id: string; o: number; upstream: string; method: string; path: string; body: string | null; enc: string | null }>(
    `SELECT effect_id, epoch_us(observed_at)::DOUBLE AS o, upstream, method, path, request_body AS body, request_body_encoding AS enc
     FROM effects e
     WHERE (e.delivery_id IS NULL OR NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.delivery_id = e.delivery_id))
     ${window.length ? `AND ${window.join(' AND ')}` : ''}
     ORDER BY observed_at, effect_id`,
    params,
  );
  for (const r of rows) {
    const mapped = opts.routes.map({ upstream: r.upstream, method: r.method, path: r.path, body: parseBody(r.body, r.enc) });
    const d = divergenceRow('unattributed', {
      received_at_us: r.o,
      kind: mapped.kind,
      target: mapped.target,
      legacy_value: mapped.args,
      effect_id: r.effect_id,
      route: mapped.route,
    });
    d.expected_by = expectedBy(opts.rules, d);
    appendDivergence(appender, d);
  }
}

/** The working table divergence rows are appended to before `writeDivergencesParquet` (receive times as microseconds). */
export async function createDivergenceTable(conn: DuckDBConnection): Promise<void> {
  await conn.run(`CREATE OR REPLACE TABLE ${WORK_TABLE} (${DIVERGENCE_COLUMNS.map((c) => `${sqlIdent(c.name === 'received_at' ? 'received_at_us' : c.name)} ${c.type === 'JSON' ? 'VARCHAR' : c.name === 'received_at' ? 'BIGINT' : c.type}`).join(', ')})`);
}

const json = (v: unknown) => (v === undefined ? null : canonicalJson(v));

export function appendDivergence(a: DuckDBAppender, d: Divergence): void {
  const text = (v: string | null) => (v === null ? a.appendNull() : a.appendVarchar(v));
  text(d.delivery_id);
  a.appendBigInt(BigInt(Math.round(d.received_at_us)));
  text(d.source);
  text(d.event);
  text(d.action);
  a.appendVarchar(d.class);
  text(d.flow);
  text(d.node_id);
  if (d.iteration === null) a.appendNull();
  else a.appendInteger(d.iteration);
  text(d.run_id);
  text(d.kind);
  text(d.target);
  text(d.path);
  text(json(d.legacy_value));
  text(json(d.flow_value));
  text(d.text_diff);
  text(d.effect_id);
  text(d.route);
  text(d.expected_by);
  a.endRow();
}

/**
 * Writes the working table as Parquet to a temporary file beside `target`, synced, and
 * returns its name: the caller renames it into place together with analysis.json.
 */
export async function writeDivergencesParquet(conn: DuckDBConnection, target: string): Promise<string> {
  const cols = DIVERGENCE_COLUMNS.map((c) => {
    if (c.name === 'received_at') return `make_timestamp(received_at_us) AS received_at`;
    return c.type === 'JSON' ? `${sqlIdent(c.name)}::JSON AS ${sqlIdent(c.name)}` : sqlIdent(c.name);
  });
  const tmp = `${target}.${process.pid}.tmp`;
  try {
    // The table is in delivery order (insertion order, which COPY keeps).
    await conn.run(
      `COPY (SELECT ${cols.join(', ')} FROM ${WORK_TABLE}) TO ${sqlString(tmp)}
       (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 16384, KV_METADATA {hookshadow_divergence_format_version: '${DIVERGENCE_FORMAT_VERSION}'})`,
    );
    await syncFile(tmp);
    return tmp;
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

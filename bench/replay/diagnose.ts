/**
 * Replay benchmark, diagnostics: where streamDeliveries (replayer/source.ts) needs its memory. Runs
 * pieces of its query (as of HEAD 8b3b4aa), each alone in a child process, under a replay worker's DuckDB settings
 * (threads 1, preserve_insertion_order false, a spill directory) and a chosen memory_limit, and reports
 * rows, time to the first row, total time, peak RSS and the largest spill seen, or DuckDB's error.
 *
 *   node dist/bench/replay/diagnose.js --store DIR [--variants full,sort,...] [--memory 192MB,1GB] [--window 5000]
 *
 * Variants (all stream their result to JS with yieldRowsJs, as streamDeliveries does):
 *   scan       the deliveries' columns as the replay selects them, in no particular order
 *   sort       the same, ORDER BY received_at, delivery_id (the wide sort: bodies included)
 *   sort-keys  only delivery_id and received_at, sorted (the narrow sort)
 *   reads      exchanges: list({...} ORDER BY observed_at) GROUP BY delivery_id
 *   writes     effects: the same
 *   no-order   the whole streamDeliveries query without its ORDER BY
 *   full       the whole streamDeliveries query (what a replay worker runs with concurrency 1)
 *   shard      the same for one shard of two (what each worker runs with concurrency 2)
 *   windowed   a prototype fix: the same query, one received_at window at a time (windows of --window
 *              deliveries, found by a narrow first pass), concatenated: the same rows in the same order
 *   windowed-t the same, and each window reads only the calls observed within an hour of it (so the
 *              Parquet zone maps skip the rest); assumes a call is observed within 1 h of its delivery
 *
 * The final COPY (replayer/output/parquet.ts), over a replay's NDJSON parts kept with
 * `run.js --phases replay-2-mem --keep-replays --copy-retry-memory none`:
 *
 *   node dist/bench/replay/diagnose.js --copy-parts <store>/_staging/replays/<id> [--memory 256MB,1GB]
 *
 * runs, each in its own child: node_runs and flow_runs, each with its ORDER BY (as writeReplayParquet
 * up to 9377d93), without it on one thread (as at 6b12f8e), and without it with ROW_GROUP_SIZE 2048.
 */
import { spawn } from 'node:child_process';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { FLOW_RUN_COLUMNS, NODE_RUN_COLUMNS, type ReplayColumn } from '../../core/replay-schema.js';
import { sqlIdent, sqlString } from '../../core/sql.js';
import { openStoreReader, type StoreReader } from '../../core/store/reader.js';
import { SHARD_HASH_SQL } from '../../replayer/source.js';

const CALL = `{'upstream': upstream, 'method': method, 'path': path, 'response_status': response_status, 'response_body': response_body}`;
const COLUMNS = `d.delivery_id, d.source, d.event, d.action, epoch_us(d.received_at)::DOUBLE AS received_at_us, d.headers::VARCHAR AS headers, d.body, d.body_encoding, d.content_type, d.repository`;

/**
 * streamDeliveries' query (replayer/source.ts), with its WHERE and ORDER BY as parameters; `calls` adds a
 * condition on the calls (exchanges, effects) before the semi-join.
 */
function streamQuery(where: string, order: boolean, calls = ''): string {
  return `WITH d AS (SELECT * FROM deliveries WHERE rejected IS NULL ${where ? `AND ${where}` : ''}),
          r AS (SELECT delivery_id, list(${CALL} ORDER BY observed_at) AS reads
                FROM exchanges WHERE ${calls ? `${calls} AND ` : ''}delivery_id IN (SELECT delivery_id FROM d) GROUP BY delivery_id),
          w AS (SELECT delivery_id, list(${CALL} ORDER BY observed_at) AS writes
                FROM effects WHERE ${calls ? `${calls} AND ` : ''}delivery_id IN (SELECT delivery_id FROM d) GROUP BY delivery_id)
     SELECT ${COLUMNS}, r.reads, w.writes
     FROM d LEFT JOIN r USING (delivery_id) LEFT JOIN w USING (delivery_id)
     ${order ? 'ORDER BY d.received_at, d.delivery_id' : ''}`;
}

const VARIANTS: Record<string, string | null> = {
  scan: `SELECT ${COLUMNS} FROM deliveries d WHERE rejected IS NULL`,
  sort: `SELECT ${COLUMNS} FROM deliveries d WHERE rejected IS NULL ORDER BY d.received_at, d.delivery_id`,
  'sort-keys': `SELECT delivery_id, epoch_us(received_at) FROM deliveries ORDER BY received_at, delivery_id`,
  reads: `SELECT delivery_id, list(${CALL} ORDER BY observed_at) AS reads FROM exchanges GROUP BY delivery_id`,
  writes: `SELECT delivery_id, list(${CALL} ORDER BY observed_at) AS writes FROM effects GROUP BY delivery_id`,
  'no-order': streamQuery('', false),
  full: streamQuery('', true),
  shard: streamQuery(`${SHARD_HASH_SQL} % 2 = 0`, true),
  windowed: null,
  'windowed-t': null,
};

interface Outcome {
  variant: string;
  memoryLimit: string;
  rows: number;
  firstRowSeconds: number | null;
  seconds: number;
  maxRssMiB: number;
  maxSpillMiB: number;
  windows?: number;
  error: string | null;
}

function dirBytes(dir: string): number {
  let total = 0;
  try {
    for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
      if (e.isFile()) total += statSync(join(e.parentPath, e.name), { throwIfNoEntry: false })?.size ?? 0;
    }
  } catch {
    // not there (yet)
  }
  return total;
}

async function drain(reader: StoreReader, sql: string, params: unknown[], onFirst: () => void): Promise<number> {
  const result = await reader.conn.stream(sql, params as never);
  let n = 0;
  for await (const rows of result.yieldRowsJs()) {
    if (n === 0 && rows.length > 0) onFirst();
    n += rows.length;
  }
  return n;
}

/** The prototype: windows of `size` deliveries by received_at, each one queried, joined and sorted on its own. */
async function windowed(reader: StoreReader, size: number, onFirst: () => void, callSlack: boolean): Promise<{ rows: number; windows: number }> {
  // Narrow first pass: every size-th received_at (8 bytes a row to sort, spills easily).
  const bounds: number[] = [];
  const keys = await reader.conn.stream(`SELECT epoch_us(received_at)::DOUBLE AS t FROM deliveries ORDER BY t`);
  let i = 0;
  for await (const rows of keys.yieldRowsJs()) {
    for (const [t] of rows as [number][]) {
      if (i % size === 0 && bounds.at(-1) !== t) bounds.push(t);
      i++;
    }
  }
  const query = streamQuery(
    `received_at >= make_timestamp($1::BIGINT) AND received_at < make_timestamp($2::BIGINT)`,
    true,
    callSlack ? `observed_at >= make_timestamp($1::BIGINT) - INTERVAL 1 HOUR AND observed_at < make_timestamp($2::BIGINT) + INTERVAL 1 HOUR` : '',
  );
  let n = 0;
  for (let w = 0; w < bounds.length; w++) {
    const from = bounds[w]!;
    // The last window is open-ended; 9e15 µs (year 2255) stays inside DuckDB's timestamp range.
    const to = w + 1 < bounds.length ? bounds[w + 1]! : 9e15;
    n += await drain(reader, query, [from, to], () => {
      if (n === 0) onFirst();
    });
  }
  return { rows: n, windows: bounds.length };
}

/** The final COPY's statements (as replayer/output/parquet.ts writes them), with or without the ORDER BY. */
const COPIES: Record<string, { cols: ReplayColumn[]; prefix: string; order: string | null; rowGroup?: number }> = {
  'node_runs sorted': { cols: NODE_RUN_COLUMNS, prefix: 'node_runs', order: 'delivery_id, flow, seq, iteration NULLS FIRST' },
  'node_runs unsorted': { cols: NODE_RUN_COLUMNS, prefix: 'node_runs', order: null },
  'node_runs unsorted rg2048': { cols: NODE_RUN_COLUMNS, prefix: 'node_runs', order: null, rowGroup: 2048 },
  'flow_runs sorted': { cols: FLOW_RUN_COLUMNS, prefix: 'flow_runs', order: 'received_at, delivery_id, flow' },
  'flow_runs unsorted': { cols: FLOW_RUN_COLUMNS, prefix: 'flow_runs', order: null },
  'flow_runs unsorted rg2048': { cols: FLOW_RUN_COLUMNS, prefix: 'flow_runs', order: null, rowGroup: 2048 },
};

async function copyChild(staging: string, variant: string, memoryLimit: string): Promise<void> {
  const c = COPIES[variant]!;
  const spill = join(staging, `tmp-diagnose-${process.pid}`);
  const target = join(staging, `diagnose-${process.pid}.parquet`);
  const parts = readdirSync(join(staging, 'parts')).filter((f) => f.startsWith(`${c.prefix}-`)).map((f) => join(staging, 'parts', f));
  const struct = `{${c.cols.map((col) => `${sqlString(col.name)}: ${sqlString(col.type === 'JSON' ? 'VARCHAR' : col.type)}`).join(', ')}}`;
  const select = c.cols.map((col) => (col.type === 'JSON' ? `${sqlIdent(col.name)}::JSON AS ${sqlIdent(col.name)}` : sqlIdent(col.name))).join(', ');
  // As replay() at 6b12f8e: one thread (file order kept), no sort for the unsorted variants.
  const db = await DuckDBInstance.create(':memory:', { memory_limit: memoryLimit, temp_directory: spill, ...(c.order ? {} : { threads: '1' }) });
  const conn = await db.connect();
  let maxSpill = 0;
  const timer = setInterval(() => (maxSpill = Math.max(maxSpill, dirBytes(spill))), 200);
  const t0 = performance.now();
  const out: Outcome = { variant, memoryLimit, rows: 0, firstRowSeconds: null, seconds: 0, maxRssMiB: 0, maxSpillMiB: 0, error: null };
  try {
    const r = await conn.run(
      `COPY (SELECT ${select} FROM read_json([${parts.map(sqlString).join(', ')}], format = 'newline_delimited', columns = ${struct})${c.order ? ` ORDER BY ${c.order}` : ''}) ` +
        `TO ${sqlString(target)} (FORMAT parquet, COMPRESSION zstd${c.rowGroup ? `, ROW_GROUP_SIZE ${c.rowGroup}` : ''})`,
    );
    out.rows = Number(r.rowsChanged);
  } catch (err) {
    out.error = (err as Error).message.split('\n')[0]!;
  } finally {
    clearInterval(timer);
    conn.closeSync();
    db.closeSync();
    rmSync(spill, { recursive: true, force: true });
    rmSync(target, { force: true });
  }
  out.seconds = (performance.now() - t0) / 1000;
  out.maxRssMiB = process.resourceUsage().maxRSS / 1024;
  out.maxSpillMiB = maxSpill / 2 ** 20;
  process.stdout.write(JSON.stringify(out) + '\n');
}

async function child(store: string, variant: string, memoryLimit: string, window: number): Promise<void> {
  if (variant in COPIES) return copyChild(store, variant, memoryLimit);
  const spill = join(tmpdir(), `hookshadow-diagnose-${process.pid}`);
  const reader = await openStoreReader(store);
  const t0 = performance.now();
  let first: number | null = null;
  let maxSpill = 0;
  const timer = setInterval(() => (maxSpill = Math.max(maxSpill, dirBytes(spill))), 200);
  const out: Outcome = { variant, memoryLimit, rows: 0, firstRowSeconds: null, seconds: 0, maxRssMiB: 0, maxSpillMiB: 0, error: null };
  try {
    await reader.conn.run(`SET threads = 1; SET memory_limit = '${memoryLimit}'; SET temp_directory = '${spill}'; SET preserve_insertion_order = false`);
    const onFirst = () => (first ??= performance.now());
    if (variant.startsWith('windowed')) Object.assign(out, await windowed(reader, window, onFirst, variant === 'windowed-t'));
    else out.rows = await drain(reader, VARIANTS[variant]!, [], onFirst);
  } catch (err) {
    out.error = (err as Error).message.split('\n')[0]!;
  } finally {
    clearInterval(timer);
    reader.close();
    rmSync(spill, { recursive: true, force: true });
  }
  out.seconds = (performance.now() - t0) / 1000;
  out.firstRowSeconds = first === null ? null : (first - t0) / 1000;
  out.maxRssMiB = process.resourceUsage().maxRSS / 1024;
  out.maxSpillMiB = maxSpill / 2 ** 20;
  process.stdout.write(JSON.stringify(out) + '\n');
}

function runChild(store: string, variant: string, memoryLimit: string, window: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [fileURLToPath(import.meta.url), '--child', store, variant, memoryLimit, String(window)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    p.stdout.on('data', (b: Buffer) => (text += b.toString()));
    p.on('exit', (code, signal) => {
      try {
        resolve(JSON.parse(text.trim().split('\n').at(-1)!) as Outcome);
      } catch {
        resolve({ variant, memoryLimit, rows: 0, firstRowSeconds: null, seconds: NaN, maxRssMiB: NaN, maxSpillMiB: NaN, error: `child exited ${code ?? signal}` });
      }
    });
  });
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') return child(argv[1]!, argv[2]!, argv[3]!, Number(argv[4]));
  const arg = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const copyParts = arg('copy-parts');
  const store = copyParts ?? arg('store');
  if (!store) throw new Error('--store DIR is required (a store written by bench/replay/make-store.js), or --copy-parts STAGING_DIR');
  const known = copyParts ? COPIES : VARIANTS;
  const variants = (arg('variants') ?? Object.keys(known).join(',')).split(',');
  for (const v of variants) if (!(v in known)) throw new Error(`unknown variant ${v}; use ${Object.keys(known).join(',')}`);
  const limits = (arg('memory') ?? '192MB').split(',');
  const window = Number(arg('window') ?? 5000);
  console.log(`| variant | memory_limit | rows | first row s | total s | peak RSS MiB | max spill MiB | result |`);
  console.log(`|---|---:|---:|---:|---:|---:|---:|---|`);
  for (const memoryLimit of limits) {
    for (const v of variants) {
      const o = await runChild(store, v, memoryLimit, window);
      const f = (x: number | null, d = 1) => (x === null || !Number.isFinite(x) ? '—' : x.toFixed(d));
      console.log(
        `| ${v}${o.windows ? ` (${o.windows} windows of ${window})` : ''} | ${memoryLimit} | ${o.rows.toLocaleString('en')} | ${f(o.firstRowSeconds, 2)} | ${f(o.seconds, 2)} | ${f(o.maxRssMiB, 0)} | ${f(o.maxSpillMiB, 0)} | ${o.error ?? 'ok'} |`,
      );
    }
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}

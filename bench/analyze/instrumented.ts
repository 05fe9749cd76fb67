/**
 * `analyze()` (analyzer/analyze.ts) in this process, instrumented, for the analyze benchmark's phase
 * timings and what-if variants. Started by bench/analyze/run.ts under /usr/bin/time:
 *
 *   node dist/bench/analyze/instrumented.js '<json InstrumentedSpec>'
 *
 * Every DuckDB connection the process opens is wrapped (DuckDBInstance.prototype.connect), so each
 * statement analyze runs is timed (run, runAndReadAll, stream: for a stream, until its first chunk and
 * until its last, with the rows it yielded), without changing a line of the analyzer.
 *
 * `appenderOwnConnection` is a what-if too: see InstrumentedSpec.
 * `settings` is a what-if, not hookshadow as shipped: statements run right after analyze sets its
 * memory limit (e.g. `SET threads = 1`, which let the matching query finish under analyze's 512 MB
 * before 089bcf3, where two threads mostly ran out of memory).
 *
 * Prints one JSON line: {"event":"result", ...}.
 */
import { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { analyze } from '../../analyzer/analyze.js';

export interface InstrumentedSpec {
  store: string;
  replay: string;
  /** A what-if: statements run right after analyze sets its memory limit (e.g. `SET threads = 1`). */
  settings?: string | null;
  /**
   * A what-if: the divergence work table is an ordinary table and its appender runs on a second
   * connection, so the appender's automatic flushes (every 204,800 rows) cannot end the stream
   * the matching rows come from on the first.
   */
  appenderOwnConnection?: boolean;
}

export interface StatementTiming {
  /** The statement, whitespace collapsed, cut to 90 characters. */
  sql: string;
  method: 'run' | 'runAndReadAll' | 'stream';
  /** Since analyze() was called. */
  startedAt: number;
  /** run / runAndReadAll: until the result; stream: until the stream was handed back (query prepared and started). */
  seconds: number;
  /** Streams: until the first chunk, until the last (or until the consumer stopped), rows yielded. */
  firstChunkSeconds?: number;
  streamSeconds?: number;
  rows?: number;
  /** Streams: time inside the result's iterator (DuckDB's next chunk, converted to JS rows), first chunk included; time the consumer spent between chunks. */
  fetchSeconds?: number;
  consumerSeconds?: number;
}

const statements: StatementTiming[] = [];
let t0 = performance.now();
const since = () => (performance.now() - t0) / 1000;
const label = (sql: string) => sql.replace(/\s+/g, ' ').trim().slice(0, 90);

type Streamed = Awaited<ReturnType<DuckDBConnection['stream']>>;

function timeStream(result: Streamed, entry: StatementTiming, started: number): Streamed {
  const original = result.yieldRowsJs.bind(result);
  result.yieldRowsJs = async function* () {
    let rows = 0;
    let fetchMs = 0;
    let consumerMs = 0;
    const it = original();
    try {
      for (;;) {
        const a = performance.now();
        const next = await it.next();
        fetchMs += performance.now() - a;
        if (next.done) break;
        if (entry.firstChunkSeconds === undefined) entry.firstChunkSeconds = (performance.now() - started) / 1000;
        rows += next.value.length;
        const b = performance.now();
        yield next.value; // resumes when the consumer asks for the next chunk
        consumerMs += performance.now() - b;
      }
    } finally {
      entry.streamSeconds = (performance.now() - started) / 1000;
      entry.rows = rows;
      entry.fetchSeconds = fetchMs / 1000;
      entry.consumerSeconds = consumerMs / 1000;
    }
  } as typeof result.yieldRowsJs;
  return result;
}

function instrument(conn: DuckDBConnection, spec: InstrumentedSpec, connect: () => Promise<DuckDBConnection>): void {
  const run = conn.run.bind(conn);
  const runAndReadAll = conn.runAndReadAll.bind(conn);
  const stream = conn.stream.bind(conn);
  // runAndReadAll calls run: count the statement once.
  let depth = 0;
  const timed = <T>(method: StatementTiming['method'], sql: string, call: () => Promise<T>): Promise<T> => {
    if (depth > 0) return call();
    depth++;
    const started = performance.now();
    const entry: StatementTiming = { sql: label(sql), method, startedAt: since(), seconds: 0 };
    statements.push(entry);
    return call().finally(() => {
      depth--;
      entry.seconds = (performance.now() - started) / 1000;
    });
  };
  const createAppender = conn.createAppender.bind(conn);
  let appenderConn: DuckDBConnection | null = null;
  if (spec.appenderOwnConnection) {
    conn.createAppender = (async (table: string, schema?: string | null, catalog?: string | null) => {
      if (catalog !== 'temp') return createAppender(table, schema, catalog);
      appenderConn ??= await connect();
      return appenderConn.createAppender(table, schema);
    }) as typeof conn.createAppender;
  }
  conn.run = ((sql: string, values?: never) => {
    let text = spec.settings && /^SET memory_limit/.test(sql) ? `${sql}; ${spec.settings}` : sql;
    if (spec.appenderOwnConnection) text = text.replace(/^CREATE OR REPLACE TEMP TABLE divergence_rows\b/, 'CREATE OR REPLACE TABLE divergence_rows');
    return timed('run', text, () => run(text, values));
  }) as typeof conn.run;
  conn.runAndReadAll = ((sql: string, values?: never) => timed('runAndReadAll', sql, () => runAndReadAll(sql, values))) as typeof conn.runAndReadAll;
  conn.stream = (async (sql: string, values?: never) => {
    const started = performance.now();
    const entry: StatementTiming = { sql: label(sql), method: 'stream', startedAt: since(), seconds: 0 };
    statements.push(entry);
    const result = await stream(sql, values);
    entry.seconds = (performance.now() - started) / 1000;
    return timeStream(result, entry, started);
  }) as typeof conn.stream;
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '{}') as InstrumentedSpec;
  const connect = DuckDBInstance.prototype.connect;
  DuckDBInstance.prototype.connect = async function (this: DuckDBInstance) {
    const conn = await connect.call(this);
    instrument(conn, spec, () => connect.call(this));
    return conn;
  };
  const progress: [number, number][] = [];
  t0 = performance.now();
  let result: Awaited<ReturnType<typeof analyze>>;
  try {
    result = await analyze({ store: spec.store, replay: spec.replay, onProgress: (n) => progress.push([since(), n]) });
  } catch (err) {
    // A failure is a figure too: which statement, after how long.
    // The statement that was running: unfinished, else the last one before any clean-up (DROP) in `finally` blocks.
    const failed = [...statements].reverse().find((s) => s.seconds === 0 && s.streamSeconds === undefined) ?? [...statements].reverse().find((s) => !s.sql.startsWith('DROP')) ?? null;
    process.stdout.write(JSON.stringify({ event: 'result', error: String((err as Error).message ?? err).split('\n')[0], failedAfterSeconds: since(), failedStatement: failed, maxRssKiB: process.resourceUsage().maxRSS, statements }) + '\n');
    process.exitCode = 1;
    return;
  }
  const seconds = since();
  const ru = process.resourceUsage();
  process.stdout.write(
    JSON.stringify({
      event: 'result',
      seconds,
      maxRssKiB: ru.maxRSS,
      totals: result.totals,
      countsByClass: result.counts_by_class,
      /** Deliveries compared so far, every 4,096 (computeDivergences' onProgress): first and last. */
      progress: progress.length ? { first: progress[0], last: progress.at(-1), calls: progress.length } : null,
      statements,
    }) + '\n',
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

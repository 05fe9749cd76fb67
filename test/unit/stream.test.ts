import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DuckDBConnection } from '@duckdb/node-api';
import { streamToSentinel, streamVerified } from '../../core/store/stream.js';

// One database for the file: each test uses its own tables.
let db: DuckDBInstance;
let conn: DuckDBConnection;
beforeAll(async () => {
  db = await DuckDBInstance.create(':memory:');
  conn = await db.connect();
  await conn.run('SET threads = 1');
});
afterAll(() => {
  conn.closeSync();
  db.closeSync();
});

describe('streamVerified', () => {

  it('throws when the query fails midway, where a plain DuckDB stream ends as if complete', async () => {
    const failing = `SELECT CASE WHEN i < 3000000 THEN i ELSE error('boom') END AS x FROM range(6000000) t(i)`;
    // The hazard this guards against: the client's stream stops early and says nothing.
    let plain = 0;
    for await (const rows of (await conn.stream(failing)).yieldRowsJs()) plain += rows.length;
    expect(plain).toBeGreaterThan(0);
    expect(plain).toBeLessThan(6_000_000);

    let seen = 0;
    await expect(
      (async () => {
        for await (const rows of streamVerified(conn, failing)) seen += rows.length;
      })(),
    ).rejects.toThrow(/boom/);
    expect(seen).toBe(0);
  });

  it('yields every row in the query\'s order, with bound parameters, and leaves no table behind', async () => {
    const got: number[] = [];
    for await (const rows of streamVerified(conn, 'SELECT i::INTEGER AS i FROM range($1::BIGINT) t(i) ORDER BY i DESC', [5000])) got.push(...rows.map((r) => r[0] as number));
    expect(got).toHaveLength(5000);
    expect(got[0]).toBe(4999);
    expect(got.every((v, k) => k === 0 || v < got[k - 1]!)).toBe(true);
    const tables = (await conn.runAndReadAll(`SELECT count(*)::INTEGER FROM duckdb_tables() WHERE table_name LIKE 'hookshadow_stream_%'`)).getRowsJS();
    expect(tables[0]![0]).toBe(0);
  });

  it('is cut short by an appender flushing on the same connection, and not by one on its own connection', async () => {
    // A DuckDB appender flushes every 204,800 rows by running a statement; on the streaming connection
    // that ends the stream. The analyzer appends divergences while it streams, so it appends elsewhere.
    const run = async (appendConn: DuckDBConnection) => {
      await conn.run('CREATE OR REPLACE TABLE sink (i BIGINT)');
      const appender = await appendConn.createAppender('sink');
      let seen = 0;
      try {
        for await (const rows of streamVerified(conn, 'SELECT i FROM range(300000) t(i) ORDER BY i')) {
          for (const [i] of rows) {
            appender.appendBigInt(i as bigint);
            appender.endRow();
          }
          seen += rows.length;
        }
      } finally {
        appender.closeSync();
      }
      return seen;
    };
    await expect(run(conn)).rejects.toThrow(/HS_ERR_QUERY_INCOMPLETE|ended a result after/);
    const own = await db.connect();
    expect(await run(own)).toBe(300000);
    expect((await conn.runAndReadAll('SELECT count(*)::INTEGER FROM sink')).getRowsJS()[0]![0]).toBe(300000);
    own.closeSync();
  });
});

describe('streamToSentinel', () => {
  // The rows 0..n-1, then the sentinel (NULL, sorted last).
  const withSentinel = (n: number, value = 'i') => `SELECT ${value} AS x FROM (SELECT i FROM range(${n}) t(i) UNION ALL SELECT NULL) ORDER BY i NULLS LAST`;

  it('yields every row in order and not the sentinel, however the chunks fall', async () => {
    for (const n of [0, 1, 2047, 2048, 2049, 100_000]) {
      const got: bigint[] = [];
      for await (const rows of streamToSentinel(conn, withSentinel(n))) got.push(...rows.map((r) => r[0] as bigint));
      expect(got).toHaveLength(n);
      expect(got.every((v, k) => v === BigInt(k))).toBe(true);
    }
  });

  it('reports a result that fails midway, which a plain stream would end as if complete', async () => {
    const failing = withSentinel(6_000_000, `CASE WHEN i IS NULL THEN NULL WHEN i < 3000000 THEN i ELSE error('boom') END`);
    let seen = 0;
    await expect(
      (async () => {
        for await (const rows of streamToSentinel(conn, failing)) seen += rows.length;
      })(),
    ).rejects.toThrow(/HS_ERR_QUERY_INCOMPLETE|boom/);
    expect(seen).toBeLessThan(6_000_000);
  });

  it('reports a stream cut short by a statement on its connection (an appender flushing there)', async () => {
    await conn.run('CREATE OR REPLACE TABLE sink2 (i BIGINT)');
    const appender = await conn.createAppender('sink2');
    let seen = 0;
    await expect(
      (async () => {
        for await (const rows of streamToSentinel(conn, withSentinel(300_000))) {
          for (const [i] of rows) {
            appender.appendBigInt(i as bigint);
            appender.endRow();
          }
          seen += rows.length;
        }
      })(),
    ).rejects.toMatchObject({ code: 'HS_ERR_QUERY_INCOMPLETE', message: expect.stringMatching(/^DuckDB ended a result after \d+ rows, before its last/) });
    appender.closeSync();
    expect(seen).toBeLessThan(300_000);
  });
});

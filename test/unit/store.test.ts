import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CAPTURE_FORMAT_VERSION, type CallRecord, type DeliveryRecord } from '../../core/capture-schema.js';
import { formatUs } from '../../core/clock.js';
import { storePaths } from '../../core/store/layout.js';
import { openStoreReader } from '../../core/store/reader.js';
import { repairSegment, rollSegment } from '../../core/store/roll.js';
import { openCaptureWriter } from '../../core/store/writer.js';
import { queryStore, tempDir } from '../helpers.js';

function delivery(over: Partial<DeliveryRecord> = {}): DeliveryRecord {
  return {
    t: 'delivery',
    schema_version: CAPTURE_FORMAT_VERSION,
    delivery_id: 'd-1',
    delivery_id_origin: 'header',
    source: 'github',
    event: 'issues',
    action: 'assigned',
    received_at_us: Date.UTC(2026, 10, 21, 23, 59, 59) * 1000 + 123456,
    headers: { 'x-github-event': 'issues' },
    body: '{"action":"assigned"}',
    body_encoding: 'utf8',
    body_size: 21,
    body_sha256: 'ab',
    content_type: 'application/json',
    parse_error: null,
    repository: 'octo/repo',
    issue_number: 12,
    signature_valid: true,
    rejected: null,
    redacted: ['header:authorization'],
    mode: 'passive',
    legacy_status: null,
    legacy_latency_us: null,
    legacy_error: null,
    recorder_instance: 'test',
    ...over,
  };
}

function effect(over: Partial<CallRecord> = {}): CallRecord {
  return {
    t: 'effect',
    schema_version: CAPTURE_FORMAT_VERSION,
    call_id: 'e-1',
    delivery_id: 'd-1',
    correlation: 'exact',
    observed_at_us: Date.UTC(2026, 10, 22, 0, 0, 0) * 1000 + 1,
    origin: 'proxy',
    upstream: 'github',
    method: 'POST',
    path: '/repos/octo/repo/issues/12/comments',
    request_headers: {},
    request_body: '{"body":"On it"}',
    request_body_encoding: 'utf8',
    response_status: 201,
    response_headers: {},
    response_body: '{}',
    response_body_encoding: 'utf8',
    response_truncated: false,
    latency_us: 900,
    error: null,
    redacted: [],
    recorder_instance: 'test',
    ...over,
  };
}

async function writeAll(store: string, records: (DeliveryRecord | CallRecord)[]) {
  const writer = await openCaptureWriter({ store, instance: 'test', maxSegmentBytes: 1 << 20, maxSegmentAgeMs: 60_000 });
  await Promise.all(records.map((r) => writer.append(r)));
  await writer.close();
}

describe('capture store', () => {
  it('rolls records into Parquet partitioned by UTC day, readable with one glob', async () => {
    const store = await tempDir();
    await writeAll(store, [delivery(), effect(), { ...effect(), t: 'exchange', call_id: 'x-1', method: 'GET' }]);
    expect(await readdir(join(store, 'deliveries'))).toEqual(['date=2026-11-21']);
    expect(await readdir(join(store, 'effects'))).toEqual(['date=2026-11-22']);
    const [d] = await queryStore(store, `SELECT delivery_id, strftime(received_at, '%Y-%m-%d %H:%M:%S.%f') AS at, headers, redacted, signature_valid, date::VARCHAR AS date FROM deliveries`);
    expect(d).toEqual({
      delivery_id: 'd-1',
      at: '2026-11-21 23:59:59.123456',
      headers: '{"x-github-event":"issues"}',
      redacted: ['header:authorization'],
      signature_valid: true,
      date: '2026-11-21',
    });
    const [e] = await queryStore(store, `SELECT effect_id, correlation, response_status FROM effects`);
    expect(e).toEqual({ effect_id: 'e-1', correlation: 'exact', response_status: 201 });
    const [x] = await queryStore(store, `SELECT exchange_id, method FROM exchanges`);
    expect(x).toEqual({ exchange_id: 'x-1', method: 'GET' });
  });

  it('round-trips any delivery body and headers byte for byte through WAL and Parquet', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ body: fc.string({ unit: 'binary' }), header: fc.string({ unit: 'grapheme' }), action: fc.option(fc.string()) }), { minLength: 1, maxLength: 20 }),
        async (rows) => {
          const store = await tempDir();
          const records = rows.map((r, i) => delivery({ delivery_id: `d-${i}`, body: r.body, headers: { 'x-test': r.header }, action: r.action }));
          await writeAll(store, records);
          const back = await queryStore<{ delivery_id: string; body: string; headers: string; action: string | null }>(store, `SELECT delivery_id, body, headers, action FROM deliveries`);
          const byId = new Map(back.map((b) => [b.delivery_id, b]));
          for (const r of records) {
            const b = byId.get(r.delivery_id)!;
            expect(b.body).toBe(r.body);
            expect(JSON.parse(b.headers)).toEqual(r.headers);
            expect(b.action).toBe(r.action);
          }
        },
      ),
      { numRuns: 15, seed: 42 },
    );
  });

  it('rolls a body near the 25 MiB limit within the roller memory cap, sizing the JSON reader to its largest record', async () => {
    const store = await tempDir();
    const big = 'é"\n\\'.repeat(6 * 1024 * 1024); // 24 Mi characters, all needing escaping or multi-byte UTF-8
    await writeAll(store, [delivery({ delivery_id: 'big', body: big }), delivery({ delivery_id: 'small' })]);
    const rows = await queryStore<{ delivery_id: string; n: number }>(store, 'SELECT delivery_id, length(body)::INTEGER AS n FROM deliveries ORDER BY 1');
    expect(rows).toEqual([
      { delivery_id: 'big', n: big.length },
      { delivery_id: 'small', n: 21 },
    ]);
  });

  it('rolls one segment holding several near-limit bodies', async () => {
    const store = await tempDir();
    const big = 'é"'.repeat(12 * 1024 * 1024); // 24 Mi characters: multi-byte or escaped
    await writeAll(store, [1, 2, 3, 4, 5].map((i) => delivery({ delivery_id: `big-${i}`, body: big })));
    expect(await queryStore(store, 'SELECT count(*)::INTEGER AS n, min(length(body))::INTEGER AS len FROM deliveries')).toEqual([{ n: 5, len: big.length }]);
  });

  it('rolls the same segment twice without duplicating rows (crash between rename and unlink)', async () => {
    const store = await tempDir();
    const walDir = storePaths.wal(store, 'test');
    await mkdir(walDir, { recursive: true });
    const segment = join(walDir, '0190a000-0000-7000-8000-000000000001.wal');
    const text = JSON.stringify(delivery()) + '\n';
    await writeFile(segment, text);
    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    await rollSegment(conn, store, 'test', segment, text.length);
    await writeFile(segment, text);
    await rollSegment(conn, store, 'test', segment, text.length);
    conn.closeSync();
    db.closeSync();
    await writeFile(storePaths.manifest(store), JSON.stringify({ format: 'hookshadow-capture', version: 1 }));
    expect(await queryStore(store, 'SELECT count(*)::INTEGER AS n FROM deliveries')).toEqual([{ n: 1 }]);
  });

  it('moves a torn last line and unreadable lines to _quarantine, keeping the valid records', async () => {
    const store = await tempDir();
    const segment = join(store, 'seg.wal');
    const good = JSON.stringify(delivery());
    await writeFile(segment, `${good}\nnot json\n${good}\n{"t":"deliv`);
    expect(await repairSegment(store, segment)).toEqual({ records: 2, quarantined: 2, maxRecordBytes: good.length + 1 });
    expect(await readFile(segment, 'utf8')).toBe(`${good}\n${good}\n`);
    expect(await readFile(join(store, '_quarantine', 'seg.ndjson'), 'utf8')).toBe('not json\n{"t":"deliv\n');
  });

  it('recovers segments a crashed writer left behind when the writer is next opened', async () => {
    const store = await tempDir();
    const walDir = storePaths.wal(store, 'test');
    await mkdir(walDir, { recursive: true });
    await writeFile(join(walDir, '0190a000-0000-7000-8000-000000000002.wal'), JSON.stringify(delivery({ delivery_id: 'left-behind' })) + '\n{"torn');
    await writeFile(join(walDir, 'LOCK'), JSON.stringify({ pid: 999_999_999, host: (await import('node:os')).hostname() }));
    await writeAll(store, [delivery({ delivery_id: 'new' })]);
    const ids = await queryStore<{ delivery_id: string }>(store, 'SELECT delivery_id FROM deliveries ORDER BY 1');
    expect(ids.map((r) => r.delivery_id)).toEqual(['left-behind', 'new']);
    expect(await readdir(walDir)).toEqual([]);
  });

  it('refuses a second live writer with the same instance id', async () => {
    const store = await tempDir();
    const first = await openCaptureWriter({ store, instance: 'same', maxSegmentBytes: 1 << 20, maxSegmentAgeMs: 60_000 });
    await expect(openCaptureWriter({ store, instance: 'same', maxSegmentBytes: 1 << 20, maxSegmentAgeMs: 60_000 })).rejects.toMatchObject({
      code: 'HS_ERR_CONFIG_INVALID',
      message: expect.stringMatching(/already running/),
    });
    await first.close();
  });

  it('refuses a store whose manifest has a newer format version', async () => {
    const store = await tempDir();
    await writeFile(storePaths.manifest(store), JSON.stringify({ format: 'hookshadow-capture', version: CAPTURE_FORMAT_VERSION + 1 }));
    await expect(openStoreReader(store)).rejects.toMatchObject({ code: 'HS_ERR_STORE_VERSION', message: expect.stringMatching(/Upgrade hookshadow/) });
  });

  it('refuses a Parquet file written by a newer format version, naming the file', async () => {
    const store = await tempDir();
    await writeAll(store, [delivery()]);
    const dir = join(store, 'deliveries', 'date=2026-11-21');
    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    await conn.run(`COPY (SELECT 1 AS x) TO '${join(dir, 'future.parquet')}' (FORMAT parquet, KV_METADATA {hookshadow_format_version: '${CAPTURE_FORMAT_VERSION + 1}'})`);
    conn.closeSync();
    db.closeSync();
    await expect(openStoreReader(store)).rejects.toMatchObject({ code: 'HS_ERR_STORE_VERSION', message: expect.stringContaining('future.parquet') });
  });

  it('names a corrupt Parquet file instead of failing vaguely', async () => {
    const store = await tempDir();
    await writeAll(store, [delivery()]);
    const dir = join(store, 'deliveries', 'date=2026-11-21');
    await writeFile(join(dir, 'broken.parquet'), 'PAR1 this is not parquet');
    await expect(openStoreReader(store)).rejects.toMatchObject({ code: 'HS_ERR_STORE_CORRUPT', message: expect.stringContaining('broken.parquet') });
  });

  it('refuses a store path with glob characters, which DuckDB would read as a pattern', async () => {
    const dir = await tempDir();
    await expect(openCaptureWriter({ store: join(dir, 'a[1]'), instance: 'test', maxSegmentBytes: 1 << 20, maxSegmentAgeMs: 60_000 })).rejects.toMatchObject({
      code: 'HS_ERR_CONFIG_INVALID',
    });
    await expect(openStoreReader(join(dir, 'b*'))).rejects.toMatchObject({ code: 'HS_ERR_CONFIG_INVALID' });
  });

  it('says clearly when a directory is not a store', async () => {
    const dir = await tempDir();
    await expect(openStoreReader(dir)).rejects.toMatchObject({ code: 'HS_ERR_STORE_UNREADABLE' });
  });

  it('formats microsecond timestamps as ISO-8601', () => {
    expect(formatUs(Date.UTC(2026, 0, 2, 3, 4, 5, 6) * 1000 + 7)).toBe('2026-01-02T03:04:05.006007Z');
  });
});

describe('capture store, damaged input', () => {
  it('sets aside a leftover segment DuckDB cannot roll, instead of hanging start-up', async () => {
    const store = await tempDir();
    const walDir = storePaths.wal(store, 'test');
    await mkdir(walDir, { recursive: true });
    // Valid JSON with the right record type, but a timestamp that is not a number: the roll itself fails.
    const bad = join(walDir, '0190a000-0000-7000-8000-000000000003.wal');
    await writeFile(bad, JSON.stringify({ ...delivery(), received_at_us: 'yesterday' }) + '\n');
    const quarantined: string[] = [];
    const writer = await openCaptureWriter({
      store,
      instance: 'test',
      maxSegmentBytes: 1 << 20,
      maxSegmentAgeMs: 60_000,
      events: { quarantined: (_segment, movedTo) => quarantined.push(movedTo) },
    });
    await writer.append(delivery({ delivery_id: 'after' }));
    await writer.close();
    expect(quarantined).toEqual([join(store, '_quarantine', '0190a000-0000-7000-8000-000000000003.wal')]);
    expect(await readFile(quarantined[0]!, 'utf8')).toContain('yesterday');
    expect(await queryStore(store, 'SELECT delivery_id FROM deliveries')).toEqual([{ delivery_id: 'after' }]);
  });

  it('ignores stray files among the partitions', async () => {
    const store = await tempDir();
    await writeAll(store, [delivery()]);
    await writeFile(join(store, 'deliveries', 'date=notes.txt'), 'hello');
    expect(await queryStore(store, 'SELECT count(*)::INTEGER AS n FROM deliveries')).toEqual([{ n: 1 }]);
  });
});

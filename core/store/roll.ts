import { appendFile, mkdir, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { CAPTURE_FORMAT_NAME, CAPTURE_FORMAT_VERSION, TABLES, TABLE_SPECS, type Table } from '../capture-schema.js';
import { sqlString } from '../sql.js';
import { mkdirDurable, storePaths, syncDir, writeFileAtomic } from './layout.js';
import { WAL_SUFFIX } from './wal.js';

const RECORD_TYPES = new Set(Object.values(TABLE_SPECS).map((s) => s.recordType));

/**
 * DuckDB's JSON reader allocates buffers from maximum_object_size up front, so it is
 * sized to the segment's largest record rather than to the largest conceivable one.
 */
function maxObjectSize(maxRecordBytes: number): number {
  return Math.max(1024 * 1024, maxRecordBytes + 1024);
}

/** The `columns` argument of read_json: every field any record type carries, with its type. */
const WAL_COLUMNS = (() => {
  const fields = new Map<string, string>([['t', 'VARCHAR']]);
  for (const table of TABLES) {
    for (const col of TABLE_SPECS[table].columns) {
      if (col.from) fields.set(col.from.field, col.from.type);
      else fields.set(col.name, col.type);
    }
  }
  return `{${[...fields].map(([k, v]) => `${k}: ${sqlString(v)}`).join(', ')}}`;
})();

function selectList(table: Table): string {
  const spec = TABLE_SPECS[table];
  const cols = spec.columns.map((c) => (c.from ? `${c.from.expr(c.from.field)} AS ${c.name}` : c.name));
  const time = spec.columns.find((c) => c.name === spec.timeColumn)!;
  const timeExpr = time.from ? time.from.expr(time.from.field) : time.name;
  return [...cols, `strftime(${timeExpr}, '%Y-%m-%d') AS date`].join(', ');
}

export interface RollResult {
  segment: string;
  files: string[];
  rows: Record<Table, number>;
}

/**
 * Turns one sealed WAL segment into Parquet files, one per table and UTC day, then
 * deletes the segment. File names derive from the segment, so rolling the same
 * segment again after a crash overwrites identical files instead of duplicating rows.
 */
export async function rollSegment(
  conn: DuckDBConnection,
  store: string,
  instance: string,
  segmentPath: string,
  maxRecordBytes: number,
): Promise<RollResult> {
  const segment = basename(segmentPath, WAL_SUFFIX);
  const staging = join(storePaths.staging(store, instance), segment);
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  const rows = { deliveries: 0, effects: 0, exchanges: 0 } as Record<Table, number>;
  // The roll holds the parsed segment in memory, a few times its size: the cap follows the segment
  // (256 MB for a normal one), so a segment of several near-limit bodies still rolls.
  const { size } = await stat(segmentPath);
  await conn.run(`SET memory_limit = '${Math.max(256, Math.ceil((8 * size) / (1024 * 1024)))}MB'`);
  // Parse the segment once, then split it into the three tables (each COPY would otherwise re-read the file).
  await conn.run(
    `CREATE OR REPLACE TEMP TABLE wal_segment AS SELECT * FROM read_json(${sqlString(segmentPath)}, format='newline_delimited', ` +
      `maximum_object_size=${maxObjectSize(maxRecordBytes)}, columns=${WAL_COLUMNS})`,
  );
  try {
    for (const table of TABLES) {
      const target = join(staging, table);
      const result = await conn.run(
        `COPY (SELECT ${selectList(table)} FROM wal_segment WHERE t = ${sqlString(TABLE_SPECS[table].recordType)}) ` +
          // Small row groups: a reader decompresses a whole column chunk at once, so the body column of a
          // 122,880-row group (DuckDB's default) would cost a replay hundreds of MB; 2,048 rows keeps it to a few.
          `TO ${sqlString(target)} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 2048, PARTITION_BY (date), OVERWRITE_OR_IGNORE, ` +
          `FILENAME_PATTERN ${sqlString(`${instance}_${segment}_{i}`)}, ` +
          `KV_METADATA {hookshadow_format: ${sqlString(CAPTURE_FORMAT_NAME)}, hookshadow_format_version: '${CAPTURE_FORMAT_VERSION}', hookshadow_table: ${sqlString(table)}})`,
      );
      rows[table] = Number(result.rowsChanged);
    }
  } finally {
    await conn.run('DROP TABLE IF EXISTS wal_segment');
  }
  const files: string[] = [];
  for (const table of TABLES) {
    const tableDir = join(staging, table);
    const partitions = await readdir(tableDir).catch(() => [] as string[]);
    for (const partition of partitions) {
      const date = partition.replace(/^date=/, '');
      const finalDir = storePaths.partition(store, table, date);
      await mkdirDurable(finalDir);
      for (const file of await readdir(join(tableDir, partition))) {
        const from = join(tableDir, partition, file);
        await fsyncFile(from);
        await rename(from, join(finalDir, file));
        files.push(join(finalDir, file));
      }
      await syncDir(finalDir);
    }
  }
  await unlink(segmentPath);
  await syncDir(storePaths.wal(store, instance));
  await rm(staging, { recursive: true, force: true });
  return { segment: segmentPath, files, rows };
}

async function fsyncFile(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export interface RepairResult {
  records: number;
  quarantined: number;
  /** Bytes of the largest record kept, newline included. */
  maxRecordBytes: number;
}

/**
 * Checks a segment left behind by a crash before it is rolled: a torn last line
 * (never acknowledged) or any unreadable line is moved to `_quarantine/`, never
 * silently dropped, and the segment is rewritten with only valid records.
 */
export async function repairSegment(store: string, segmentPath: string): Promise<RepairResult> {
  const text = await readFile(segmentPath, 'utf8');
  const lines = text.split('\n');
  const good: string[] = [];
  const bad: string[] = [];
  lines.forEach((line, i) => {
    if (line === '') return;
    const torn = i === lines.length - 1; // a complete record always ends in '\n'
    if (!torn && isValidRecord(line)) good.push(line);
    else bad.push(line);
  });
  const maxRecordBytes = good.reduce((m, l) => Math.max(m, Buffer.byteLength(l) + 1), 0);
  if (bad.length > 0) {
    const qdir = storePaths.quarantine(store);
    await mkdir(qdir, { recursive: true });
    await appendFile(join(qdir, `${basename(segmentPath, WAL_SUFFIX)}.ndjson`), bad.map((l) => l + '\n').join(''));
    await writeFileAtomic(segmentPath, good.map((l) => l + '\n').join(''));
  }
  return { records: good.length, quarantined: bad.length, maxRecordBytes };
}

function isValidRecord(line: string): boolean {
  try {
    const rec = JSON.parse(line) as { t?: unknown; schema_version?: unknown };
    return typeof rec.t === 'string' && RECORD_TYPES.has(rec.t as never) && Number.isInteger(rec.schema_version);
  } catch {
    return false;
  }
}

/** Segments of one instance's WAL, oldest first. */
export async function listSegments(store: string, instance: string): Promise<string[]> {
  const dir = storePaths.wal(store, instance);
  const names = await readdir(dir).catch(() => [] as string[]);
  return names
    .filter((n) => n.endsWith(WAL_SUFFIX))
    .sort()
    .map((n) => join(dir, n));
}

/** Moves a segment that cannot be rolled into `_quarantine/`, whole, for a human to look at. */
export async function quarantineSegment(store: string, segmentPath: string): Promise<string> {
  const qdir = storePaths.quarantine(store);
  await mkdir(qdir, { recursive: true });
  const target = join(qdir, basename(segmentPath));
  await rename(segmentPath, target);
  return target;
}

import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { TABLES, TABLE_SPECS, type Table } from '../capture-schema.js';
import { HsError } from '../errors.js';
import { sqlIdent, sqlString } from '../sql.js';
import { assertReadableVersion, assertStorePath, readManifest, storePaths } from './layout.js';

/** A DuckDB connection with the store's tables as views: `deliveries`, `effects`, `exchanges`. */
export interface StoreReader {
  readonly store: string;
  readonly conn: DuckDBConnection;
  /** Runs a query with bound parameters and returns plain JSON-compatible rows. */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Another connection to the same database (closed with the reader), for work that must not interrupt a result streaming on `conn`. */
  connect(): Promise<DuckDBConnection>;
  close(): void;
}

/** The view definition for one table, usable in any DuckDB client (the store's Parquet, one glob, hive-partitioned). */
export function viewSql(store: string, table: Table, hasFiles: boolean): string {
  if (!hasFiles) {
    const cols = TABLE_SPECS[table].columns.map((c) => `NULL::${c.type} AS ${sqlIdent(c.name)}`);
    return `CREATE OR REPLACE VIEW ${sqlIdent(table)} AS SELECT ${cols.join(', ')}, NULL::DATE AS date WHERE false`;
  }
  return `CREATE OR REPLACE VIEW ${sqlIdent(table)} AS SELECT * FROM read_parquet(${sqlString(storePaths.glob(store, table))}, hive_partitioning = true, union_by_name = true)`;
}

/**
 * Opens a capture store for reading. Refuses a store, or any Parquet file in it,
 * written by a newer capture format, and names a corrupt file instead of failing vaguely.
 */
export async function openStoreReader(store: string): Promise<StoreReader> {
  assertStorePath(store);
  const manifest = await readManifest(store);
  if (!manifest) {
    throw new HsError('HS_ERR_STORE_UNREADABLE', `${store} is not a hookshadow store (no store.json). Record or import into it first, or pass the right --store.`);
  }
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  try {
    for (const table of TABLES) {
      const files = await listParquet(store, table);
      for (const file of files) await checkFile(conn, file);
      await conn.run(viewSql(store, table, files.length > 0));
    }
  } catch (err) {
    conn.closeSync();
    db.closeSync();
    throw err;
  }
  const others: DuckDBConnection[] = [];
  return {
    store,
    conn,
    async query<T>(sql: string, params: unknown[] = []) {
      const reader = await conn.runAndReadAll(sql, params as never);
      return reader.getRowObjectsJson() as T[];
    },
    async connect() {
      const extra = await db.connect();
      others.push(extra);
      return extra;
    },
    close() {
      for (const c of others) c.closeSync();
      conn.closeSync();
      db.closeSync();
    },
  };
}

async function listParquet(store: string, table: Table): Promise<string[]> {
  const dir = storePaths.table(store, table);
  const out: string[] = [];
  for (const partition of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (!partition.isDirectory() || !partition.name.startsWith('date=')) continue;
    for (const file of await readdir(join(dir, partition.name))) {
      if (file.endsWith('.parquet')) out.push(join(dir, partition.name, file));
    }
  }
  return out.sort();
}

async function checkFile(conn: DuckDBConnection, file: string): Promise<void> {
  const version = await parquetMetadataValue(conn, file, 'hookshadow_format_version', 'Move it out of the store to read the rest.');
  assertReadableVersion(Number(version), file);
}

/**
 * One key of a Parquet file's key-value metadata (null when absent); a file that is not
 * readable Parquet (truncated, overwritten) is HS_ERR_STORE_CORRUPT naming it, with `advice`.
 */
export async function parquetMetadataValue(conn: DuckDBConnection, file: string, key: string, advice: string): Promise<string | null> {
  try {
    const reader = await conn.runAndReadAll(`SELECT decode(value) AS value FROM parquet_kv_metadata($1) WHERE decode(key) = $2`, [file, key]);
    return (reader.getRowObjectsJson()[0]?.value as string | undefined) ?? null;
  } catch (err) {
    throw new HsError('HS_ERR_STORE_CORRUPT', `${file} is not a readable Parquet file (${(err as Error).message.split('\n')[0]}). ${advice}`, {
      cause: err,
      details: { file },
    });
  }
}

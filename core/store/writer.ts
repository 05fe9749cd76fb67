import { open, readFile, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import type { CaptureRecord } from '../capture-schema.js';
import { HsError } from '../errors.js';
import { ensureStore, mkdirDurable, storePaths } from './layout.js';
import { listSegments, quarantineSegment, repairSegment, rollSegment, type RollResult } from './roll.js';
import { WriteAheadLog, type OpenWalFile } from './wal.js';

export interface CaptureWriterOptions {
  store: string;
  /** Unique per recorder process sharing the store; part of every file name. */
  instance: string;
  maxSegmentBytes: number;
  maxSegmentAgeMs: number;
  openFile?: OpenWalFile;
  events?: CaptureWriterEvents;
}

/** Hooks for logs and metrics; the writer itself neither logs nor counts. */
export interface CaptureWriterEvents {
  flushed?(stats: { records: number; bytes: number; durationMs: number }): void;
  rolled?(result: RollResult, durationMs: number): void;
  rollFailed?(segment: string, err: unknown, retryInMs: number): void;
  recovered?(segment: string, repaired: { records: number; quarantined: number; maxRecordBytes: number }): void;
  quarantined?(segment: string, movedTo: string, err: unknown): void;
  recoveryDeferred?(segment: string, err: unknown): void;
}

/** Durable capture: records go to the WAL (acknowledged once fsynced), segments roll into Parquet in the background. */
export interface CaptureWriter {
  readonly store: string;
  readonly instance: string;
  append(record: CaptureRecord): Promise<void>;
  /** Flushes, then releases the WAL lock and DuckDB. */
  close(): Promise<void>;
  walBytes(): number;
  pendingSegments(): number;
}

const INSTANCE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** A default instance id: stable per host, so a restarted recorder recovers its own WAL. */
export function defaultInstanceId(): string {
  return hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 63) || 'recorder';
}

export async function openCaptureWriter(opts: CaptureWriterOptions): Promise<CaptureWriter> {
  if (!INSTANCE_PATTERN.test(opts.instance)) {
    throw new HsError('HS_ERR_CONFIG_INVALID', `Instance id ${JSON.stringify(opts.instance)} must be 1-63 letters, digits, '.', '_' or '-'.`);
  }
  await ensureStore(opts.store);
  const walDir = storePaths.wal(opts.store, opts.instance);
  await mkdirDurable(walDir);
  const releaseLock = await acquireLock(resolve(walDir), opts.instance);
  // One thread: rolling is background work and must not crowd out the requests it records.
  // rollSegment sets the memory cap per segment; what does not fit spills to the store's own disk.
  const db = await DuckDBInstance.create(':memory:', {
    threads: '1',
    preserve_insertion_order: 'false',
    temp_directory: join(storePaths.staging(opts.store, opts.instance), 'duckdb.tmp'),
  });
  const conn = await db.connect();
  const events = opts.events ?? {};

  let rollChain: Promise<void> = Promise.resolve();
  let queued = 0;
  let closing = false;

  /** Rolls one segment, retrying with backoff; `maxAttempts` bounds start-up recovery so it cannot hang. */
  const roll = (segment: string, maxRecordBytes: number, maxAttempts = Infinity): Promise<void> => {
    queued += 1;
    const run = async () => {
      for (let attempt = 1; ; attempt++) {
        const started = performance.now();
        try {
          const result = await rollSegment(conn, opts.store, opts.instance, segment, maxRecordBytes);
          events.rolled?.(result, performance.now() - started);
          return;
        } catch (err) {
          // The segment stays on disk: nothing is lost, it is retried and, at worst, recovered at next start.
          const retryInMs = Math.min(30_000, 250 * 2 ** attempt);
          events.rollFailed?.(segment, err, retryInMs);
          if (closing || attempt >= maxAttempts) throw err;
          await new Promise((r) => setTimeout(r, retryInMs));
          // A write that failed and could not be cut back leaves a torn line: repair before trying again.
          maxRecordBytes = (await repairSegment(opts.store, segment).catch(() => null))?.maxRecordBytes ?? maxRecordBytes;
        }
      }
    };
    const p = rollChain.then(run).finally(() => {
      queued -= 1;
    });
    rollChain = p.catch(() => undefined);
    return p;
  };

  // Recovery: segments left by a previous run of this instance were never rolled. One DuckDB cannot
  // read is set aside in _quarantine/ (renamed, not copied, so even a full disk loses nothing).
  for (const segment of await listSegments(opts.store, opts.instance)) {
    const repaired = await repairSegment(opts.store, segment);
    events.recovered?.(segment, repaired);
    try {
      await roll(segment, repaired.maxRecordBytes, 3);
    } catch (err) {
      // Only a segment whose content DuckDB rejects is set aside; after an I/O error or out-of-memory
      // it stays in the WAL, and the next start tries again.
      if (isDataError(err)) events.quarantined?.(segment, await quarantineSegment(opts.store, segment), err);
      else events.recoveryDeferred?.(segment, err);
    }
  }

  const wal = new WriteAheadLog({
    dir: walDir,
    maxSegmentBytes: opts.maxSegmentBytes,
    maxSegmentAgeMs: opts.maxSegmentAgeMs,
    onSealed: (segment, maxRecordBytes) => void roll(segment, maxRecordBytes).catch(() => undefined),
    ...(opts.openFile ? { openFile: opts.openFile } : {}),
    ...(events.flushed ? { onFlush: events.flushed } : {}),
  });

  return {
    store: opts.store,
    instance: opts.instance,
    append: (record) => wal.append(record),
    async close() {
      closing = true;
      let failure: unknown = null;
      try {
        await wal.close();
        await rollChain;
        // rollChain swallows errors for chaining; a segment still on disk is one that failed to roll.
        if ((await listSegments(opts.store, opts.instance)).length > 0) failure = new Error('a segment failed to roll');
      } catch (err) {
        failure = err;
      } finally {
        conn.closeSync();
        db.closeSync();
        await releaseLock();
      }
      if (failure) {
        throw new HsError(
          'HS_ERR_WAL_WRITE',
          `Could not roll every WAL segment into Parquet (${(failure as Error).message}). They are kept in ${walDir} and are rolled when a recorder with --instance ${opts.instance} next starts on this store.`,
          { cause: failure },
        );
      }
    },
    walBytes: () => wal.bytesInOpenSegment,
    pendingSegments: () => queued,
  };
}

/** DuckDB's error classes for content it cannot convert, as opposed to I/O or memory failures. */
function isDataError(err: unknown): boolean {
  return /^(Conversion|Invalid Input|Parser) Error/.test((err as Error).message ?? '');
}

/** Locks held by this process; a lock file naming our own pid but not listed here is stale (a container restarted as pid 1). */
const heldLocks = new Set<string>();

/** One writer per instance WAL: a second recorder with the same instance id would interleave segments. */
async function acquireLock(walDir: string, instance: string): Promise<() => Promise<void>> {
  const lockPath = join(walDir, 'LOCK');
  if (heldLocks.has(lockPath)) {
    throw new HsError('HS_ERR_CONFIG_INVALID', `Recorder instance "${instance}" is already running in this process on this store. Give each recorder its own --instance.`);
  }
  const me = JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(lockPath, 'wx');
      await fh.writeFile(me);
      await fh.close();
      heldLocks.add(lockPath);
      return async () => {
        heldLocks.delete(lockPath);
        await unlink(lockPath).catch(() => undefined);
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // A lock just created by another starter may not hold its content yet: look again before calling it stale.
      const holder = (await readLock(lockPath)) ?? (await new Promise((r) => setTimeout(r, 50)).then(() => readLock(lockPath)));
      const heldElsewhere = holder !== null && holder.host !== hostname();
      const heldHere = holder !== null && holder.host === hostname() && holder.pid !== process.pid && isAlive(holder.pid);
      if (heldElsewhere || heldHere) {
        throw new HsError(
          'HS_ERR_CONFIG_INVALID',
          `Recorder instance "${instance}" is already running (pid ${holder!.pid} on ${holder!.host}) on this store. Give each recorder its own --instance` +
            (heldElsewhere ? `, or, if that recorder is gone for good, delete ${lockPath}.` : '.'),
        );
      }
      // The holder died without releasing the lock (a crash): take it over.
      await unlink(lockPath).catch(() => undefined);
    }
  }
  throw new HsError('HS_ERR_CONFIG_INVALID', `Could not lock ${lockPath}; another recorder may be starting with instance "${instance}".`);
}

async function readLock(path: string): Promise<{ pid: number; host: string } | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as { pid: number; host: string };
  } catch {
    return null;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

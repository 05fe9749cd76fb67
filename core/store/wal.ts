import { constants } from 'node:fs';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { v7 as uuidv7 } from 'uuid';
import { HsError } from '../errors.js';
import { syncDir } from './layout.js';

/** The file operations the WAL needs; injected so tests can simulate a full disk. */
export interface WalFile {
  /** Writes and returns once the bytes are durable. */
  writev(buffers: Buffer[]): Promise<void>;
  truncate(length: number): Promise<void>;
  close(): Promise<void>;
}
export type OpenWalFile = (path: string) => Promise<WalFile>;

/**
 * Segments are opened O_DSYNC: each write returns once the data is durable, so a
 * group commit is one thread-pool round trip instead of two (a write, then an fdatasync).
 */
export const openWalFileOnDisk: OpenWalFile = async (path) => {
  const fh: FileHandle = await open(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_DSYNC, 0o644);
  return {
    writev: async (buffers) => {
      await fh.writev(buffers);
    },
    truncate: (length) => fh.truncate(length),
    close: () => fh.close(),
  };
};

export interface WalOptions {
  dir: string;
  /** Seal a segment once it holds this many bytes. */
  maxSegmentBytes: number;
  /** Seal a non-empty segment this long after it was opened. */
  maxSegmentAgeMs: number;
  /** Called with each sealed, non-empty segment, in order, and the size of its largest record. */
  onSealed: (path: string, maxRecordBytes: number) => void;
  openFile?: OpenWalFile;
  onFlush?: (stats: { records: number; bytes: number; durationMs: number }) => void;
}

interface Pending {
  buf: Buffer;
  resolve: () => void;
  reject: (err: Error) => void;
}

interface Segment {
  path: string;
  file: WalFile;
  size: number;
  maxRecordBytes: number;
  openedAt: number;
}

export const WAL_SUFFIX = '.wal';

/**
 * An append-only log of NDJSON records with group commit: every append waiting
 * while a durable write is in flight goes out together in the next one.
 * `append` resolves only once its record is durable; that is the recorder's
 * definition of "acknowledged".
 */
export class WriteAheadLog {
  private readonly opts: WalOptions;
  private readonly openFile: OpenWalFile;
  private pending: Pending[] = [];
  private flushScheduled = false;
  private chain: Promise<void> = Promise.resolve();
  private segment: Segment | null = null;
  private closed = false;
  private ageTimer: NodeJS.Timeout;
  /** Bytes written to segments not yet sealed (for metrics). */
  bytesInOpenSegment = 0;

  constructor(opts: WalOptions) {
    this.opts = opts;
    this.openFile = opts.openFile ?? openWalFileOnDisk;
    this.ageTimer = setInterval(() => this.sealIfOld(), Math.max(50, Math.min(1000, opts.maxSegmentAgeMs / 4)));
    this.ageTimer.unref();
  }

  /** Appends one record; resolves once it is on disk. */
  append(record: object): Promise<void> {
    if (this.closed) {
      return Promise.reject(new HsError('HS_ERR_SHUTTING_DOWN', 'The recorder is shutting down; retry against another instance.'));
    }
    const buf = Buffer.from(JSON.stringify(record) + '\n', 'utf8');
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ buf, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        // setImmediate lets every append of this event-loop turn join the same durable write.
        setImmediate(() => this.enqueue(() => this.flush()));
      }
    });
  }

  /** Seals the current segment (if non-empty) so it can be rolled into Parquet. */
  seal(): Promise<void> {
    return this.enqueue(() => this.sealCurrent());
  }

  /** Flushes what is pending, seals the current segment and refuses further appends. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.ageTimer);
    await this.enqueue(async () => {
      await this.flush();
      await this.sealCurrent();
    });
  }

  private enqueue(op: () => Promise<void>): Promise<void> {
    const run = this.chain.then(op);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private sealIfOld(): void {
    const seg = this.segment;
    if (seg && seg.size > 0 && Date.now() - seg.openedAt >= this.opts.maxSegmentAgeMs) {
      // A failure here is reported by the next append or close; the timer must not crash the process.
      this.seal().catch(() => undefined);
    }
  }

  private async flush(): Promise<void> {
    this.flushScheduled = false;
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    const started = performance.now();
    const bytes = batch.reduce((n, p) => n + p.buf.length, 0);
    let seg: Segment;
    try {
      seg = await this.currentSegment();
    } catch (err) {
      this.failBatch(batch, err);
      return;
    }
    try {
      await seg.file.writev(batch.map((p) => p.buf));
    } catch (err) {
      // A partial write would leave a torn line; cut back to the last durable byte and start a fresh segment.
      await seg.file.truncate(seg.size).catch(() => undefined);
      await this.sealCurrent().catch(() => undefined);
      this.failBatch(batch, err);
      return;
    }
    seg.size += bytes;
    for (const p of batch) seg.maxRecordBytes = Math.max(seg.maxRecordBytes, p.buf.length);
    this.bytesInOpenSegment = seg.size;
    for (const p of batch) p.resolve();
    this.opts.onFlush?.({ records: batch.length, bytes, durationMs: performance.now() - started });
    if (seg.size >= this.opts.maxSegmentBytes) await this.sealCurrent();
  }

  private failBatch(batch: Pending[], err: unknown): void {
    const cause = err as NodeJS.ErrnoException;
    const hint = cause.code === 'ENOSPC' ? ' The disk is full: free space under the store directory.' : '';
    const error = new HsError('HS_ERR_WAL_WRITE', `Could not write the write-ahead log in ${this.opts.dir}: ${cause.message}.${hint}`, {
      cause: err,
    });
    for (const p of batch) p.reject(error);
  }

  private async currentSegment(): Promise<Segment> {
    if (this.segment) return this.segment;
    // uuidv7 names sort by creation time, so segments roll in the order they were written.
    const path = join(this.opts.dir, `${uuidv7()}${WAL_SUFFIX}`);
    const file = await this.openFile(path);
    // The new file's directory entry must be durable too, or its acknowledged records could vanish with it.
    await syncDir(this.opts.dir);
    this.segment = { path, file, size: 0, maxRecordBytes: 0, openedAt: Date.now() };
    return this.segment;
  }

  private async sealCurrent(): Promise<void> {
    const seg = this.segment;
    if (!seg) return;
    this.segment = null;
    this.bytesInOpenSegment = 0;
    await seg.file.close();
    if (seg.size > 0) this.opts.onSealed(seg.path, seg.maxRecordBytes);
    else await unlink(seg.path).catch(() => undefined);
  }
}

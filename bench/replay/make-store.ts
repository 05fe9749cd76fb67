/**
 * Replay benchmark, part 1: a capture store of N realistic deliveries, written the way the
 * recorder writes one (openCaptureWriter: WAL segments rolled into Parquet), without HTTP.
 *
 *   node dist/bench/replay/make-store.js [--count 1000000] [--seed 42] [--store DIR] [--durable] [--no-effects]
 *
 * Deliveries come from generateDeliveries({ slim: true }) (1-8 KiB bodies, ~3.5 KiB on average),
 * turned into records by the recorder's own buildDeliveryRecord, as a tee-mode recorder in front of
 * fixtures/legacy-bot would: signed (signature_valid true), legacy status 200. For every delivery the
 * legacy bot acts on, the calls it makes through the recorder's egress proxy are written too, attributed
 * exactly (delivery_id set, correlation 'exact'), built by buildCallRecord:
 *   - reads (`exchanges`): GET /repos/{repo}/issues/{n} → 200 {number, labels: [], html_url}, for issues
 *     assigned to hookbot and for /retry comments, so the fixture flows' reads replay hermetically;
 *   - effects (unless --no-effects): POST /jobs (agents), the comment, the agent-running label, the review
 *     request, with the responses, so mutations in dry-run echo the legacy handler's real job ids.
 *
 * Times: delivery i arrives at 2026-10-01T00:00:00Z + i × 0.5 s (+ jitter < 0.5 s), so 1M deliveries span
 * ~5.8 days (7 date partitions). WAL segments are the recorder's default 32 MiB. WAL writes are not synced
 * unless --durable (the Parquet files are fsynced by the roll either way).
 *
 * A store that already holds this count/seed/effects (bench-store.json, checked against the Parquet row
 * counts) is reused as it is.
 */
import { createHash } from 'node:crypto';
import { open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { CallRecord, CaptureRecord, DeliveryRecord } from '../../core/capture-schema.js';
import { listSegments } from '../../core/store/roll.js';
import { openStoreReader } from '../../core/store/reader.js';
import { openCaptureWriter, type CaptureWriter } from '../../core/store/writer.js';
import type { OpenWalFile } from '../../core/store/wal.js';
import { generateDeliveries, type GeneratedDelivery } from '../../fixtures/generator/deliveries.js';
import { buildCallRecord, buildDeliveryRecord } from '../../recorder/capture.js';
import { DEFAULT_CONFIG } from '../../recorder/config.js';
import { createRedactor } from '../../recorder/redact.js';
import { flag } from '../shared/args.js';

export const BOT_LOGIN = 'hookbot';
export const REVIEWER = 'octo-reviewer';
const SECRET = 'bench-replay-secret';
const INSTANCE = 'bench-replay';
const MARKER = 'bench-store.json';
const MARKER_VERSION = 1;
/** 2026-10-01T00:00:00Z in µs. */
const BASE_US = Date.UTC(2026, 9, 1) * 1000;
const SPACING_US = 500_000;

export interface StoreOptions {
  store: string;
  count: number;
  seed: number;
  /** Also write the legacy bot's mutating calls (effects). */
  effects: boolean;
  /** O_DSYNC WAL writes, as the recorder does (slower; default off). */
  durable: boolean;
  /** Progress lines go here (default: console.log). */
  log?: (line: string) => void;
}

export interface StoreInfo {
  version: number;
  count: number;
  seed: number;
  effects: boolean;
  rows: { deliveries: number; exchanges: number; effects: number };
  parquetFiles: number;
  parquetBytes: number;
  bodyBytes: number;
  generatedSeconds: number;
  createdAt: string;
  reused?: boolean;
}

export function defaultStorePath(count: number, seed: number): string {
  return join(tmpdir(), 'hookshadow-replay-bench', `store-${count}-seed${seed}`);
}

// ---------------------------------------------------------------------------------------------
// What fixtures/legacy-bot/app.ts does with a delivery: the API calls it makes, in order.

export interface LegacyCall {
  upstream: string;
  method: string;
  path: string;
  requestBody: unknown;
  status: number;
  responseBody: unknown;
}

export type Payload = Record<string, any>;

/** A deterministic id from the delivery id (the legacy agent queue's job ids, comment ids). */
const idFrom = (deliveryId: string, what: string, n: number) => createHash('sha256').update(`${what}\0${deliveryId}`).digest('hex').slice(0, n);

/**
 * The calls the legacy bot makes for this delivery (see fixtures/legacy-bot/app.ts), with the answers a
 * forge and the agent queue give. Issues are read back with no labels, so the bot always acts.
 */
export function legacyCalls(g: Pick<GeneratedDelivery, 'source' | 'event' | 'deliveryId'>, payload: Payload): LegacyCall[] {
  const forge = g.source === 'gitea' ? 'gitea' : 'github';
  const repo = payload?.repository?.full_name as string | undefined;
  if (!repo) return [];
  const base = `/repos/${repo}`;
  const issueRead = (n: number): LegacyCall => ({
    upstream: forge,
    method: 'GET',
    path: `${base}/issues/${n}`,
    requestBody: null,
    status: 200,
    responseBody: { number: n, labels: [], html_url: `https://github.com/${repo}/issues/${n}` },
  });
  const job = (queue: string, n: number): LegacyCall => ({
    upstream: 'agents',
    method: 'POST',
    path: '/jobs',
    requestBody: { queue, ref: `https://github.com/${repo}/issues/${n}`, repo, number: n },
    status: 201,
    responseBody: { job_id: `job-${idFrom(g.deliveryId, 'job', 12)}`, queue, status: 'queued' },
  });
  const comment = (n: number, body: string): LegacyCall => ({
    upstream: forge,
    method: 'POST',
    path: `${base}/issues/${n}/comments`,
    requestBody: { body },
    status: 201,
    responseBody: { id: parseInt(idFrom(g.deliveryId, 'comment', 8), 16), body, html_url: `https://github.com/${repo}/issues/${n}#issuecomment-1` },
  });

  if (g.event === 'issues' && payload.action === 'assigned' && (payload.assignee ?? payload.issue?.assignee)?.login === BOT_LOGIN) {
    const n = payload.issue.number as number;
    const j = job('triage', n);
    return [
      issueRead(n),
      j,
      comment(n, `On it — queued as ${(j.responseBody as { job_id: string }).job_id}`),
      { upstream: forge, method: 'POST', path: `${base}/issues/${n}/labels`, requestBody: { labels: ['agent-running'] }, status: 200, responseBody: [{ name: 'agent-running' }] },
    ];
  }
  if (g.event === 'issue_comment' && payload.action === 'created') {
    const body: string = payload.comment?.body ?? '';
    const author: string = payload.comment?.user?.login ?? '';
    if (author !== BOT_LOGIN && /^\/retry\b/m.test(body)) {
      const n = payload.issue.number as number;
      const j = job('retry', n);
      return [issueRead(n), j, comment(n, `Retrying — queued as ${(j.responseBody as { job_id: string }).job_id}`)];
    }
    return [];
  }
  if (g.event === 'pull_request' && payload.action === 'opened') {
    const n = (payload.pull_request?.number ?? payload.number) as number;
    if (payload.pull_request?.user?.login !== REVIEWER) {
      return [
        {
          upstream: forge,
          method: 'POST',
          path: `${base}/pulls/${n}/requested_reviewers`,
          requestBody: { reviewers: [REVIEWER] },
          status: 201,
          responseBody: { number: n, requested_reviewers: [{ login: REVIEWER }] },
        },
      ];
    }
  }
  return [];
}

// ---------------------------------------------------------------------------------------------
// Records, as the recorder builds them.

const redactor = createRedactor(DEFAULT_CONFIG.redaction);

/** A small deterministic jitter in [0, n) from the delivery id. */
const jitter = (deliveryId: string, n: number) => parseInt(deliveryId.slice(0, 8), 16) % n;

export function deliveryRecord(g: GeneratedDelivery, i: number): DeliveryRecord {
  const raw = Buffer.from(g.body, 'utf8');
  const receivedAtUs = BASE_US + i * SPACING_US + jitter(g.deliveryId, SPACING_US);
  return buildDeliveryRecord({
    source: g.source,
    raw,
    // What Fastify hands the recorder: the forge's headers plus the transport's.
    headers: { host: 'hooks.example.com', 'content-length': String(raw.length), accept: '*/*', 'x-forwarded-for': '140.82.115.1', ...g.headers },
    receivedAtUs,
    instance: INSTANCE,
    mode: 'tee',
    signatureValid: true,
    rejected: null,
    redactor,
    legacy: { status: 200, latencyUs: 1800 + jitter(g.deliveryId, 4000), error: null },
  });
}

export function callRecords(d: DeliveryRecord, calls: LegacyCall[], withEffects: boolean): CallRecord[] {
  const out: CallRecord[] = [];
  calls.forEach((c, k) => {
    const mutating = c.method !== 'GET';
    if (mutating && !withEffects) return;
    const observedAtUs = d.received_at_us + 400 + k * 900;
    const requestBody = c.requestBody === null ? null : Buffer.from(JSON.stringify(c.requestBody));
    out.push(
      buildCallRecord(
        {
          upstream: c.upstream,
          method: c.method,
          path: c.path,
          requestHeaders: {
            host: '127.0.0.1:8080',
            authorization: 'token ghp_demo0000000000000000000000000000000',
            accept: 'application/json',
            'user-agent': 'legacy-bot/1.4',
            ...(requestBody ? { 'content-type': 'application/json', 'content-length': String(requestBody.length) } : {}),
            'x-hookshadow-delivery': d.delivery_id,
          },
          requestBody,
          responseStatus: c.status,
          responseHeaders: { 'content-type': 'application/json; charset=utf-8', 'x-ratelimit-remaining': '4999' },
          responseBody: Buffer.from(JSON.stringify(c.responseBody)),
          responseTruncated: false,
          observedAtUs,
          latencyUs: 600 + (k * 137) % 500,
          error: null,
          attribution: { delivery_id: d.delivery_id, correlation: 'exact' },
          origin: 'proxy',
          instance: INSTANCE,
          redactor,
        },
        mutating ? 'effect' : 'exchange',
      ),
    );
  });
  return out;
}

// ---------------------------------------------------------------------------------------------

/** The WAL file without O_DSYNC: the benchmark store need not survive a power cut. */
const openUnsynced: OpenWalFile = async (path) => {
  const fh = await open(path, 'a', 0o644);
  return {
    writev: async (buffers) => {
      await fh.writev(buffers);
    },
    truncate: (length) => fh.truncate(length),
    close: () => fh.close(),
  };
};

/** Parquet files and bytes of the store's deliveries, exchanges and effects. */
export async function parquetStats(store: string): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  for (const table of ['deliveries', 'exchanges', 'effects']) {
    const entries = await readdir(join(store, table), { recursive: true, withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      if (!e.isFile() || !e.name.endsWith('.parquet')) continue;
      files += 1;
      bytes += (await stat(join(e.parentPath, e.name))).size;
    }
  }
  return { files, bytes };
}

/** Rows of the store's deliveries, exchanges and effects, as its reader counts them. */
export async function countRows(store: string): Promise<StoreInfo['rows']> {
  const reader = await openStoreReader(store);
  try {
    const [row] = await reader.query<{ d: string; x: string; e: string }>(
      `SELECT (SELECT count(*) FROM deliveries)::VARCHAR AS d, (SELECT count(*) FROM exchanges)::VARCHAR AS x, (SELECT count(*) FROM effects)::VARCHAR AS e`,
    );
    return { deliveries: Number(row!.d), exchanges: Number(row!.x), effects: Number(row!.e) };
  } finally {
    reader.close();
  }
}

async function readMarker(store: string): Promise<StoreInfo | null> {
  try {
    return JSON.parse(await readFile(join(store, MARKER), 'utf8')) as StoreInfo;
  } catch {
    return null;
  }
}

/** Reuses the store when it holds exactly this data set; otherwise (re)generates it. */
export async function ensureBenchStore(opts: StoreOptions): Promise<StoreInfo> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const marker = await readMarker(opts.store);
  if (marker && marker.version === MARKER_VERSION && marker.count === opts.count && marker.seed === opts.seed && marker.effects === opts.effects) {
    const leftover = await listSegments(opts.store, INSTANCE);
    const rows = leftover.length === 0 ? await countRows(opts.store).catch(() => null) : null;
    if (rows && rows.deliveries === opts.count && rows.exchanges === marker.rows.exchanges && rows.effects === marker.rows.effects) {
      log(
        `store: reusing ${opts.store} (${rows.deliveries.toLocaleString('en')} deliveries, ${rows.exchanges.toLocaleString('en')} exchanges, ` +
          `${rows.effects.toLocaleString('en')} effects; ${marker.parquetFiles} Parquet files, ${(marker.parquetBytes / 2 ** 20).toFixed(0)} MiB; ` +
          `generated ${marker.createdAt} in ${marker.generatedSeconds.toFixed(0)} s)`,
      );
      return { ...marker, reused: true };
    }
    log(`store: ${opts.store} has a marker for this data set but its rows do not match (${JSON.stringify(rows)}); regenerating`);
  } else if (marker || (await stat(join(opts.store, 'store.json')).catch(() => null))) {
    log(`store: ${opts.store} holds a different data set (${marker ? `count ${marker.count}, seed ${marker.seed}, effects ${marker.effects}` : 'no marker'}); regenerating`);
  }
  return generateStore(opts, log);
}

/** What writeBenchStore needs beyond the count and seed: whose store it is and what the legacy bot does. */
export interface WriteOptions {
  store: string;
  count: number;
  seed: number;
  /** The writer's instance (WAL segment and Parquet file names) and the generator's webhook secret. */
  instance: string;
  secret: string;
  /** The calls the legacy bot makes for a delivery. */
  calls: (g: GeneratedDelivery, payload: Payload) => LegacyCall[];
  effects: boolean;
  durable: boolean;
  log: (line: string) => void;
}

/**
 * Writes `count` generated deliveries and the legacy bot's calls into an emptied `store` through the
 * recorder's writer, then checks the Parquet row counts against what was written.
 */
export async function writeBenchStore(opts: WriteOptions): Promise<{ rows: StoreInfo['rows']; bodyBytes: number }> {
  const log = opts.log;
  await rm(opts.store, { recursive: true, force: true });
  const t0 = performance.now();
  let rolls = 0;
  let rollSeconds = 0;
  let rollFailures = 0;
  const writer: CaptureWriter = await openCaptureWriter({
    store: opts.store,
    instance: opts.instance,
    maxSegmentBytes: DEFAULT_CONFIG.wal.max_segment_bytes,
    maxSegmentAgeMs: 3_600_000,
    ...(opts.durable ? {} : { openFile: openUnsynced }),
    events: {
      rolled: (_r, ms) => {
        rolls += 1;
        rollSeconds += ms / 1000;
      },
      rollFailed: (segment, err, retryInMs) => {
        rollFailures += 1;
        log(`store: ROLL FAILED for ${segment}: ${(err as Error).message} (retry in ${retryInMs} ms)`);
      },
    },
  });
  const rows = { deliveries: 0, exchanges: 0, effects: 0 };
  let bodyBytes = 0;
  const batch: Promise<void>[] = [];
  const BATCH = 1000;
  const every = Math.max(BATCH, Math.round(opts.count / 20 / BATCH) * BATCH);
  let lastLog = performance.now();
  let lastAt = 0;
  try {
    let i = 0;
    for (const g of generateDeliveries({ count: opts.count, seed: opts.seed, slim: true, secrets: { github: opts.secret, gitea: opts.secret }, botLogin: BOT_LOGIN })) {
      const d = deliveryRecord(g, i);
      const records: CaptureRecord[] = [d, ...callRecords(d, opts.calls(g, JSON.parse(g.body) as Payload), opts.effects)];
      for (const r of records) {
        if (r.t === 'delivery') rows.deliveries += 1;
        else if (r.t === 'exchange') rows.exchanges += 1;
        else rows.effects += 1;
        batch.push(writer.append(r));
      }
      bodyBytes += d.body_size;
      i += 1;
      if (i % BATCH === 0 || i === opts.count) {
        // One WAL write per batch; wait for it, so memory stays bounded whatever the count.
        await Promise.all(batch);
        batch.length = 0;
      }
      if (i % every === 0 || i === opts.count) {
        const now = performance.now();
        log(
          `store: ${i.toLocaleString('en')} / ${opts.count.toLocaleString('en')} deliveries written ` +
            `(${(((i - lastAt) * 1000) / (now - lastLog)).toFixed(0)}/s; ${rolls} rolls done in ${rollSeconds.toFixed(1)} s, ${writer.pendingSegments()} pending; ` +
            `${((now - t0) / 1000).toFixed(1)} s)`,
        );
        lastLog = now;
        lastAt = i;
      }
    }
    const tClose = performance.now();
    await writer.close();
    log(`store: WAL closed, last segments rolled in ${((performance.now() - tClose) / 1000).toFixed(1)} s (${rolls} rolls, ${rollSeconds.toFixed(1)} s rolling in all)`);
  } catch (err) {
    await writer.close().catch(() => undefined);
    throw err;
  }
  if (rollFailures > 0) throw new Error(`${rollFailures} roll attempt(s) failed while writing the store; see above`);
  const counted = await countRows(opts.store);
  if (counted.deliveries !== rows.deliveries || counted.exchanges !== rows.exchanges || counted.effects !== rows.effects) {
    throw new Error(`store row counts ${JSON.stringify(counted)} do not match what was written ${JSON.stringify(rows)}`);
  }
  return { rows, bodyBytes };
}

async function generateStore(opts: StoreOptions, log: (line: string) => void): Promise<StoreInfo> {
  const t0 = performance.now();
  const { rows, bodyBytes } = await writeBenchStore({ ...opts, instance: INSTANCE, secret: SECRET, calls: legacyCalls, log });
  const pq = await parquetStats(opts.store);
  const info: StoreInfo = {
    version: MARKER_VERSION,
    count: opts.count,
    seed: opts.seed,
    effects: opts.effects,
    rows,
    parquetFiles: pq.files,
    parquetBytes: pq.bytes,
    bodyBytes,
    generatedSeconds: (performance.now() - t0) / 1000,
    createdAt: new Date().toISOString(),
  };
  await writeFile(join(opts.store, MARKER), JSON.stringify(info, null, 2) + '\n');
  log(
    `store: wrote ${rows.deliveries.toLocaleString('en')} deliveries (${(bodyBytes / 2 ** 20).toFixed(0)} MiB of bodies), ${rows.exchanges.toLocaleString('en')} exchanges, ` +
      `${rows.effects.toLocaleString('en')} effects into ${pq.files} Parquet files (${(pq.bytes / 2 ** 20).toFixed(0)} MiB) in ${info.generatedSeconds.toFixed(1)} s`,
  );
  return { ...info, reused: false };
}

// ---------------------------------------------------------------------------------------------
// CLI

export function parseCount(raw: string | undefined, dflt: number): number {
  if (raw === undefined) return dflt;
  const n = Number(raw.replaceAll('_', ''));
  if (!Number.isInteger(n) || n < 1) throw new Error(`--count expects a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(`Writes the replay benchmark's capture store.
  --count N       deliveries (default 1000000)
  --seed N        generator seed (default 42)
  --store DIR     store directory (default ${defaultStorePath(1_000_000, 42)}, with the count and seed in its name)
  --durable       O_DSYNC WAL writes, as the recorder does (default: unsynced; Parquet is fsynced either way)
  --no-effects    write only deliveries and reads (exchanges), not the legacy bot's mutating calls`);
    return;
  }
  const count = parseCount(flag(argv, 'count'), 1_000_000);
  const seed = parseCount(flag(argv, 'seed'), 42);
  const store = flag(argv, 'store') ?? defaultStorePath(count, seed);
  const t0 = performance.now();
  await ensureBenchStore({ store, count, seed, effects: !argv.includes('--no-effects'), durable: argv.includes('--durable') });
  console.log(`store: ready in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${store}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}

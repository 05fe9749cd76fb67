import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readdir, readFile, rename, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { CAPTURE_FORMAT_VERSION, type CallRecord, type DeliveryRecord, type Source } from '../../core/capture-schema.js';
import { canonicalJson } from '../../core/effects.js';
import { HsError } from '../../core/errors.js';
import { pathExists, writeFileAtomic } from '../../core/store/layout.js';
import { openStoreReader } from '../../core/store/reader.js';
import { openCaptureWriter } from '../../core/store/writer.js';
import { deliveryFacts } from '../../recorder/sources.js';
import type { StoredDelivery } from '../../replayer/source.js';
import type { CasePlan, CheckCase } from './case.js';
import type { Failure } from './properties.js';
import { allDeliveries } from './samples.js';

/**
 * Counterexamples as regression fixtures (specs/checks.md § Regression fixtures): a
 * directory `<property>-<hash>/` holding a small capture store (the shrunk delivery,
 * and its redelivery if the case had one, with the legacy handler's recorded calls)
 * that `hookshadow replay` runs like any store, and `counterexample.json` saying
 * which property failed, how, and how to reproduce it.
 */

export const COUNTEREXAMPLE_FILE = 'counterexample.json';

export interface Counterexample {
  format: 'hookshadow-counterexample';
  version: 1;
  hookshadow_version: string;
  /** A property name, or `invariant:<name>`. */
  property: string;
  meaning: string;
  flows: { name: string; version: string }[];
  seed: number;
  /** fast-check's path to the shrunk case: with the seed, `--path` replays exactly this case. */
  path: string | null;
  case: string;
  plan: CasePlan | null;
  /** The property's extra generated input (the irrelevant-fields transform), when it has one. */
  extra: unknown;
  failure: Failure;
  /** JSON size of the deliveries' payloads when first found, and after shrinking. */
  original_size: number | null;
  shrunk_size: number;
  reproduce: string;
}

/** The fixture directory's name: the property and a hash of exactly what failed, so the same failure saves once. */
export function fixtureName(property: string, c: CheckCase, extra: unknown): string {
  const hash = createHash('sha256')
    .update(canonicalJson({ property, deliveries: c.deliveries.map((d) => [d.delivery_id, d.received_at_us, d.body]), extra: extra ?? null }))
    .digest('hex')
    .slice(0, 12);
  return `${property.replace(/[^a-z0-9._-]/gi, '_')}-${hash}`;
}

/** Writes the fixture under `dir/<name>/` (whole or not at all) and returns its path. */
export async function saveCounterexample(dir: string, name: string, c: CheckCase, meta: Counterexample): Promise<string> {
  const target = join(dir, name);
  await mkdir(dir, { recursive: true });
  const work = await mkdtemp(join(dir, `.${name}-`));
  try {
    const store = join(work, 'store');
    const writer = await openCaptureWriter({ store, instance: 'check', maxSegmentBytes: 64 << 20, maxSegmentAgeMs: 3_600_000 });
    try {
      for (const d of c.deliveries) for (const record of recordsOf(d)) await writer.append(record);
    } finally {
      await writer.close();
    }
    const out = join(work, 'fixture');
    await cp(store, out, { recursive: true, filter: (src) => !/[/\\]_(wal|staging|quarantine)([/\\]|$)/.test(src) });
    await writeFileAtomic(join(out, COUNTEREXAMPLE_FILE), `${JSON.stringify(meta, null, 2)}\n`);
    await rm(target, { recursive: true, force: true });
    await rename(out, target);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return target;
}

const sha = (text: string) => createHash('sha256').update(text).digest('hex');

/** The capture rows of one delivery and its calls, as an import would write them (calls observed just after it, in order). */
function recordsOf(d: StoredDelivery): (DeliveryRecord | CallRecord)[] {
  const headers = d.headers ? (JSON.parse(d.headers) as Record<string, string>) : {};
  const payload = d.body && d.body_encoding === 'utf8' ? safeJson(d.body) : null;
  const facts = deliveryFacts(d.source as Source, headers, payload);
  const delivery: DeliveryRecord = {
    t: 'delivery',
    schema_version: CAPTURE_FORMAT_VERSION,
    delivery_id: d.delivery_id,
    delivery_id_origin: 'import',
    source: d.source as Source,
    event: d.event,
    action: d.action,
    received_at_us: d.received_at_us,
    headers,
    body: d.body,
    body_encoding: d.body_encoding as DeliveryRecord['body_encoding'],
    body_size: d.body ? Buffer.byteLength(d.body, d.body_encoding === 'base64' ? 'base64' : 'utf8') : 0,
    body_sha256: d.body ? sha(d.body) : null,
    content_type: d.content_type,
    parse_error: null,
    repository: d.repository,
    issue_number: facts.issueNumber,
    signature_valid: null,
    rejected: null,
    redacted: [],
    mode: 'import',
    legacy_status: null,
    legacy_latency_us: null,
    legacy_error: null,
    recorder_instance: 'check',
  };
  const calls = [...d.reads.map((c) => ['exchange', c] as const), ...d.writes.map((c) => ['effect', c] as const)].map(([t, c], k): CallRecord => ({
    t,
    schema_version: CAPTURE_FORMAT_VERSION,
    call_id: sha(`${d.delivery_id}\0${d.received_at_us}\0${t}\0${k}`).slice(0, 32),
    delivery_id: d.delivery_id,
    correlation: 'exact',
    observed_at_us: d.received_at_us + 1 + k,
    origin: 'import',
    upstream: c.upstream,
    method: c.method,
    path: c.path,
    request_headers: {},
    request_body: c.request_body ?? null,
    request_body_encoding: 'utf8',
    response_status: c.response_status,
    response_headers: {},
    response_body: c.response_body,
    response_body_encoding: 'utf8',
    response_truncated: false,
    latency_us: null,
    error: null,
    redacted: [],
    recorder_instance: 'check',
  }));
  return [delivery, ...calls];
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

export interface LoadedFixture {
  dir: string;
  meta: Counterexample;
  case: CheckCase;
}

/** `dir` itself when it is a fixture, else every fixture directly inside it, by name. */
export async function loadFixtures(dir: string): Promise<LoadedFixture[]> {
  if (!(await pathExists(dir))) throw new HsError('HS_ERR_USAGE', `--regressions ${dir} does not exist.`);
  const dirs = (await pathExists(join(dir, COUNTEREXAMPLE_FILE)))
    ? [dir]
    : (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => join(dir, e.name)).sort();
  const out: LoadedFixture[] = [];
  for (const d of dirs) {
    if (!(await pathExists(join(d, COUNTEREXAMPLE_FILE)))) continue;
    const meta = JSON.parse(await readFile(join(d, COUNTEREXAMPLE_FILE), 'utf8')) as Counterexample;
    const reader = await openStoreReader(d);
    try {
      out.push({ dir: d, meta, case: { deliveries: await allDeliveries(reader), origin: `fixture ${basename(d)}`, dropped: [], mutations: [] } });
    } finally {
      reader.close();
    }
  }
  return out;
}

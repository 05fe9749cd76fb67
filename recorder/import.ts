import { createReadStream } from 'node:fs';
import { rmdir } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { v7 as uuidv7 } from 'uuid';
import { SOURCES, isMutating, type CaptureRecord } from '../core/capture-schema.js';
import { parseIsoUs } from '../core/clock.js';
import { HsError } from '../core/errors.js';
import { storePaths } from '../core/store/layout.js';
import { openCaptureWriter } from '../core/store/writer.js';
import { createAttributionIndex, type AttributionIndex } from './attribution.js';
import { parsePayload } from '../core/payload.js';
import { buildCallRecord, buildDeliveryRecord } from './capture.js';
import { deliveryFacts } from './sources.js';
import type { RecorderConfig } from './config.js';
import { createRedactor, type Redactor } from './redact.js';
import { asBody, reportedCallSchema } from './routes/effects.js';

/** A problem with one line of an import file. */
export interface ImportProblem {
  file: string;
  line: number;
  message: string;
}

export interface ImportResult {
  deliveries: number;
  effects: number;
  exchanges: number;
  invalid: ImportProblem[];
  /** False when invalid lines were found and --skip-invalid was not given: nothing was written. */
  written: boolean;
}

export interface ImportOptions {
  store: string;
  files: string[];
  skipInvalid: boolean;
  redaction: RecorderConfig['redaction'];
  attributionWindowMs: number;
  wal: RecorderConfig['wal'];
  onProgress?: (linesDone: number) => void;
}

const deliveryLineSchema = {
  type: 'object',
  required: ['type', 'source', 'received_at'],
  additionalProperties: false,
  properties: {
    type: { const: 'delivery' },
    delivery_id: { type: 'string', minLength: 1 },
    source: { enum: [...SOURCES] },
    event: { type: ['string', 'null'] },
    action: { type: ['string', 'null'] },
    received_at: { type: 'string', format: 'date-time' },
    headers: { type: 'object', additionalProperties: { type: 'string' } },
    body: { type: 'string' },
    payload: {},
    signature_valid: { type: ['boolean', 'null'] },
    legacy_status: { type: ['integer', 'null'] },
    legacy_latency_ms: { type: ['number', 'null'], minimum: 0 },
  },
  oneOf: [{ required: ['body'] }, { required: ['payload'] }],
} as const;

const callLineSchema = {
  ...reportedCallSchema,
  required: ['type', 'observed_at', ...reportedCallSchema.required],
  properties: { ...reportedCallSchema.properties, type: { enum: ['effect', 'exchange'] } },
} as const;

type Line = Record<string, any>;

function compileValidators(): { delivery: ValidateFunction; call: ValidateFunction } {
  const ajv = new Ajv({ allErrors: true });
  addFormats.default(ajv);
  return { delivery: ajv.compile(deliveryLineSchema), call: ajv.compile(callLineSchema) };
}

function explain(v: ValidateFunction): string {
  return (v.errors ?? []).map((e) => `${e.instancePath || '(line)'} ${e.message}`).join('; ');
}

async function* readLines(files: string[]): AsyncGenerator<{ file: string; line: number; text: string }> {
  for (const file of files) {
    const stream = createReadStream(file, { encoding: 'utf8' });
    const rl = createInterface({ input: stream, crlfDelay: Infinity });
    let line = 0;
    try {
      for await (const text of rl) {
        line += 1;
        if (text.trim() !== '') yield { file, line, text };
      }
    } catch (err) {
      throw new HsError('HS_ERR_IMPORT_INVALID', `Cannot read ${file}: ${(err as Error).message}`, { cause: err });
    }
  }
}

/** Checks one line: the parsed line, or what is wrong with it. */
function check(validators: ReturnType<typeof compileValidators>, text: string): { ok: true; value: Line } | { ok: false; message: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, message: `not JSON: ${(err as Error).message}` };
  }
  const obj = value as Line;
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return { ok: false, message: 'each line must be a JSON object' };
  if (obj.headers && typeof obj.headers === 'object') obj.headers = lowerCaseKeys(obj.headers);
  if (obj.request_headers && typeof obj.request_headers === 'object') obj.request_headers = lowerCaseKeys(obj.request_headers);
  if (obj.type === 'delivery') {
    if (!validators.delivery(obj)) return { ok: false, message: explain(validators.delivery) };
    if (parseIsoUs(obj.received_at) === null) return { ok: false, message: `/received_at ${JSON.stringify(obj.received_at)} is not an RFC 3339 time` };
    return { ok: true, value: obj };
  }
  if (obj.type === 'effect' || obj.type === 'exchange') {
    if (!validators.call(obj)) return { ok: false, message: explain(validators.call) };
    if (parseIsoUs(obj.observed_at) === null) return { ok: false, message: `/observed_at ${JSON.stringify(obj.observed_at)} is not an RFC 3339 time` };
    if (isMutating(obj.method) !== (obj.type === 'effect')) {
      return { ok: false, message: `type "${obj.type}" does not fit method ${obj.method}: effects are POST/PUT/PATCH/DELETE, exchanges are reads` };
    }
    return { ok: true, value: obj };
  }
  return { ok: false, message: `"type" must be "delivery", "effect" or "exchange" (got ${JSON.stringify(obj.type)})` };
}

function lowerCaseKeys(headers: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
}

function lineBody(l: Line): string {
  return typeof l.body === 'string' ? l.body : JSON.stringify(l.payload);
}

function toRecord(l: Line, redactor: Redactor, attribution: AttributionIndex, instance: string): CaptureRecord {
  if (l.type === 'delivery') {
    const rec = buildDeliveryRecord({
      source: l.source,
      raw: Buffer.from(lineBody(l), 'utf8'),
      headers: l.headers ?? {},
      receivedAtUs: parseIsoUs(l.received_at)!,
      instance,
      mode: 'import',
      signatureValid: l.signature_valid ?? null,
      rejected: null,
      redactor,
      legacy: {
        status: l.legacy_status ?? null,
        latencyUs: typeof l.legacy_latency_ms === 'number' ? Math.round(l.legacy_latency_ms * 1000) : null,
        error: null,
      },
    });
    if (l.delivery_id) {
      rec.delivery_id = l.delivery_id;
      rec.delivery_id_origin = 'import';
    }
    if (l.event !== undefined) rec.event = l.event;
    if (l.action !== undefined) rec.action = l.action;
    return rec;
  }
  const observedAtUs = parseIsoUs(l.observed_at)!;
  const requestBody = asBody(l.request_body);
  return buildCallRecord(
    {
      upstream: l.upstream,
      method: l.method,
      path: l.path,
      requestHeaders: l.request_headers ?? {},
      requestBody,
      responseStatus: l.response_status ?? null,
      responseHeaders: {},
      responseBody: asBody(l.response_body),
      responseTruncated: false,
      observedAtUs,
      latencyUs: null,
      error: l.error ?? null,
      attribution: attribution.attribute({ headerDeliveryId: l.delivery_id ?? null, path: l.path, body: requestBody?.toString('utf8') ?? null, atUs: observedAtUs }),
      origin: 'import',
      instance,
      redactor,
    },
    l.type,
  );
}

/**
 * Imports past deliveries and effects from NDJSON files (specs/capture-format.md § Import).
 * First pass: validate every line and index deliveries (for attributing effects
 * that name none). Second pass: write. With invalid lines and no `skipInvalid`,
 * nothing is written and every problem is reported.
 */
export async function importNdjson(opts: ImportOptions): Promise<ImportResult> {
  const validators = compileValidators();
  const attribution = createAttributionIndex(opts.attributionWindowMs * 1000, { prune: false });
  const invalid: ImportProblem[] = [];
  for await (const { file, line, text } of readLines(opts.files)) {
    const checked = check(validators, text);
    if (!checked.ok) {
      invalid.push({ file, line, message: checked.message });
      continue;
    }
    const l = checked.value;
    if (l.type === 'delivery' && l.delivery_id) {
      const headers = (l.headers ?? {}) as Record<string, string>;
      const facts = deliveryFacts(l.source, headers, parsePayload(lineBody(l), headers['content-type'] ?? null).payload);
      attribution.remember(l.delivery_id, facts.repository, facts.issueNumber, parseIsoUs(l.received_at)!);
    }
  }
  const result: ImportResult = { deliveries: 0, effects: 0, exchanges: 0, invalid, written: false };
  if (invalid.length > 0 && !opts.skipInvalid) return result;

  const instance = `import-${uuidv7().slice(-12)}`;
  const writer = await openCaptureWriter({
    store: opts.store,
    instance,
    maxSegmentBytes: opts.wal.max_segment_bytes,
    maxSegmentAgeMs: opts.wal.max_segment_age_ms,
  });
  const redactor = createRedactor(opts.redaction);
  let batch: Promise<void>[] = [];
  let done = 0;
  try {
    for await (const { text } of readLines(opts.files)) {
      done += 1;
      // Checked again rather than remembered: the first pass keeps nothing per line, so memory stays flat.
      const checked = check(validators, text);
      if (!checked.ok) continue;
      const rec = toRecord(checked.value, redactor, attribution, instance);
      if (rec.t === 'delivery') result.deliveries += 1;
      else if (rec.t === 'effect') result.effects += 1;
      else result.exchanges += 1;
      // Group commit: thousands of appends share a handful of fsyncs.
      batch.push(writer.append(rec));
      if (batch.length >= 2000) {
        await Promise.all(batch);
        batch = [];
        opts.onProgress?.(done);
      }
    }
    await Promise.all(batch);
    opts.onProgress?.(done);
  } finally {
    // close() rolls everything into Parquet; if it fails, the segments stay in the WAL (never deleted here)
    // and the error says where they are.
    await writer.close();
  }
  // Only an empty WAL directory is removed: rmdir refuses one that still holds segments.
  await rmdir(storePaths.wal(opts.store, instance)).catch(() => undefined);
  result.written = true;
  return result;
}

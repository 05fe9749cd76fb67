import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';
import {
  CAPTURE_FORMAT_VERSION,
  type BodyEncoding,
  type CallRecord,
  type Correlation,
  type DeliveryRecord,
  type Source,
} from '../core/capture-schema.js';
import type { Redactor } from './redact.js';
import { deliveryFacts } from './sources.js';
import { parsePayload } from '../core/payload.js';

/** Stores bytes as text when they are UTF-8 (always, for JSON webhooks), else as base64, so nothing is altered. */
export function encodeBody(raw: Buffer | null): { text: string | null; encoding: BodyEncoding } {
  if (raw === null) return { text: null, encoding: 'utf8' };
  return isUtf8(raw) ? { text: raw.toString('utf8'), encoding: 'utf8' } : { text: raw.toString('base64'), encoding: 'base64' };
}

export interface DeliveryInput {
  source: Source;
  raw: Buffer | null;
  /** Declared size when the body itself was refused (too large). */
  declaredSize?: number;
  headers: Record<string, string | string[] | undefined>;
  receivedAtUs: number;
  instance: string;
  mode: DeliveryRecord['mode'];
  signatureValid: boolean | null;
  rejected: string | null;
  redactor: Redactor;
  legacy?: { status: number | null; latencyUs: number | null; error: string | null };
}

/** Builds the row for one delivery: identity from headers and payload, secrets redacted, body kept as received. */
export function buildDeliveryRecord(input: DeliveryInput): DeliveryRecord {
  const contentType = headerValue(input.headers['content-type']);
  const body = encodeBody(input.raw);
  const { payload, error } = body.encoding === 'utf8' ? parsePayload(body.text, contentType) : { payload: null, error: 'body is not UTF-8' };
  const facts = deliveryFacts(input.source, input.headers, payload);
  const headers = input.redactor.headers(input.headers);
  const redactedBody = body.encoding === 'utf8' ? input.redactor.body(body.text) : { value: body.text, redacted: [] };
  return {
    t: 'delivery',
    schema_version: CAPTURE_FORMAT_VERSION,
    delivery_id: facts.deliveryId ?? uuidv7(),
    delivery_id_origin: facts.deliveryId ? 'header' : 'generated',
    source: input.source,
    event: facts.event,
    action: facts.action,
    received_at_us: input.receivedAtUs,
    headers: headers.value,
    body: redactedBody.value,
    body_encoding: body.encoding,
    body_size: input.raw?.length ?? input.declaredSize ?? 0,
    body_sha256: input.raw ? createHash('sha256').update(input.raw).digest('hex') : null,
    content_type: contentType,
    parse_error: input.raw === null ? null : error,
    repository: facts.repository,
    issue_number: facts.issueNumber,
    signature_valid: input.signatureValid,
    rejected: input.rejected,
    redacted: [...headers.redacted, ...redactedBody.redacted],
    mode: input.mode,
    legacy_status: input.legacy?.status ?? null,
    legacy_latency_us: input.legacy?.latencyUs ?? null,
    legacy_error: input.legacy?.error ?? null,
    recorder_instance: input.instance,
  };
}

export interface CallInput {
  upstream: string;
  method: string;
  path: string;
  requestHeaders: Record<string, string | string[] | undefined>;
  requestBody: Buffer | null;
  responseStatus: number | null;
  responseHeaders: Record<string, string | string[] | undefined>;
  responseBody: Buffer | null;
  responseTruncated: boolean;
  observedAtUs: number;
  latencyUs: number | null;
  error: string | null;
  attribution: { delivery_id: string | null; correlation: Correlation };
  origin: CallRecord['origin'];
  instance: string;
  redactor: Redactor;
}

/** Builds the row for one legacy API call: an effect when it mutates, an exchange when it reads. */
export function buildCallRecord(input: CallInput, kind: CallRecord['t']): CallRecord {
  const path = input.redactor.path(input.path);
  const reqHeaders = input.redactor.headers(input.requestHeaders);
  const resHeaders = input.redactor.headers(input.responseHeaders);
  const reqBody = encodeBody(input.requestBody);
  const resBody = encodeBody(input.responseBody);
  const reqRedacted = reqBody.encoding === 'utf8' ? input.redactor.body(reqBody.text) : { value: reqBody.text, redacted: [] };
  const resRedacted = resBody.encoding === 'utf8' ? input.redactor.body(resBody.text) : { value: resBody.text, redacted: [] };
  return {
    t: kind,
    schema_version: CAPTURE_FORMAT_VERSION,
    call_id: uuidv7(),
    delivery_id: input.attribution.delivery_id,
    correlation: input.attribution.correlation,
    observed_at_us: input.observedAtUs,
    origin: input.origin,
    upstream: input.upstream,
    method: input.method.toUpperCase(),
    path: path.value,
    request_headers: reqHeaders.value,
    request_body: reqRedacted.value,
    request_body_encoding: reqBody.encoding,
    response_status: input.responseStatus,
    response_headers: resHeaders.value,
    response_body: resRedacted.value,
    response_body_encoding: resBody.encoding,
    response_truncated: input.responseTruncated,
    latency_us: input.latencyUs,
    error: input.error,
    redacted: [
      ...path.redacted,
      ...reqHeaders.redacted.map((r) => `request.${r}`),
      ...reqRedacted.redacted.map((r) => `request.${r}`),
      ...resHeaders.redacted.map((r) => `response.${r}`),
      ...resRedacted.redacted.map((r) => `response.${r}`),
    ],
    recorder_instance: input.instance,
  };
}

export function headerValue(v: string | string[] | undefined): string | null {
  if (v === undefined) return null;
  return Array.isArray(v) ? (v[0] ?? null) : v;
}

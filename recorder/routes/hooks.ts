import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { DeliveryRecord } from '../../core/capture-schema.js';
import { HsError } from '../../core/errors.js';
import { DELIVERY_HEADER } from '../attribution.js';
import { buildDeliveryRecord } from '../capture.js';
import { errorSchema, forward, forwardableHeaders, type Forwarded } from '../http.js';
import { isSource, verifySignature } from '../sources.js';

const paramsSchema = {
  type: 'object',
  required: ['source'],
  properties: { source: { type: 'string' } },
} as const;

const acceptedSchema = {
  type: 'object',
  required: ['delivery_id'],
  properties: { delivery_id: { type: 'string' }, captured: { type: 'boolean' } },
} as const;

/** `POST /hooks/:source`: capture each delivery; in tee mode also forward it to the legacy handler. */
export async function hooksRoutes(app: FastifyInstance): Promise<void> {
  // The raw bytes are the record (and what signatures cover): no parsing on the way in.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.post<{ Params: { source: string } }>(
    '/hooks/:source',
    {
      schema: {
        params: paramsSchema,
        response: { 202: acceptedSchema, '4xx': errorSchema, '5xx': errorSchema },
      },
    },
    async (request, reply) => {
      app.recorder.deliveriesInFlight += 1;
      try {
        return await handleDelivery(app, request, reply);
      } finally {
        app.recorder.deliveriesInFlight -= 1;
      }
    },
  );
}

/** One delivery: verify, record, then acknowledge (passive) or forward (tee). */
async function handleDelivery(app: FastifyInstance, request: FastifyRequest<{ Params: { source: string } }>, reply: FastifyReply) {
  const { source } = request.params;
  if (!isSource(source)) {
    throw new HsError('HS_ERR_UNKNOWN_SOURCE', `Unknown source "${source}"; use one of github, gitea, forgejo, gitlab, generic.`);
  }
  const ctx = app.recorder;
  const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
  const receivedAtUs = ctx.clock.nowUs();
  const signatureValid = await verifySignature(source, raw, request.headers, ctx.config.secrets[source]);
  const refused = signatureValid === false && ctx.config.signature_policy === 'reject';
  const record = buildDeliveryRecord({
    source,
    raw,
    headers: request.headers,
    receivedAtUs,
    instance: ctx.capture.instance,
    mode: ctx.mode,
    signatureValid,
    rejected: refused ? 'HS_ERR_SIGNATURE_INVALID' : null,
    redactor: ctx.redactor,
  });

  if (refused) {
    // Refused deliveries are still recorded, flagged, for audit.
    await capture(app, request, record, 'rejected');
    throw new HsError('HS_ERR_SIGNATURE_INVALID', `The ${source} signature does not match the configured secret; check the webhook secret on both sides.`);
  }
  const remember = () => ctx.attribution.remember(record.delivery_id, record.repository, record.issue_number, receivedAtUs);

  if (ctx.mode === 'passive') {
    if (!(await capture(app, request, record, 'captured'))) {
      throw new HsError('HS_ERR_CAPTURE_FAILED', 'The delivery could not be stored durably; it was not acknowledged, so the sender should retry.');
    }
    remember();
    return reply.status(202).send({ delivery_id: record.delivery_id, captured: true });
  }
  // In tee mode the legacy handler's calls arrive while it is forwarded: remember it first.
  remember();
  return tee(app, request, reply, raw, record);
}

/**
 * Tee mode: forward the delivery byte-for-byte to the legacy handler and answer with
 * its response. The record is written once the legacy has answered (so it carries
 * the legacy's status and latency) and is durable before the sender gets the answer.
 * A capture failure is logged and counted, never passed on to the sender.
 */
async function tee(app: FastifyInstance, request: FastifyRequest, reply: FastifyReply, raw: Buffer, record: DeliveryRecord) {
  const ctx = app.recorder;
  const url = ctx.config.legacy.url!.replace('{source}', record.source);
  const started = performance.now();
  let response: Forwarded | null = null;
  try {
    response = await forward(ctx.dispatcher, url, {
      method: 'POST',
      headers: { ...forwardableHeaders(request.headers, [DELIVERY_HEADER]), [DELIVERY_HEADER]: record.delivery_id },
      body: raw,
      timeoutMs: ctx.config.legacy.timeout_ms,
    });
    record.legacy_status = response.status;
  } catch (err) {
    record.legacy_error = (err as Error).message;
    ctx.metrics.forwardFailures.inc({ target: 'legacy' });
    request.log.warn({ err, delivery_id: record.delivery_id, url }, 'forward to legacy handler failed');
  }
  record.legacy_latency_us = Math.round((performance.now() - started) * 1000);
  await capture(app, request, record, 'captured');
  if (!response) {
    // The legacy URL is internal: it goes to the log (above), not to the sender.
    throw new HsError('HS_ERR_LEGACY_UNREACHABLE', 'The legacy handler did not answer; the delivery was recorded and the sender should retry.');
  }
  void reply.status(response.status).headers(forwardableHeaders(response.headers));
  return reply.send(response.body);
}

/** Appends a delivery record; false (logged and counted) when the WAL refused it. */
async function capture(app: FastifyInstance, request: FastifyRequest, record: DeliveryRecord, outcome: 'captured' | 'rejected'): Promise<boolean> {
  const ctx = app.recorder;
  try {
    await ctx.capture.append(record);
    ctx.metrics.deliveries.inc({ source: record.source, outcome });
    return true;
  } catch (err) {
    ctx.metrics.deliveries.inc({ source: record.source, outcome: 'capture_failed' });
    ctx.metrics.captureFailures.inc({ kind: 'delivery' });
    request.log.error({ err, delivery_id: record.delivery_id }, 'capture of a delivery failed');
    return false;
  }
}

/** Records a delivery whose body was refused before it was read (too large), so the audit trail still shows it. */
export async function recordRefusedDelivery(app: FastifyInstance, request: FastifyRequest, reason: HsError): Promise<void> {
  const source = (request.params as { source?: string }).source ?? '';
  if (!isSource(source)) return;
  const ctx = app.recorder;
  const declared = Number(request.headers['content-length']);
  const record = buildDeliveryRecord({
    source,
    raw: null,
    ...(Number.isFinite(declared) ? { declaredSize: declared } : {}),
    headers: request.headers,
    receivedAtUs: ctx.clock.nowUs(),
    instance: ctx.capture.instance,
    mode: ctx.mode,
    signatureValid: null,
    rejected: reason.code,
    redactor: ctx.redactor,
  });
  await capture(app, request, record, 'rejected');
}

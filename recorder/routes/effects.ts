import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifyInstance } from 'fastify';
import { isMutating } from '../../core/capture-schema.js';
import { parseIsoUs } from '../../core/clock.js';
import { HsError } from '../../core/errors.js';
import { buildCallRecord } from '../capture.js';
import { errorSchema } from '../http.js';

/** One side effect (or read) a handler reports about itself; see specs/capture-format.md § POST /effects. */
export interface ReportedCall {
  delivery_id?: string | null;
  observed_at?: string;
  upstream: string;
  method: string;
  path: string;
  request_headers?: Record<string, string>;
  request_body?: unknown;
  response_status?: number | null;
  response_body?: unknown;
  error?: string | null;
}

export const reportedCallSchema = {
  type: 'object',
  required: ['upstream', 'method', 'path'],
  additionalProperties: false,
  properties: {
    delivery_id: { type: ['string', 'null'], minLength: 1 },
    observed_at: { type: 'string', format: 'date-time' },
    upstream: { type: 'string', minLength: 1 },
    method: { type: 'string', pattern: '^[A-Za-z]+$' },
    path: { type: 'string', pattern: '^/' },
    request_headers: { type: 'object', additionalProperties: { type: 'string' } },
    request_body: {},
    response_status: { type: ['integer', 'null'], minimum: 100, maximum: 599 },
    response_body: {},
    error: { type: ['string', 'null'] },
  },
} as const;

const MAX_BATCH = 1000;

/** `POST /effects`: handlers that report their own side effects send them here in batches. */
export async function effectsRoutes(app: FastifyInstance): Promise<void> {
  // Fastify's default validator drops unknown fields and coerces types; a batch that is not what it claims is refused.
  const strict = new Ajv({ allErrors: true, coerceTypes: false, removeAdditional: false });
  addFormats.default(strict);
  app.setValidatorCompiler(({ schema }) => strict.compile(schema));

  app.post<{ Body: { effects: ReportedCall[] } }>(
    '/effects',
    {
      attachValidation: true,
      schema: {
        body: {
          type: 'object',
          required: ['effects'],
          additionalProperties: false,
          properties: { effects: { type: 'array', minItems: 1, maxItems: MAX_BATCH, items: reportedCallSchema } },
        },
        response: {
          202: {
            type: 'object',
            required: ['accepted', 'ids'],
            properties: { accepted: { type: 'integer' }, ids: { type: 'array', items: { type: 'string' } } },
          },
          '4xx': errorSchema,
          '5xx': errorSchema,
        },
      },
    },
    async (request, reply) => {
      if (request.validationError) {
        throw new HsError('HS_ERR_EFFECTS_INVALID', `Invalid effects batch: ${request.validationError.message}. See specs/capture-format.md § POST /effects.`);
      }
      const ctx = app.recorder;
      const records = request.body.effects.map((call) => {
        const observedAtUs = call.observed_at ? parseIsoUs(call.observed_at) : ctx.clock.nowUs();
        if (observedAtUs === null) throw new HsError('HS_ERR_EFFECTS_INVALID', `observed_at ${JSON.stringify(call.observed_at)} is not an ISO-8601 time.`);
        const requestBody = asBody(call.request_body);
        const attribution = ctx.attribution.attribute({
          headerDeliveryId: call.delivery_id ?? null,
          path: call.path,
          body: requestBody?.toString('utf8') ?? null,
          atUs: observedAtUs,
        });
        return buildCallRecord(
          {
            upstream: call.upstream,
            method: call.method,
            path: call.path,
            requestHeaders: call.request_headers ?? {},
            requestBody,
            responseStatus: call.response_status ?? null,
            responseHeaders: {},
            responseBody: asBody(call.response_body),
            responseTruncated: false,
            observedAtUs,
            latencyUs: null,
            error: call.error ?? null,
            attribution,
            origin: 'reported',
            instance: ctx.capture.instance,
            redactor: ctx.redactor,
          },
          isMutating(call.method) ? 'effect' : 'exchange',
        );
      });
      const outcomes = await Promise.allSettled(records.map((r) => ctx.capture.append(r)));
      const failed = records.filter((_r, i) => outcomes[i]!.status === 'rejected');
      for (const r of failed) ctx.metrics.captureFailures.inc({ kind: r.t });
      if (failed.length > 0) {
        // The stored ones stay: a resent batch duplicates them (same delivery, method, path, body), which the analyzer can see.
        throw new HsError('HS_ERR_CAPTURE_FAILED', `${failed.length} of ${records.length} records could not be stored durably; resend the batch.`, {
          details: { failed: failed.length },
        });
      }
      for (const r of records) {
        if (r.t === 'effect') ctx.metrics.effects.inc({ upstream: r.upstream, correlation: r.correlation });
        else ctx.metrics.exchanges.inc({ upstream: r.upstream });
      }
      return reply.status(202).send({ accepted: records.length, ids: records.map((r) => r.call_id) });
    },
  );
}

/** A reported body: text as given, anything else as its JSON. */
export function asBody(value: unknown): Buffer | null {
  if (value === undefined || value === null) return null;
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value), 'utf8');
}

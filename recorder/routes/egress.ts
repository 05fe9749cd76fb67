import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isMutating } from '../../core/capture-schema.js';
import { HsError } from '../../core/errors.js';
import { DELIVERY_HEADER } from '../attribution.js';
import { buildCallRecord, headerValue } from '../capture.js';
import { errorSchema, forward, forwardableHeaders, type Forwarded } from '../http.js';

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/**
 * `/egress/:upstream/*`: the legacy handler's API base URL points here. Each call is
 * forwarded to the configured upstream (never to a URL taken from the request) and
 * recorded: mutating calls as effects, reads as exchanges.
 */
export async function egressRoutes(app: FastifyInstance): Promise<void> {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.route<{ Params: { upstream: string; '*': string } }>({
    method: [...METHODS],
    url: '/egress/:upstream/*',
    schema: {
      params: {
        type: 'object',
        required: ['upstream'],
        properties: { upstream: { type: 'string' }, '*': { type: 'string' } },
      },
      response: { '4xx': errorSchema, '5xx': errorSchema },
    },
    handler: async (request, reply) => {
      const ctx = app.recorder;
      const { upstream } = request.params;
      const base = Object.hasOwn(ctx.config.upstreams, upstream) ? ctx.config.upstreams[upstream] : undefined;
      if (!base) {
        throw new HsError('HS_ERR_UNKNOWN_UPSTREAM', `No upstream named "${upstream}" is configured; add --upstream ${upstream}=URL.`);
      }
      const path = upstreamPath(request);
      const target = joinUrl(base, path);
      const requestBody = Buffer.isBuffer(request.body) && request.body.length > 0 ? request.body : null;
      const method = request.method.toUpperCase();
      const observedAtUs = ctx.clock.nowUs();
      const started = performance.now();
      const attribution = ctx.attribution.attribute({
        headerDeliveryId: headerValue(request.headers[DELIVERY_HEADER]),
        path,
        body: requestBody?.toString('utf8') ?? null,
        atUs: observedAtUs,
      });

      let response: Forwarded | null = null;
      let error: string | null = null;
      try {
        response = await forward(ctx.dispatcher, target, {
          method,
          // Identity encoding: a compressed body could be neither redacted nor served back as text in replay.
          headers: forwardableHeaders(request.headers, [DELIVERY_HEADER, 'accept-encoding']),
          body: requestBody,
          timeoutMs: ctx.config.egress.timeout_ms,
        });
      } catch (err) {
        error = (err as Error).message;
        ctx.metrics.forwardFailures.inc({ target: 'upstream' });
      }

      const limit = ctx.config.egress.max_recorded_body_bytes;
      const responseBody = response?.body ?? null;
      const truncated = responseBody !== null && responseBody.length > limit;
      const kind = isMutating(method) ? 'effect' : 'exchange';
      const record = buildCallRecord(
        {
          upstream,
          method,
          path,
          requestHeaders: request.headers,
          requestBody,
          responseStatus: response?.status ?? null,
          responseHeaders: response?.headers ?? {},
          responseBody: truncated ? responseBody!.subarray(0, limit) : responseBody,
          responseTruncated: truncated,
          observedAtUs,
          latencyUs: Math.round((performance.now() - started) * 1000),
          error,
          attribution,
          origin: 'proxy',
          instance: ctx.capture.instance,
          redactor: ctx.redactor,
        },
        kind,
      );
      try {
        // Durable before the legacy handler sees the answer: an effect it acted on is never lost.
        await ctx.capture.append(record);
        if (kind === 'effect') ctx.metrics.effects.inc({ upstream, correlation: record.correlation });
        else ctx.metrics.exchanges.inc({ upstream });
      } catch (err) {
        ctx.metrics.captureFailures.inc({ kind });
        request.log.error({ err, upstream, method, path: record.path }, 'capture of a legacy API call failed');
      }

      if (!response) {
        throw new HsError('HS_ERR_UPSTREAM_UNREACHABLE', `Upstream "${upstream}" did not answer: ${error}`);
      }
      void reply.status(response.status).headers(forwardableHeaders(response.headers));
      return reply.send(response.body);
    },
  });
}

/**
 * The call's path and query relative to the upstream's base URL, taken raw from the
 * request line so encoded slashes (GitLab's `group%2Fproject`) pass through as sent.
 * Dot segments are refused: a call may not climb above the upstream's base path.
 */
function upstreamPath(request: FastifyRequest): string {
  const url = request.url;
  if (!url.startsWith('/egress/')) {
    throw new HsError('HS_ERR_BAD_REQUEST', 'Egress calls must use an origin-form request target (/egress/<upstream>/...).');
  }
  const start = url.indexOf('/', '/egress/'.length);
  const rest = start < 0 ? '/' : url.slice(start);
  const pathOnly = rest.split('?')[0]!;
  // URL parsers treat a backslash as a slash, so it could smuggle a dot segment past the check below.
  if (/\\|%5c/i.test(pathOnly) || pathOnly.split('/').some((seg) => ['.', '..', '%2e', '%2e%2e', '.%2e', '%2e.'].includes(seg.toLowerCase()))) {
    throw new HsError('HS_ERR_BAD_REQUEST', 'Egress paths may not contain "." or ".." segments or backslashes.');
  }
  return rest;
}

/** The upstream URL for a call; refuses anything that would land outside the base URL's origin and path. */
function joinUrl(base: string, path: string): string {
  const url = new URL(base);
  const basePath = url.pathname.replace(/\/$/, '');
  const target = `${url.origin}${basePath}${path}`;
  const parsed = new URL(target);
  if (parsed.origin !== url.origin || !parsed.pathname.startsWith(`${basePath}/`)) {
    throw new HsError('HS_ERR_BAD_REQUEST', 'Egress path resolves outside the upstream base URL.');
  }
  return target;
}

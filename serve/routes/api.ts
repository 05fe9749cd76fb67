import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { renderChart } from '../../analyzer/charts.js';
import { parseIsoUs } from '../../core/clock.js';
import { errorBody, HsError } from '../../core/errors.js';
import { MODES, type Mode } from '../../replayer/flows/model.js';
import type { FlipResult } from '../modes.js';
import { dailySummary } from '../summary.js';

/**
 * The admin API (specs/modes.md § API). Every route needs `Authorization: Bearer
 * <token>`; the event stream also takes `?access_token=`, because browsers'
 * EventSource cannot send headers.
 */

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Constant time, whatever the lengths: both sides are hashed first. */
function tokenMatches(given: string | undefined, expected: string): boolean {
  return given !== undefined && timingSafeEqual(digest(given), digest(expected));
}

// Errors carry their details at the top level (`reasons` of a refused cutover, `missing` capabilities).
const error = { type: 'object', additionalProperties: true, properties: { code: { type: 'string' }, message: { type: 'string' } } };
const open = { type: 'object', additionalProperties: true };
const mode = { type: 'string', enum: [...MODES] };
const flipBody = {
  type: 'object',
  additionalProperties: false,
  required: ['mode'],
  properties: { mode, force: { type: 'boolean' }, who: { type: 'string', minLength: 1, maxLength: 200 } },
};
const flipResponse = { 200: open, '4xx': error, '5xx': error };

interface FlipBody {
  mode: Mode;
  force?: boolean;
  who?: string;
}

/** Who asked, for the history: the body's `who`, else `X-Hookshadow-Actor`, else `admin`. */
const actor = (req: FastifyRequest, body: FlipBody) => body.who ?? (req.headers['x-hookshadow-actor'] as string | undefined) ?? 'admin';

const flipReply = (r: FlipResult) => (r.changed ? { changed: true, from: r.entry.from, to: r.entry.to, entry: r.entry, modes: r.modes } : { changed: false, from: r.from, to: r.to });

export async function serveRoutes(app: FastifyInstance): Promise<void> {
  const ctx = app.serve;
  const token = ctx.config.serve.serve.admin_token;

  app.addHook('onRequest', async (req, reply) => {
    if (!req.url.startsWith('/api/') && !req.url.startsWith('/flows/')) return;
    const header = req.headers.authorization;
    const bearer = header?.startsWith('Bearer ') ? header.slice(7) : undefined;
    const query = req.url.startsWith('/api/events') ? (req.query as { access_token?: string }).access_token : undefined;
    if (tokenMatches(bearer ?? query, token)) return;
    const err = new HsError('HS_ERR_UNAUTHORIZED', 'The admin API needs `Authorization: Bearer <token>` (serve.admin_token or HOOKSHADOW_ADMIN_TOKEN).');
    return reply.status(err.status).header('www-authenticate', 'Bearer').send(errorBody(err));
  });

  app.get('/api/flows', { schema: { response: { 200: open } } }, async () => {
    const effective = ctx.modes.effective();
    const settings = ctx.modes.settings();
    const stats = await ctx.live.query<{ flow: string; runs: number; divergent: number }>(
      `SELECT f AS flow, count(*)::INTEGER AS runs, count(*) FILTER (list_contains(divergent_flows, f))::INTEGER AS divergent FROM live, unnest(flows) AS t(f) GROUP BY f`,
    );
    const flows = [];
    for (const f of ctx.flows) {
      const s = stats.find((x) => x.flow === f.name);
      const gate = await ctx.modes.gate(f.name);
      flows.push({
        name: f.name,
        description: f.description,
        file: f.file,
        version: f.version,
        mode: effective[f.name],
        override: settings.flows[f.name] ?? null,
        deliveries: s?.runs ?? 0,
        divergent: s?.divergent ?? 0,
        divergence_rate: s && s.runs > 0 ? s.divergent / s.runs : null,
        readiness: { ready: effective[f.name] === 'live' || gate.ready, reasons: effective[f.name] === 'live' ? [] : gate.reasons, evidence: gate.evidence },
      });
    }
    return { mode: settings.mode, dispatcher: ctx.dispatcherAlive(), queued: ctx.queued(), upstreams: ctx.upstreams(), flows };
  });

  app.get('/api/flows/mode', { schema: { response: { 200: open } } }, async () => ({
    ...ctx.modes.settings(),
    effective: ctx.modes.effective(),
    dispatcher: ctx.dispatcherAlive(),
    history: ctx.modes.history(),
  }));

  app.put<{ Body: FlipBody }>('/api/flows/mode', { schema: { body: flipBody, response: flipResponse } }, async (req) =>
    flipReply(await ctx.modes.setGlobal({ to: req.body.mode, force: req.body.force ?? false, who: actor(req, req.body) })),
  );

  app.put<{ Body: FlipBody; Params: { name: string } }>(
    '/api/flows/:name/mode',
    { schema: { params: { type: 'object', properties: { name: { type: 'string' } } }, body: flipBody, response: flipResponse } },
    async (req) => flipReply(await ctx.modes.setFlow(req.params.name, { to: req.body.mode, force: req.body.force ?? false, who: actor(req, req.body) })),
  );

  app.get<{ Querystring: { since?: string; until?: string; flow?: string; limit?: number; cursor?: string; all?: boolean } }>(
    '/flows/divergences',
    {
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            since: { type: 'string' },
            until: { type: 'string' },
            flow: { type: 'string' },
            limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
            cursor: { type: 'string' },
            all: { type: 'boolean', default: false },
          },
        },
        response: { 200: open, '4xx': error },
      },
    },
    async (req) => {
      const q = req.query;
      const where: string[] = [q.all ? 'true' : '(json_array_length(divergences) > 0 OR json_array_length(duplicates) > 0)'];
      const params: unknown[] = [];
      const bind = (v: unknown) => `$${params.push(v)}`;
      const time = (name: string, v: string | undefined) => {
        if (v === undefined) return null;
        const us = parseIsoUs(v);
        if (us === null) throw new HsError('HS_ERR_BAD_REQUEST', `${name} must be an ISO 8601 time, e.g. 2026-11-21T00:00:00Z; got ${JSON.stringify(v)}.`);
        return us;
      };
      const since = time('since', q.since);
      const until = time('until', q.until);
      if (since !== null) where.push(`received_at >= make_timestamp(${bind(since)}::BIGINT)`);
      if (until !== null) where.push(`received_at < make_timestamp(${bind(until)}::BIGINT)`);
      if (q.flow) where.push(`list_contains(flows, ${bind(q.flow)})`);
      if (q.cursor) {
        const [us, id] = decodeCursor(q.cursor);
        where.push(`(epoch_us(received_at), delivery_id) < (${bind(us)}::BIGINT, ${bind(id)})`);
      }
      const limit = q.limit ?? 50;
      const rows = await ctx.live.query<Record<string, unknown> & { received_at_us: number; delivery_id: string }>(
        `SELECT delivery_id, epoch_us(received_at)::DOUBLE AS received_at_us, strftime(received_at, '%Y-%m-%dT%H:%M:%S.%fZ') AS received_at, source, event, action, legacy_status,
                legacy, runs, divergences, duplicates, unexpected
         FROM live WHERE ${where.join(' AND ')} ORDER BY received_at DESC, delivery_id DESC LIMIT ${limit + 1}`,
        params,
      );
      const page = rows.slice(0, limit).map((r) => ({
        ...r,
        legacy: JSON.parse(r.legacy as string),
        runs: JSON.parse(r.runs as string),
        divergences: JSON.parse(r.divergences as string),
        duplicates: JSON.parse(r.duplicates as string),
      }));
      const last = page.at(-1);
      return { deliveries: page, next_cursor: rows.length > limit && last ? encodeCursor(last.received_at_us, last.delivery_id) : null };
    },
  );

  app.get<{ Querystring: { days: number } }>(
    '/api/summary/daily',
    { schema: { querystring: { type: 'object', properties: { days: { type: 'integer', minimum: 1, maximum: 366, default: 14 } } }, response: { 200: open } } },
    async (req) => dailySummary(ctx, req.query.days),
  );

  app.get<{ Querystring: { days: number } }>(
    '/api/summary/daily.svg',
    { schema: { querystring: { type: 'object', properties: { days: { type: 'integer', minimum: 1, maximum: 366, default: 14 } } } } },
    async (req, reply) => {
      const { days } = await dailySummary(ctx, req.query.days);
      const svg = await renderChart(TREND_SPEC, days as unknown as Record<string, unknown>[]);
      return reply.type('image/svg+xml').send(svg);
    },
  );

  app.get('/api/events', async (req, reply) => {
    const last = req.headers['last-event-id'];
    const lastId = last === undefined ? null : Number(last);
    reply.hijack();
    ctx.events.subscribe(reply, Number.isFinite(lastId) ? lastId : null);
  });
}

const TREND_SPEC = {
  width: 560,
  height: 160,
  layer: [
    { mark: { type: 'bar', color: '#9ecae1' }, encoding: { x: { field: 'day', type: 'ordinal', title: null }, y: { field: 'deliveries', type: 'quantitative', title: 'deliveries' } } },
    {
      mark: { type: 'line', color: '#d62728', point: true },
      encoding: { x: { field: 'day', type: 'ordinal' }, y: { field: 'divergence_rate', type: 'quantitative', title: 'divergence rate', axis: { format: '%' } } },
    },
  ],
  resolve: { scale: { y: 'independent' } },
};

const encodeCursor = (us: number, id: string) => Buffer.from(JSON.stringify([us, id])).toString('base64url');

function decodeCursor(cursor: string): [number, string] {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v) && typeof v[0] === 'number' && typeof v[1] === 'string') return [v[0], v[1]];
  } catch {
    // fall through
  }
  throw new HsError('HS_ERR_BAD_REQUEST', 'cursor is not one this API returned; start again without it.');
}

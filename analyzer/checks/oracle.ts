import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import Fastify, { type FastifyInstance } from 'fastify';
import { Agent, request, type Dispatcher } from 'undici';
import { MUTATING_METHODS } from '../../core/capture-schema.js';
import { HsError } from '../../core/errors.js';
import { parseBody } from '../divergences.js';
import { NO_RECORDINGS, recordedReads, type ReadSource, type RecordedExchange } from '../../replayer/engine/recordings.js';
import { createRedeliverer } from '../../replayer/redeliver.js';
import { parseStored, type StoredDelivery } from '../../replayer/source.js';

/**
 * The legacy oracle for `legacy-parity`: the legacy handler itself, fed each generated
 * delivery, with its API calls captured by a small egress proxy that hookshadow runs.
 * The proxy answers reads from the delivery's recordings (the flows replay against the
 * same ones) and mutations with the recorded answer; anything else goes to the
 * upstream the oracle module names, or gets a 404. specs/checks.md § legacy-parity.
 */

/**
 * What a legacy oracle module default-exports: start the legacy handler with its API
 * bases pointing at the proxy: `api.<upstream>` for the usual names, or
 * `${proxy}/<any upstream name>`.
 */
export type StartLegacy = (env: { api: Record<string, string>; proxy: string }) => Promise<StartedLegacy>;

/** The upstream names `api` spells out; the proxy serves any other name under `${proxy}/<name>` too. */
export const ORACLE_UPSTREAMS = ['github', 'gitea', 'forgejo', 'gitlab', 'agents'];

export interface StartedLegacy {
  /** The webhook URL deliveries are POSTed to; `{source}` is replaced by the delivery's source. */
  url: string;
  /** Where calls the recordings cannot answer are forwarded, by upstream name (a forge stub, a staging API). */
  upstreams?: Record<string, string>;
  close(): Promise<void>;
}

/** One call the legacy handler made for a delivery, with the answer it got. */
export interface OracleCall extends RecordedExchange {
  body: unknown;
}

export interface LegacyOracle {
  /** Sends one delivery and returns the legacy handler's calls once they have settled. */
  handle(d: StoredDelivery): Promise<{ status: number | null; error: string | null; calls: OracleCall[] }>;
  close(): Promise<void>;
}

export interface OracleOptions {
  module: string;
  baseDir: string;
  /** After the handler answers, how long without a call before its effects count as settled. */
  settleMs: number;
  secrets?: Record<string, string>;
}

async function importStart(module: string, baseDir: string): Promise<StartLegacy> {
  const file = isAbsolute(module) ? module : resolve(baseDir, module);
  try {
    const mod = /\.[cm]?ts$/.test(file)
      ? ((await (await import('tsx/esm/api')).tsImport(pathToFileURL(file).href, import.meta.url)) as { default?: unknown })
      : ((await import(pathToFileURL(file).href)) as { default?: unknown });
    let start = mod.default;
    // A .ts module outside an ESM package arrives wrapped once more.
    if (start && typeof start === 'object' && 'default' in start) start = (start as { default: unknown }).default;
    if (typeof start !== 'function') throw new Error('it must default-export a function ({ api }) => Promise<{ url, close }>');
    return start as StartLegacy;
  } catch (err) {
    throw new HsError('HS_ERR_CHECKS_INVALID', `Cannot load the legacy oracle module ${file}: ${(err as Error).message}`, { cause: err });
  }
}

export async function startLegacyOracle(opts: OracleOptions): Promise<LegacyOracle> {
  const start = await importStart(opts.module, opts.baseDir);
  const dispatcher: Dispatcher = new Agent({ connections: 4 });
  let reads: ReadSource = NO_RECORDINGS;
  let echoes: ReadSource = NO_RECORDINGS;
  let calls: OracleCall[] = [];
  let lastCallAt = 0;
  let forwardTo: Record<string, string> = {};

  const proxy: FastifyInstance = Fastify({ logger: false, bodyLimit: 16 * 1024 * 1024 });
  proxy.removeAllContentTypeParsers();
  proxy.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  proxy.all('/:upstream/*', async (req, reply) => {
    const { upstream } = req.params as { upstream: string };
    const path = req.url.slice(upstream.length + 1);
    const raw = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : null;
    const method = req.method.toUpperCase();
    const mutating = (MUTATING_METHODS as readonly string[]).includes(method);
    const intent = { upstream, method, path, body: null };
    let answer = (mutating ? echoes : reads).lookup(intent);
    let text: string | null = answer ? (answer.body === null ? null : typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body)) : null;
    if (!answer && forwardTo[upstream]) {
      const base = new URL(forwardTo[upstream]!);
      const res = await request(`${base.origin}${base.pathname.replace(/\/$/, '')}${path}`, {
        method: method as Dispatcher.HttpMethod,
        headers: { 'content-type': req.headers['content-type'] ?? 'application/json', accept: 'application/json' },
        body: raw ?? undefined,
        dispatcher,
      });
      text = await res.body.text();
      answer = { status: res.statusCode, body: null };
    }
    const status = answer?.status ?? 404;
    if (!answer) text = JSON.stringify({ message: `hookshadow check: no recording of ${method} ${path} for this delivery, and no upstream to forward it to` });
    calls.push({ upstream, method, path, body: parseBody(raw || null, 'utf8'), response_status: status, response_body: text });
    lastCallAt = performance.now();
    return reply.status(status).header('content-type', 'application/json').send(text ?? '');
  });
  const proxyUrl = await proxy.listen({ host: '127.0.0.1', port: 0 });
  let legacy: StartedLegacy;
  try {
    legacy = await start({ api: Object.fromEntries(ORACLE_UPSTREAMS.map((u) => [u, `${proxyUrl}/${u}`])), proxy: proxyUrl });
  } catch (err) {
    await proxy.close();
    throw new HsError('HS_ERR_ORACLE_FAILED', `The legacy oracle module failed to start: ${(err as Error).message}`, { cause: err });
  }
  forwardTo = legacy.upstreams ?? {};
  const sender = createRedeliverer({ url: legacy.url, secrets: opts.secrets ?? {}, dispatcher });

  return {
    async handle(d) {
      reads = recordedReads(d.reads);
      echoes = recordedReads(d.writes);
      calls = [];
      const result = await sender.send(parseStored(d).raw);
      // Settled: no call for settleMs since the answer (a handler may keep working after it answers).
      lastCallAt = Math.max(lastCallAt, performance.now());
      while (performance.now() - lastCallAt < opts.settleMs) await new Promise((r) => setTimeout(r, opts.settleMs - (performance.now() - lastCallAt) + 1));
      const out = calls;
      calls = [];
      return { status: result.status, error: result.error, calls: out };
    },
    async close() {
      await legacy.close();
      await proxy.close();
      await dispatcher.close();
    },
  };
}

import http from 'node:http';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { openWalFileOnDisk, type OpenWalFile } from '../../core/store/wal.js';
import { generateDeliveries } from '../../fixtures/generator/deliveries.js';
import { sendDeliveries } from '../../fixtures/generator/send.js';
import { DEMO_SECRETS, startDemoStack } from '../../fixtures/stack.js';
import { request } from 'undici';
import { startRecorder } from '../../recorder/server.js';
import { onCleanup, queryStore, silentLogger, tempDir, testConfig } from '../helpers.js';
import { recorderApp } from './harness.js';

/** A raw request over a real socket (inject() normalizes request targets; these tests need them as sent). */
function rawRequest(base: string, opts: { method?: string; path: string; headers?: Record<string, string>; body?: string }): Promise<{ status: number; body: string }> {
  const { port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: opts.method ?? 'GET', path: opts.path, headers: opts.headers }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** A legacy handler that remembers exactly what it received. */
async function echoLegacy(status = 200) {
  const seen: { body: Buffer; headers: Record<string, unknown> }[] = [];
  const app = Fastify();
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_r, body, done) => done(null, body));
  app.post('/webhook', async (req, reply) => {
    seen.push({ body: req.body as Buffer, headers: req.headers });
    return reply.status(status).header('x-legacy', 'yes').send({ handled: true });
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  onCleanup(() => app.close());
  return { url: `${url}/webhook`, seen };
}

describe('recorder, tee mode with the legacy bot and the egress proxy (real servers on 127.0.0.1)', () => {
  it('captures every delivery and every side effect the bot performed, exactly attributed', async () => {
    const store = await tempDir();
    const stack = await startDemoStack({ store });
    const deliveries = [...generateDeliveries({ count: 60, seed: 7, secrets: DEMO_SECRETS })];
    const results = await sendDeliveries(stack.recorder.url, deliveries, { concurrency: 4 });
    expect(results.every((r) => r.status === 200)).toBe(true);
    const stubCalls = stack.stub.calls.filter((c) => c.method !== 'GET');
    const stubReads = stack.stub.calls.filter((c) => c.method === 'GET');
    await stack.stop();

    const rows = await queryStore<{ delivery_id: string; body: string; legacy_status: number; signature_valid: boolean }>(
      store,
      'SELECT delivery_id, body, legacy_status, signature_valid FROM deliveries',
    );
    expect(rows).toHaveLength(60);
    const byId = new Map(rows.map((r) => [r.delivery_id, r]));
    for (const d of deliveries) {
      expect(byId.get(d.deliveryId)).toEqual({ delivery_id: d.deliveryId, body: d.body, legacy_status: 200, signature_valid: true });
    }
    const effects = await queryStore<{ method: string; path: string; correlation: string; delivery_id: string; request_headers: string; response_status: number }>(
      store,
      'SELECT method, path, correlation, delivery_id, request_headers, response_status FROM effects',
    );
    expect(effects.length).toBe(stubCalls.length);
    expect(effects.length).toBeGreaterThan(20);
    expect(new Set(effects.map((e) => e.correlation))).toEqual(new Set(['exact']));
    expect(effects.every((e) => byId.has(e.delivery_id))).toBe(true);
    expect(effects.every((e) => e.response_status >= 200 && e.response_status < 300)).toBe(true);
    // The bot's API token never reaches the disk.
    expect(effects.every((e) => JSON.parse(e.request_headers).authorization === '[REDACTED]')).toBe(true);
    expect(effects.map((e) => `${e.method} ${e.path}`).sort()).toEqual(
      stubCalls.map((c) => `${c.method} ${c.url.replace(/^\/api\/v1/, '')}`).sort(),
    );
    const [{ n }] = (await queryStore<{ n: number }>(store, 'SELECT count(*)::INTEGER AS n FROM exchanges WHERE response_body IS NOT NULL')) as [{ n: number }];
    expect(n).toBe(stubReads.length);
  });

  it('infers attribution from repository and issue when the bot does not pass the delivery header on', async () => {
    const store = await tempDir();
    const stack = await startDemoStack({ store, bot: { propagateDeliveryHeader: false } });
    const deliveries = [...generateDeliveries({ count: 40, seed: 3, secrets: DEMO_SECRETS })];
    await sendDeliveries(stack.recorder.url, deliveries, { concurrency: 1 });
    await stack.stop();
    const effects = await queryStore<{ correlation: string; path: string; delivery_id: string }>(store, 'SELECT correlation, path, delivery_id FROM effects');
    expect(effects.length).toBeGreaterThan(10);
    expect(new Set(effects.map((e) => e.correlation))).toEqual(new Set(['inferred']));
    // Sent one at a time, every effect belongs to the delivery about the same repository and issue.
    const subjects = await queryStore<{ delivery_id: string; repository: string; issue_number: number }>(store, 'SELECT delivery_id, repository, issue_number::INTEGER AS issue_number FROM deliveries');
    const subjectOf = new Map(subjects.map((s) => [s.delivery_id, `${s.repository}#${s.issue_number}`]));
    for (const e of effects.filter((x) => x.path.startsWith('/repos/'))) {
      const [, owner, repo, , num] = e.path.split('/').slice(1);
      expect(subjectOf.get(e.delivery_id)).toBe(`${owner}/${repo}#${num}`.replace(/^repos\//, ''));
    }
  });

  it('forwards the delivery byte for byte with its headers and X-Hookshadow-Delivery, and returns the legacy answer', async () => {
    const legacy = await echoLegacy(201);
    const { app, store, close } = await recorderApp([{ legacy: { url: legacy.url } }]);
    const body = '{ "action" : "opened",\n "zeta": 1, "alpha": "ü" }';
    const res = await app.inject({
      method: 'POST',
      url: '/hooks/github',
      headers: { 'content-type': 'application/json', 'x-github-event': 'issues', 'x-github-delivery': 'gh-77', 'x-custom': 'kept' },
      payload: body,
    });
    expect(res.statusCode).toBe(201);
    expect(res.headers['x-legacy']).toBe('yes');
    expect(res.json()).toEqual({ handled: true });
    expect(legacy.seen).toHaveLength(1);
    expect(legacy.seen[0]!.body.toString('utf8')).toBe(body);
    expect(legacy.seen[0]!.headers).toMatchObject({ 'x-custom': 'kept', 'x-github-delivery': 'gh-77', 'x-hookshadow-delivery': 'gh-77' });
    await close();
    const [row] = await queryStore<{ legacy_status: number; legacy_latency_us: string; mode: string }>(store, 'SELECT legacy_status, legacy_latency_us, mode FROM deliveries');
    expect(row).toMatchObject({ legacy_status: 201, mode: 'tee' });
    expect(Number(row!.legacy_latency_us)).toBeGreaterThan(0);
  });

  it('still forwards and answers with the legacy response when capture fails', async () => {
    const legacy = await echoLegacy(200);
    const failing: OpenWalFile = async (path) => {
      const file = await openWalFileOnDisk(path);
      return { ...file, writev: () => Promise.reject(Object.assign(new Error('EIO: i/o error'), { code: 'EIO' })) };
    };
    const { app } = await recorderApp([{ legacy: { url: legacy.url } }], { openFile: failing });
    const res = await app.inject({ method: 'POST', url: '/hooks/github', headers: { 'x-github-event': 'ping' }, payload: '{}' });
    expect(res.statusCode).toBe(200);
    expect(legacy.seen).toHaveLength(1);
    const metrics = await app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(/hookshadow_capture_failures_total\{kind="delivery"\} 1/);
  });

  it('keeps proxying the legacy handler\'s API calls while a stop drains the deliveries in flight', async () => {
    const upstreamCalls: string[] = [];
    const up = Fastify();
    up.post('/jobs', async (_req, reply) => {
      upstreamCalls.push('POST /jobs');
      return reply.status(201).send({ job_id: 'j1' });
    });
    const upUrl = await up.listen({ host: '127.0.0.1', port: 0 });
    onCleanup(() => up.close());
    let recorderUrl = '';
    const legacy = Fastify();
    legacy.post('/webhook', async () => {
      // The legacy handler is slow, and calls its API only after the recorder has been told to stop.
      await new Promise((r) => setTimeout(r, 300));
      const res = await request(`${recorderUrl}/egress/agents/jobs`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
      return { enqueued: res.statusCode };
    });
    const legacyUrl = await legacy.listen({ host: '127.0.0.1', port: 0 });
    onCleanup(() => legacy.close());
    const store = await tempDir();
    const recorder = await startRecorder(testConfig(store, { legacy: { url: `${legacyUrl}/webhook` }, upstreams: { agents: upUrl } }), { logger: silentLogger });
    recorderUrl = recorder.url;
    const delivery = request(`${recorder.url}/hooks/github`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json', 'x-github-event': 'ping', 'x-github-delivery': 'drain-1' } });
    await new Promise((r) => setTimeout(r, 100));
    const stopped = recorder.stop();
    const res = await delivery;
    expect(res.statusCode).toBe(200);
    expect(await res.body.json()).toEqual({ enqueued: 201 });
    await stopped;
    expect(upstreamCalls).toEqual(['POST /jobs']);
    expect(await queryStore(store, 'SELECT path, response_status FROM effects')).toEqual([{ path: '/jobs', response_status: 201 }]);
    expect(await queryStore(store, 'SELECT delivery_id FROM deliveries')).toEqual([{ delivery_id: 'drain-1' }]);
  });

  it('answers 502 when the legacy handler is down, and records the delivery with the error', async () => {
    const { app, store, close } = await recorderApp([{ legacy: { url: 'http://127.0.0.1:1/webhook', timeout_ms: 2000 } }]);
    const res = await app.inject({ method: 'POST', url: '/hooks/gitea', headers: { 'x-gitea-event': 'issues', 'x-gitea-delivery': 'g-1' }, payload: '{}' });
    expect(res.statusCode).toBe(502);
    expect(res.json()).toMatchObject({ code: 'HS_ERR_LEGACY_UNREACHABLE' });
    await close();
    const [row] = await queryStore<{ delivery_id: string; legacy_status: number | null; legacy_error: string }>(store, 'SELECT delivery_id, legacy_status, legacy_error FROM deliveries');
    expect(row!.delivery_id).toBe('g-1');
    expect(row!.legacy_status).toBeNull();
    expect(row!.legacy_error).toBeTruthy();
  });
});

describe('egress proxy', () => {
  async function upstream() {
    const app = Fastify();
    app.get('/api/v1/repos/o/r/issues/1', async () => ({ number: 1, labels: [] }));
    app.post('/api/v1/repos/o/r/issues/1/comments', async (_req, reply) => reply.status(201).send({ id: 5 }));
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    onCleanup(() => app.close());
    return url;
  }

  it('forwards to the configured upstream base path and records reads and effects, with tokens redacted', async () => {
    const base = await upstream();
    const { app, store, close } = await recorderApp([{ upstreams: { gitea: `${base}/api/v1` } }]);
    const read = await app.inject({ method: 'GET', url: '/egress/gitea/repos/o/r/issues/1?access_token=sekrit', headers: { authorization: 'token abc' } });
    expect(read.statusCode).toBe(200);
    expect(read.json()).toEqual({ number: 1, labels: [] });
    const write = await app.inject({ method: 'POST', url: '/egress/gitea/repos/o/r/issues/1/comments', headers: { 'content-type': 'application/json' }, payload: '{"body":"hi"}' });
    expect(write.statusCode).toBe(201);
    await close();
    const [x] = await queryStore<{ path: string; response_body: string; redacted: string[]; request_headers: string }>(store, 'SELECT path, response_body, redacted, request_headers FROM exchanges');
    expect(x!.path).toBe('/repos/o/r/issues/1?access_token=%5BREDACTED%5D');
    expect(x!.response_body).toBe('{"number":1,"labels":[]}');
    expect(x!.redacted).toEqual(['query:access_token', 'request.header:authorization']);
    expect(JSON.stringify(x)).not.toContain('sekrit');
    expect(await queryStore(store, 'SELECT upstream, method, path, request_body, response_status, correlation FROM effects')).toEqual([
      { upstream: 'gitea', method: 'POST', path: '/repos/o/r/issues/1/comments', request_body: '{"body":"hi"}', response_status: 201, correlation: 'none' },
    ]);
  });

  it('refuses upstreams that are not configured and paths that climb above the base', async () => {
    const { app } = await recorderApp([{ upstreams: { github: 'http://127.0.0.1:1' } }]);
    const unknown = await app.inject({ method: 'GET', url: '/egress/evil.example/x' });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ code: 'HS_ERR_UNKNOWN_UPSTREAM' });
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    for (const path of ['/egress/github/repos/%2e%2e/admin', '/egress/github/a/../../admin', '/egress/github/x\\..\\..\\admin', '/egress/github/x%5c..%5cadmin']) {
      expect((await rawRequest(base, { path })).status, path).toBe(400);
    }
    // An absolute-form request target must not change where the call goes.
    expect((await rawRequest(base, { path: 'http://evil.example/egress/github/x' })).status).toBe(400);
    // A request target Fastify cannot parse still gets an error in hookshadow's format.
    const malformed = await rawRequest(base, { path: '/egress/github/%zz' });
    expect(malformed.status).toBe(400);
    expect(JSON.parse(malformed.body)).toMatchObject({ code: 'HS_ERR_BAD_REQUEST' });
  });

  it('forwards Expect: 100-continue calls, asks for identity encoding, and survives malformed escapes', async () => {
    const seen: Record<string, unknown>[] = [];
    const up = Fastify();
    up.post('/api/v1/repos/o/r/issues/1/comments', async (req, reply) => {
      seen.push(req.headers);
      return reply.status(201).send({ id: 1 });
    });
    up.get('/api/v1/search', async () => ({ items: [] }));
    const upUrl = await up.listen({ host: '127.0.0.1', port: 0 });
    onCleanup(() => up.close());
    const { app, store, close } = await recorderApp([{ upstreams: { gitea: `${upUrl}/api/v1` } }]);
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    const posted = await rawRequest(base, {
      method: 'POST',
      path: '/egress/gitea/repos/o/r/issues/1/comments',
      headers: { 'content-type': 'application/json', expect: '100-continue', 'accept-encoding': 'gzip' },
      body: '{"body":"hi"}',
    });
    expect(posted.status).toBe(201);
    expect(seen[0]!['accept-encoding']).toBeUndefined();
    const odd = await rawRequest(base, { path: '/egress/gitea/search?q=/repos/%E0%A4%A/x/issues/1' });
    expect(odd.status).toBe(200);
    await close();
    expect(await queryStore(store, 'SELECT method, correlation FROM effects')).toEqual([{ method: 'POST', correlation: 'none' }]);
    expect(await queryStore(store, 'SELECT count(*)::INTEGER AS n FROM exchanges')).toEqual([{ n: 1 }]);
  });

  it('answers 502 when the upstream is down and still records the attempted effect', async () => {
    const { app, store, close } = await recorderApp([{ upstreams: { github: 'http://127.0.0.1:1' }, egress: { timeout_ms: 2000 } }]);
    const res = await app.inject({ method: 'DELETE', url: '/egress/github/repos/o/r/issues/1/labels/bug' });
    expect(res.statusCode).toBe(502);
    expect(res.json()).toMatchObject({ code: 'HS_ERR_UPSTREAM_UNREACHABLE' });
    await close();
    const [e] = await queryStore<{ method: string; response_status: number | null; error: string }>(store, 'SELECT method, response_status, error FROM effects');
    expect(e!.method).toBe('DELETE');
    expect(e!.response_status).toBeNull();
    expect(e!.error).toBeTruthy();
  });
});

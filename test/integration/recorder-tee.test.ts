import http from 'node:http';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { openWalFileOnDisk, type OpenWalFile } from '../../core/store/wal.js';
import { generateDeliveries } from '../../fixtures/generator/deliveries.js';
import { sendDeliveries } from '../../fixtures/generator/send.js';
import { DEMO_SECRETS, startDemoStack } from '../../fixtures/stack.js';
import { onCleanup, queryStore, tempDir } from '../helpers.js';
import { recorderApp } from './harness.js';

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
      return { ...file, datasync: () => Promise.reject(Object.assign(new Error('EIO: i/o error'), { code: 'EIO' })) };
    };
    const { app } = await recorderApp([{ legacy: { url: legacy.url } }], { openFile: failing });
    const res = await app.inject({ method: 'POST', url: '/hooks/github', headers: { 'x-github-event': 'ping' }, payload: '{}' });
    expect(res.statusCode).toBe(200);
    expect(legacy.seen).toHaveLength(1);
    const metrics = await app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(/hookshadow_capture_failures_total\{kind="delivery"\} 1/);
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
    // A real socket: inject() would normalize the dot segments away before the router sees them.
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    for (const path of ['/egress/github/repos/%2e%2e/admin', '/egress/github/a/../../admin']) {
      const status = await new Promise<number>((resolve, reject) => {
        const { port } = new URL(base);
        http.get({ host: '127.0.0.1', port, path }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        }).on('error', reject);
      });
      expect(status).toBe(400);
    }
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

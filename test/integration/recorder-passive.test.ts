import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { openWalFileOnDisk, type OpenWalFile } from '../../core/store/wal.js';
import { queryStore } from '../helpers.js';
import { recorderApp } from './harness.js';

const sign = (secret: string, body: string) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
const issueBody = JSON.stringify({ action: 'assigned', repository: { full_name: 'octo/repo' }, issue: { number: 12 } });
const ghHeaders = (extra: Record<string, string> = {}) => ({
  'content-type': 'application/json',
  'x-github-event': 'issues',
  'x-github-delivery': 'gh-1',
  authorization: 'Bearer should-not-be-stored',
  ...extra,
});

describe('recorder, passive mode', () => {
  it('acknowledges a delivery with 202 only once it is durable, and stores it exactly', async () => {
    const { app, store, close } = await recorderApp();
    const res = await app.inject({ method: 'POST', url: '/hooks/github', headers: ghHeaders(), payload: issueBody });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ delivery_id: 'gh-1', captured: true });
    await close();
    const rows = await queryStore(store, 'SELECT delivery_id, source, event, action, body, repository, issue_number::INTEGER AS issue_number, signature_valid, mode, headers FROM deliveries');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      delivery_id: 'gh-1',
      source: 'github',
      event: 'issues',
      action: 'assigned',
      body: issueBody,
      repository: 'octo/repo',
      issue_number: 12,
      signature_valid: null,
      mode: 'passive',
    });
    expect(JSON.parse(rows[0]!.headers as string).authorization).toBe('[REDACTED]');
  });

  it('rejects a bad signature with 401 under the reject policy, and still records it, flagged', async () => {
    const { app, store, close } = await recorderApp([{ secrets: { github: 's3cret' } }]);
    const bad = await app.inject({ method: 'POST', url: '/hooks/github', headers: ghHeaders({ 'x-hub-signature-256': sign('wrong', issueBody) }), payload: issueBody });
    expect(bad.statusCode).toBe(401);
    expect(bad.json()).toMatchObject({ code: 'HS_ERR_SIGNATURE_INVALID' });
    const good = await app.inject({
      method: 'POST',
      url: '/hooks/github',
      headers: ghHeaders({ 'x-github-delivery': 'gh-2', 'x-hub-signature-256': sign('s3cret', issueBody) }),
      payload: issueBody,
    });
    expect(good.statusCode).toBe(202);
    await close();
    const rows = await queryStore(store, 'SELECT delivery_id, signature_valid, rejected FROM deliveries ORDER BY delivery_id');
    expect(rows).toEqual([
      { delivery_id: 'gh-1', signature_valid: false, rejected: 'HS_ERR_SIGNATURE_INVALID' },
      { delivery_id: 'gh-2', signature_valid: true, rejected: null },
    ]);
  });

  it('accepts and flags a bad signature under the flag policy', async () => {
    const { app, store, close } = await recorderApp([{ secrets: { github: 's3cret' }, signature_policy: 'flag' }]);
    const res = await app.inject({ method: 'POST', url: '/hooks/github', headers: ghHeaders(), payload: issueBody });
    expect(res.statusCode).toBe(202);
    await close();
    expect(await queryStore(store, 'SELECT signature_valid, rejected FROM deliveries')).toEqual([{ signature_valid: false, rejected: null }]);
  });

  it('records malformed JSON as raw text with its parse error instead of dropping it', async () => {
    const { app, store, close } = await recorderApp();
    const res = await app.inject({ method: 'POST', url: '/hooks/github', headers: ghHeaders(), payload: '{"action": "assig' });
    expect(res.statusCode).toBe(202);
    await close();
    const [row] = await queryStore<{ body: string; parse_error: string }>(store, 'SELECT body, parse_error FROM deliveries');
    expect(row!.body).toBe('{"action": "assig');
    expect(row!.parse_error).toMatch(/JSON/);
  });

  it('answers 404 with a JSON error for an unknown source', async () => {
    const { app } = await recorderApp();
    const res = await app.inject({ method: 'POST', url: '/hooks/bitbucket', payload: '{}' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ code: 'HS_ERR_UNKNOWN_SOURCE', message: expect.stringContaining('github, gitea') });
  });

  it('answers 413 beyond the body limit and records the refused delivery without its body', async () => {
    const { app, store, close } = await recorderApp([{ body_limit_bytes: 1024 }]);
    const res = await app.inject({ method: 'POST', url: '/hooks/gitea', headers: { 'content-type': 'application/json', 'x-gitea-event': 'push' }, payload: 'x'.repeat(5000) });
    expect(res.statusCode).toBe(413);
    expect(res.json()).toMatchObject({ code: 'HS_ERR_BODY_TOO_LARGE' });
    await close();
    expect(await queryStore(store, 'SELECT source, event, body, body_size::INTEGER AS body_size, rejected FROM deliveries')).toEqual([
      { source: 'gitea', event: 'push', body: null, body_size: 5000, rejected: 'HS_ERR_BODY_TOO_LARGE' },
    ]);
  });

  it('answers 404 with a JSON error for unknown routes', async () => {
    const { app } = await recorderApp();
    const res = await app.inject({ method: 'GET', url: '/nope' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ code: 'HS_ERR_NOT_FOUND' });
  });

  it('answers 503 and does not acknowledge when the disk is full, then captures again once it is not', async () => {
    let full = true;
    const flaky: OpenWalFile = async (path) => {
      const file = await openWalFileOnDisk(path);
      return { ...file, writev: async (b) => (full ? Promise.reject(Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' })) : file.writev(b)) };
    };
    const { app, store, close } = await recorderApp([], { openFile: flaky });
    const refused = await app.inject({ method: 'POST', url: '/hooks/github', headers: ghHeaders(), payload: issueBody });
    expect(refused.statusCode).toBe(503);
    expect(refused.json()).toMatchObject({ code: 'HS_ERR_CAPTURE_FAILED' });
    const metrics = await app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(/hookshadow_capture_failures_total\{kind="delivery"\} 1/);
    full = false;
    const ok = await app.inject({ method: 'POST', url: '/hooks/github', headers: ghHeaders({ 'x-github-delivery': 'gh-2' }), payload: issueBody });
    expect(ok.statusCode).toBe(202);
    await close();
    expect(await queryStore(store, 'SELECT delivery_id FROM deliveries')).toEqual([{ delivery_id: 'gh-2' }]);
  });

  it('takes reported effects on POST /effects, attributing them, and refuses an invalid batch', async () => {
    const { app, store, close } = await recorderApp();
    await app.inject({ method: 'POST', url: '/hooks/github', headers: ghHeaders(), payload: issueBody });
    const ok = await app.inject({
      method: 'POST',
      url: '/effects',
      payload: {
        effects: [
          { upstream: 'github', method: 'POST', path: '/repos/octo/repo/issues/12/comments', request_body: { body: 'hi' }, response_status: 201 },
          { delivery_id: 'gh-1', upstream: 'agents', method: 'POST', path: '/jobs', request_body: '{"queue":"triage"}' },
          { upstream: 'github', method: 'GET', path: '/repos/octo/repo/issues/12', response_body: { labels: [] } },
        ],
      },
    });
    expect(ok.statusCode).toBe(202);
    expect(ok.json().accepted).toBe(3);
    const bad = await app.inject({ method: 'POST', url: '/effects', payload: { effects: [{ method: 'POST' }] } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'HS_ERR_EFFECTS_INVALID', message: expect.stringContaining('upstream') });
    await close();
    expect(await queryStore(store, 'SELECT path, delivery_id, correlation, origin, request_body FROM effects ORDER BY path')).toEqual([
      { path: '/jobs', delivery_id: 'gh-1', correlation: 'exact', origin: 'reported', request_body: '{"queue":"triage"}' },
      { path: '/repos/octo/repo/issues/12/comments', delivery_id: 'gh-1', correlation: 'inferred', origin: 'reported', request_body: '{"body":"hi"}' },
    ]);
    expect(await queryStore(store, 'SELECT path, response_body FROM exchanges')).toEqual([{ path: '/repos/octo/repo/issues/12', response_body: '{"labels":[]}' }]);
  });

  it('refuses an effects batch with unknown fields or mistyped values instead of dropping or coercing them', async () => {
    const { app } = await recorderApp();
    const call = { upstream: 'github', method: 'POST', path: '/x' };
    for (const entry of [{ ...call, colour: 'red' }, { ...call, response_status: '201' }]) {
      const res = await app.inject({ method: 'POST', url: '/effects', payload: { effects: [entry] } });
      expect(res.statusCode).toBe(400);
      expect(res.json().code).toBe('HS_ERR_EFFECTS_INVALID');
    }
  });

  it('serves /healthz and Prometheus /metrics', async () => {
    const { app } = await recorderApp();
    await app.inject({ method: 'POST', url: '/hooks/github', headers: ghHeaders(), payload: issueBody });
    const health = await app.inject({ method: 'GET', url: '/healthz' });
    expect(health.json()).toMatchObject({ status: 'ok', mode: 'passive', instance: 'test' });
    const metrics = await app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.headers['content-type']).toMatch(/text\/plain/);
    for (const name of ['hookshadow_deliveries_total', 'hookshadow_effects_total', 'hookshadow_exchanges_total', 'hookshadow_wal_bytes', 'hookshadow_wal_segments_pending', 'hookshadow_wal_flush_seconds', 'hookshadow_capture_failures_total', 'hookshadow_forward_failures_total']) {
      expect(metrics.body).toContain(name);
    }
    expect(metrics.body).toMatch(/hookshadow_deliveries_total\{source="github",outcome="captured"\} 1/);
  });
});

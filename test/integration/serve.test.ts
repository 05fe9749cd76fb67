import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyze } from '../../analyzer/analyze.js';
import { openAnalysisReader } from '../../analyzer/views.js';
import { openStoreReader } from '../../core/store/reader.js';
import { generateDeliveries, type GeneratedDelivery } from '../../fixtures/generator/deliveries.js';
import { sendDeliveries } from '../../fixtures/generator/send.js';
import { resolveServeConfig } from '../../serve/config.js';
import { startServe, type RunningServe } from '../../serve/server.js';
import { settingsPath } from '../../serve/settings.js';

/**
 * `hookshadow serve` end to end: the demo legacy bot and forge stub behind it, the
 * fixture flows in dry-run, real deliveries over HTTP; divergences in the API and in
 * SQL; a flow forced live sends real calls to the stub, and the legacy handler's
 * duplicates show as such; modes survive a restart.
 */

const TOKEN = 'test-admin-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'hookshadow-serve-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function start(store: string, inline: Record<string, unknown> = {}): Promise<RunningServe> {
  const config = await resolveServeConfig({
    inline: { store, port: 0, log_level: 'silent', ...inline, serve: { settle_ms: 100, segment_seconds: 3600, admin_token: TOKEN, ...(inline.serve as object) } },
    env: {},
  });
  return startServe(config);
}

async function api<T = any>(s: RunningServe, method: string, path: string, body?: unknown, headers: Record<string, string> = auth): Promise<{ status: number; body: T }> {
  const res = await request(`${s.url}${path}`, { method: method as 'GET', headers: { ...headers, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : null });
  return { status: res.statusCode, body: (await res.body.json()) as T };
}

/** Polls until `fn` returns a truthy value (settling takes settle_ms after the legacy handler answers). */
async function until<T>(fn: () => Promise<T>, what: string, ms = 10_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const settledCount = async (s: RunningServe) => (await api<{ days: { deliveries: number }[] }>(s, 'GET', '/api/summary/daily?days=2')).body.days.reduce((n, d) => n + d.deliveries, 0);

/** A `pull_request.opened` the legacy bot asks a review for. */
function openedPullRequest(seed: number): GeneratedDelivery {
  for (const d of generateDeliveries({ count: 400, seed, slim: true })) {
    if (d.event === 'pull_request' && d.action === 'opened' && !d.body.includes('"login":"octo-reviewer"')) return d;
  }
  throw new Error('the generator made no pull request');
}

describe('hookshadow serve, end to end', () => {
  let s: RunningServe;
  let store: string;
  const deliveries = [...generateDeliveries({ count: 30, seed: 11, slim: true })];

  beforeAll(async () => {
    store = join(tmp, 'e2e');
    s = await start(store);
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('runs the flows in dry-run beside the legacy handler and reports divergences in the API', async () => {
    expect(s.demo).not.toBeNull();
    const sent = await sendDeliveries(s.url, deliveries, { concurrency: 4 });
    expect(sent.every((r) => r.status === 200)).toBe(true);
    await until(async () => (await settledCount(s)) === deliveries.length, 'every delivery to settle');

    const flows = await api(s, 'GET', '/api/flows');
    expect(flows.body.dispatcher).toBe(true);
    expect(flows.body.flows.map((f: { name: string; mode: string }) => [f.name, f.mode])).toEqual([
      ['assign-agent', 'dry-run'],
      ['request-review', 'dry-run'],
      ['retry-agent', 'dry-run'],
    ]);
    const retry = flows.body.flows.find((f: { name: string }) => f.name === 'retry-agent');
    // The fixture flow's one deliberate difference: it re-adds agent-running on /retry.
    if (retry.deliveries > 0) expect(retry.divergence_rate).toBe(1);
    expect(retry.readiness).toMatchObject({ ready: false, reasons: expect.arrayContaining([expect.stringMatching(/soaked .* of 7 days/)]) });

    const page = await api(s, 'GET', '/flows/divergences?limit=2');
    expect(page.status).toBe(200);
    expect(page.body.deliveries.length).toBeGreaterThan(0);
    const d = page.body.deliveries[0];
    expect(d.divergences).toEqual(expect.arrayContaining([expect.objectContaining({ class: 'extra_in_flow', flow: 'retry-agent', node_id: 'mark', kind: 'issue.labels.add' })]));
    expect(d.legacy.map((e: { kind: string }) => e.kind)).toEqual(expect.arrayContaining(['agent.enqueue', 'issue.comment']));
    if (page.body.next_cursor) {
      const next = await api(s, 'GET', `/flows/divergences?limit=2&cursor=${page.body.next_cursor}`);
      expect(next.body.deliveries.map((x: { delivery_id: string }) => x.delivery_id)).not.toContain(d.delivery_id);
    }
    const byFlow = await api(s, 'GET', '/flows/divergences?flow=request-review');
    expect(byFlow.body.deliveries).toEqual([]);
  });

  it('runs the flows on a thread below the acknowledging thread\'s priority (Linux: nice is per thread)', async () => {
    // /proc/<pid>/task/<tid>/stat: the nice value is field 19, counted after the parenthesised command name.
    const niceOf = async (statFile: string) => Number((await readFile(statFile, 'utf8')).split(') ')[1]!.split(' ')[16]);
    const tasks = await readdir('/proc/self/task');
    const nices = await Promise.all(tasks.map((t) => niceOf(`/proc/self/task/${t}/stat`).catch(() => null)));
    expect(await niceOf('/proc/thread-self/stat')).toBe(0);
    expect(nices).toContain(10);
  });

  it('refuses the admin API without the token, and a malformed query with a clear error', async () => {
    expect((await api(s, 'GET', '/api/flows', undefined, {})).body.code).toBe('HS_ERR_UNAUTHORIZED');
    expect((await api(s, 'GET', '/api/flows', undefined, { authorization: 'Bearer wrong' })).status).toBe(401);
    const bad = await api(s, 'GET', '/flows/divergences?since=yesterday');
    expect(bad).toMatchObject({ status: 400, body: { code: 'HS_ERR_BAD_REQUEST' } });
  });

  it('gates a cutover, takes a forced one, and then a live flow really acts: the legacy duplicates show', async () => {
    const before = (await api(s, 'GET', '/api/flows/mode')).body.history.length;
    const refused = await api(s, 'PUT', '/api/flows/assign-agent/mode', { mode: 'live' });
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe('HS_ERR_CUTOVER_BLOCKED');
    expect(refused.body.reasons).toEqual(expect.arrayContaining([expect.stringMatching(/^assign-agent: soaked/), expect.stringMatching(/deliveries run in dry-run/)]));
    expect((await api(s, 'GET', '/api/flows/mode')).body.history).toHaveLength(before);

    const noop = await api(s, 'PUT', '/api/flows/request-review/mode', { mode: 'dry-run' });
    expect(noop.body).toEqual({ changed: false, from: 'dry-run', to: 'dry-run' });

    const forced = await api(s, 'PUT', '/api/flows/assign-agent/mode', { mode: 'live', force: true, who: 'alice' });
    expect(forced.status).toBe(200);
    expect(forced.body.entry).toMatchObject({ who: 'alice', from: 'dry-run', to: 'live', forced: true, evidence: { 'assign-agent': expect.objectContaining({ reasons: expect.any(Array) }) } });

    // request-review decides from the delivery alone, so the legacy handler's own call cannot change its mind.
    const live = await api(s, 'PUT', '/api/flows/request-review/mode', { mode: 'live', force: true });
    expect(live.status).toBe(200);
    const stub = s.demo!.stub;
    const callsBefore = stub.calls.length;
    const d = openedPullRequest(5);
    expect((await sendDeliveries(s.url, [d], { concurrency: 1 }))[0]!.status).toBe(200);
    const row = await until(async () => (await api(s, 'GET', '/flows/divergences?all=true&limit=100')).body.deliveries.find((x: { delivery_id: string }) => x.delivery_id === d.deliveryId), 'the pull request to settle');
    expect(row.runs).toEqual([expect.objectContaining({ flow: 'request-review', mode: 'live', status: 'ok' })]);
    // Both asked for the review: the bot through the egress proxy (with its token), the flow directly (none configured).
    const reviews = stub.calls.slice(callsBefore).filter((c) => c.method === 'POST' && c.url.endsWith('/requested_reviewers'));
    expect(reviews.map((c) => (c.authorization === null ? 'flow' : 'legacy')).sort()).toEqual(['flow', 'legacy']);
    // The legacy handler's duplicate is reported as such, not as a match.
    expect(row.duplicates).toEqual([expect.objectContaining({ kind: 'pr.review.request', args: { reviewers: ['octo-reviewer'] } })]);
    expect(row.divergences).toEqual([]);
  });

  it('writes live segments that `analyze` and SQL read like any replay, and keeps the modes across a restart', async () => {
    await s.stop();
    const reader = await openStoreReader(store);
    try {
      const [n] = await reader.query<{ n: number }>('SELECT count(*)::INTEGER AS n FROM deliveries');
      expect(n!.n).toBe(deliveries.length + 1);
    } finally {
      reader.close();
    }
    // The live segment, as `hookshadow sql` sees it: serve's own divergences, before any offline analysis.
    const views = await openAnalysisReader(store, 'latest');
    try {
      const rows = await views.query<{ flow: string; mode: string; n: number }>(
        `SELECT f.flow, f.mode, count(d.class)::INTEGER AS n FROM flow_runs f LEFT JOIN divergences d USING (run_id) GROUP BY ALL ORDER BY 1, 2`,
      );
      expect(rows).toEqual(expect.arrayContaining([expect.objectContaining({ flow: 'request-review', mode: 'live' }), expect.objectContaining({ flow: 'retry-agent', mode: 'dry-run' })]));
      expect(rows.find((r) => r.flow === 'retry-agent')!.n).toBeGreaterThan(0);
    } finally {
      views.close();
    }
    const result = await analyze({ store, replay: 'latest', limit: 10 });
    expect(result.totals.deliveries).toBe(deliveries.length + 1);
    expect(result.by_flow.map((f) => f.flow).sort()).toEqual(['assign-agent', 'request-review', 'retry-agent']);

    const settings = JSON.parse(await readFile(settingsPath(store), 'utf8'));
    expect(settings.flows).toEqual({ 'assign-agent': 'live', 'request-review': 'live' });
    s = await start(store);
    const modes = await api(s, 'GET', '/api/flows/mode');
    expect(modes.body.effective).toEqual({ 'assign-agent': 'live', 'request-review': 'live', 'retry-agent': 'dry-run' });
    expect(modes.body.history.map((e: { flow: string; who: string }) => [e.flow, e.who])).toEqual([['assign-agent', 'alice'], ['request-review', 'admin']]);
    // The rolled segment is part of the live view after a restart.
    expect(await settledCount(s)).toBe(deliveries.length + 1);
  });
});

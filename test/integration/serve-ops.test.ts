import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStoreReader } from '../../core/store/reader.js';
import { generateDeliveries } from '../../fixtures/generator/deliveries.js';
import { sendDeliveries } from '../../fixtures/generator/send.js';
import { resolveServeConfig } from '../../serve/config.js';
import { startServe, type RunningServe } from '../../serve/server.js';

/** serve under pressure: a full queue, a shutdown under load, SSE resume, the automatic fallback. */

const TOKEN = 'ops-test-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'hookshadow-serve-ops-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function start(name: string, inline: Record<string, any> = {}): Promise<RunningServe> {
  const config = await resolveServeConfig({
    inline: { store: join(tmp, name), port: 0, log_level: 'silent', ...inline, serve: { settle_ms: 50, segment_seconds: 3600, admin_token: TOKEN, ...inline.serve } },
    env: {},
  });
  return startServe(config);
}

async function get(s: RunningServe, path: string): Promise<any> {
  const res = await request(`${s.url}${path}`, { headers: auth });
  return res.body.json();
}

async function liveRows(store: string): Promise<number> {
  const reader = await openStoreReader(store);
  try {
    const [r] = await reader.query<{ n: number }>(`SELECT count(*)::INTEGER AS n FROM read_parquet('${store}/replays/live-*/live_deliveries.parquet')`);
    return r!.n;
  } finally {
    reader.close();
  }
}

describe('serve operations', () => {
  it('a full queue drops the flows of new deliveries, never the deliveries: counted, announced, still acknowledged and stored', async () => {
    const s = await start('full', { serve: { queue_size: 2, settle_ms: 60_000 } });
    try {
      const ds = [...generateDeliveries({ count: 6, seed: 3, slim: true })];
      const sent = await sendDeliveries(s.url, ds, { concurrency: 1 });
      expect(sent.map((r) => r.status)).toEqual(ds.map(() => 200));
      // The flows run in serve's worker thread, which reports drops a moment later.
      await expect.poll(async () => (await (await request(`${s.url}/metrics`)).body.text()).match(/hookshadow_serve_queue_dropped_total (\d+)/)?.[1]).toBe('4');
      expect(s.context.queued()).toBe(2);
    } finally {
      await s.stop();
    }
    const reader = await openStoreReader(join(tmp, 'full'));
    try {
      const [r] = await reader.query<{ n: number }>('SELECT count(*)::INTEGER AS n FROM deliveries');
      expect(r!.n).toBe(6);
    } finally {
      reader.close();
    }
    // Shutdown settled the two that were queued.
    expect(await liveRows(join(tmp, 'full'))).toBe(2);
  });

  it('a shutdown under load loses nothing: every acknowledged delivery is stored and settled', async () => {
    const s = await start('load');
    const ds = [...generateDeliveries({ count: 300, seed: 8, slim: true })];
    let acked = 0;
    const sending = sendDeliveries(s.url, ds, { concurrency: 16, onResult: (r) => (acked += r.status === 200 ? 1 : 0) });
    await new Promise((r) => setTimeout(r, 150));
    await s.stop();
    const results = await sending;
    const ok = results.filter((r) => r.status === 200).length;
    expect(ok).toBe(acked);
    expect(ok).toBeGreaterThan(0);
    // Refused ones were told to retry (503), not silently lost.
    expect(results.every((r) => r.status === 200 || r.status === 503 || r.status === null)).toBe(true);
    const store = join(tmp, 'load');
    const reader = await openStoreReader(store);
    try {
      const [r] = await reader.query<{ n: number }>('SELECT count(*)::INTEGER AS n FROM deliveries WHERE rejected IS NULL');
      expect(r!.n).toBe(ok);
    } finally {
      reader.close();
    }
    expect(await liveRows(store)).toBe(ok);
  });

  it('SSE: events carry ids, and Last-Event-ID resumes after the last one seen', async () => {
    const s = await start('sse');
    try {
      await sendDeliveries(s.url, [...generateDeliveries({ count: 3, seed: 4, slim: true })], { concurrency: 1 });
      const read = async (headers: Record<string, string>, deliveries: number) => {
        const agent = new Agent();
        const res = await request(`${s.url}/api/events?access_token=${TOKEN}`, { headers, dispatcher: agent });
        expect(res.headers['content-type']).toMatch(/text\/event-stream/);
        let text = '';
        for await (const chunk of res.body) {
          text += chunk;
          if (text.split('event: delivery').length - 1 >= deliveries) break;
        }
        res.body.destroy();
        await agent.destroy();
        return [...text.matchAll(/id: (\d+)\nevent: (\S+)/g)].map((m) => ({ id: Number(m[1]), type: m[2]! }));
      };
      const all = await read({ 'last-event-id': '0' }, 3);
      const deliveries = all.filter((e) => e.type === 'delivery');
      expect(deliveries.length).toBeGreaterThanOrEqual(3);
      expect(all.map((e) => e.id)).toEqual([...all.map((e) => e.id)].sort((a, b) => a - b));
      const resumed = await read({ 'last-event-id': String(deliveries[0]!.id) }, 2);
      expect(resumed[0]!.id).toBe(deliveries[0]!.id + 1);
      const refused = await request(`${s.url}/api/events`);
      expect(refused.statusCode).toBe(401);
      await refused.body.dump();
    } finally {
      await s.stop();
    }
  });

  it('automatic fallback: a live flow that diverges too often goes back to dry-run, with a history entry', async () => {
    const s = await start('fallback', { fallback: { max_divergence_rate: 0, min_runs: 1, window_runs: 5 } });
    try {
      const flip = await request(`${s.url}/api/flows/retry-agent/mode`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ mode: 'live', force: true }) });
      expect(flip.statusCode).toBe(200);
      await flip.body.dump();
      // retry-agent re-adds agent-running, which the legacy bot does not: every live /retry run diverges.
      const retries = [...generateDeliveries({ count: 400, seed: 12, slim: true })].filter((d) => {
        const comment = JSON.parse(d.body).comment as { body?: string; user?: { login?: string } } | undefined;
        return d.event === 'issue_comment' && d.action === 'created' && /^\/retry\b/m.test(comment?.body ?? '') && comment?.user?.login !== 'hookbot';
      });
      expect(retries.length).toBeGreaterThan(0);
      await sendDeliveries(s.url, retries.slice(0, 3), { concurrency: 1 });
      const deadline = Date.now() + 10_000;
      let modes: any;
      do {
        await new Promise((r) => setTimeout(r, 50));
        modes = await get(s, '/api/flows/mode');
      } while (modes.effective['retry-agent'] !== 'dry-run' && Date.now() < deadline);
      expect(modes.effective['retry-agent']).toBe('dry-run');
      expect(modes.history.at(-1)).toMatchObject({ who: 'hookshadow', flow: 'retry-agent', from: 'live', to: 'dry-run', evidence: expect.objectContaining({ reason: 'automatic fallback' }) });
    } finally {
      await s.stop();
    }
  });

  it('the cutover gate lets a flow go live once it has soaked enough, and holds back one that diverges', async () => {
    const s = await start('gate', { cutover: { min_days: 0, min_deliveries: 2, max_divergence_rate: 0 } });
    try {
      const ds = [...generateDeliveries({ count: 400, seed: 21, slim: true })];
      const prs = ds.filter((d) => d.event === 'pull_request' && d.action === 'opened').slice(0, 2);
      const retries = ds.filter((d) => d.event === 'issue_comment' && d.action === 'created' && /^\/retry\b/m.test(JSON.parse(d.body).comment.body) && JSON.parse(d.body).comment.user.login !== 'hookbot').slice(0, 2);
      await sendDeliveries(s.url, [...prs, ...retries], { concurrency: 1 });
      const deadline = Date.now() + 10_000;
      let flows: any;
      do {
        await new Promise((r) => setTimeout(r, 50));
        flows = await get(s, '/api/flows');
      } while (flows.flows.find((f: { name: string }) => f.name === 'retry-agent').deliveries < 2 && Date.now() < deadline);
      const review = flows.flows.find((f: { name: string }) => f.name === 'request-review');
      expect(review.readiness).toMatchObject({ ready: true, reasons: [] });
      const put = (flow: string) => request(`${s.url}/api/flows/${flow}/mode`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ mode: 'live' }) });
      const ok = await put('request-review');
      expect(ok.statusCode).toBe(200);
      expect(((await ok.body.json()) as any).entry).toMatchObject({ forced: false, evidence: { 'request-review': expect.objectContaining({ deliveries: 2, divergent: 0, reasons: [] }) } });
      const held = await put('retry-agent');
      expect(held.statusCode).toBe(409);
      expect(((await held.body.json()) as any).reasons).toEqual([expect.stringMatching(/^retry-agent: divergence rate 100\.00% \(2 of 2 runs\) is above 0\.00%$/)]);
    } finally {
      await s.stop();
    }
  });

  it('refuses a bad config with a clear error', async () => {
    await expect(resolveServeConfig({ inline: { flows: { dir: 'x', mood: 'live' } }, env: {} })).rejects.toThrow(/Invalid serve configuration:\n {2}\/flows must NOT have additional properties/);
    await expect(resolveServeConfig({ inline: {}, env: { HOOKSHADOW_ADMIN_TOKEN: 'short' } })).rejects.toThrow(/HOOKSHADOW_ADMIN_TOKEN must be at least 16 characters/);
    const config = await resolveServeConfig({ inline: { store: join(tmp, 'bad'), port: 0, log_level: 'silent', flows: { modes: { 'no-such-flow': 'live' } } }, env: {} });
    await expect(startServe(config)).rejects.toThrow(/flows\.modes names unknown flow\(s\) no-such-flow/);
  });
});

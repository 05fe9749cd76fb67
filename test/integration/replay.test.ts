import { createHmac } from 'node:crypto';
import { cp, readFile, readdir, writeFile, mkdir } from 'node:fs/promises';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { describe, expect, it } from 'vitest';
import { sqlString } from '../../core/sql.js';
import type { ReplayManifest } from '../../core/replay-schema.js';
import { DEMO_SECRETS } from '../../fixtures/stack.js';
import { buildForgeStub } from '../../fixtures/forge-stub/app.js';
import { startRecorder } from '../../recorder/server.js';
import { asResourceError, replay } from '../../replayer/replay.js';
import { resolveReplayId } from '../../replayer/replays.js';
import { openStoreReader, streamDeliveries } from '../../replayer/source.js';
import { onCleanup, queryStore, silentLogger, tempDir, testConfig } from '../helpers.js';
import { runCli } from './cli.js';
import { recorderApp } from './harness.js';

const FLOWS = 'fixtures/flows';

/** A private copy of the committed fixture store (replays write into the store). */
async function fixtureStore(): Promise<string> {
  const dir = join(await tempDir(), 'store');
  await cp('fixtures/store', dir, { recursive: true });
  return dir;
}

async function sql<T = Record<string, unknown>>(query: string): Promise<T[]> {
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  try {
    return (await conn.runAndReadAll(query)).getRowObjectsJson() as T[];
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

const runs = (dir: string) => sqlString(join(dir, 'flow_runs.parquet'));
const nodes = (dir: string) => sqlString(join(dir, 'node_runs.parquet'));

describe('hookshadow replay over the committed fixture store', () => {
  it('replays every delivery in dry-run with worker threads and writes runs, intents and a manifest', async () => {
    const store = await fixtureStore();
    const res = await runCli(['replay', '--store', store, '--flows', FLOWS, '--concurrency', '2', '--format', 'json']);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const summary = JSON.parse(res.stdout) as { replay_id: string; dir: string; deliveries: number; runs: number; intents: number; errors: number };
    const deliveries = (await queryStore<{ n: number }>(store, 'SELECT count(*)::INTEGER AS n FROM deliveries'))[0]!.n;
    expect(summary.deliveries).toBe(deliveries);
    expect(summary.errors).toBe(0);

    const manifest = JSON.parse(await readFile(join(summary.dir, 'manifest.json'), 'utf8')) as ReplayManifest;
    expect(manifest).toMatchObject({ replay_id: summary.replay_id, mode: 'dry-run', workers: 2, counts: { deliveries, runs: summary.runs, intents: summary.intents } });
    expect(manifest.flows.map((f) => f.name).sort()).toEqual(['assign-agent', 'request-review', 'retry-agent']);

    const [counts] = await sql<{ runs: number; intents: number; bad: number }>(
      `SELECT (SELECT count(*)::INTEGER FROM read_parquet(${runs(summary.dir)})) AS runs,
              (SELECT count(*)::INTEGER FROM read_parquet(${nodes(summary.dir)}) WHERE intent IS NOT NULL) AS intents,
              -- intent is non-NULL exactly for mutating nodes that would have acted
              (SELECT count(*)::INTEGER FROM read_parquet(${nodes(summary.dir)})
               WHERE (intent IS NOT NULL) <> (effect_class = 'mutate' AND status = 'planned')) AS bad`,
    );
    expect(counts).toEqual({ runs: summary.runs, intents: summary.intents, bad: 0 });
    // No replay leaves its staging directory behind.
    expect(await readdir(join(store, '_staging', 'replays')).catch(() => [])).toEqual([]);
  });

  it("the fixture flows intend what the legacy bot did, except the one documented difference", async () => {
    const store = await fixtureStore();
    const summary = await replay({ store, flowsDir: FLOWS, concurrency: 1 });
    // Legacy comments (from the egress capture) vs the flows' comment intents, per issue and text.
    const effects = join(store, 'effects', '*', '*.parquet');
    const rows = await sql<{ side: string; target: string; body: string }>(
      `SELECT 'legacy' AS side, m.r || '#' || m.n AS target, body
       FROM (SELECT regexp_extract(path, '/repos/(.+)/issues/(\\d+)/comments', ['r', 'n']) AS m, request_body::JSON->>'body' AS body
             FROM read_parquet(${sqlString(effects)}, hive_partitioning = true) WHERE path LIKE '%/comments')
       UNION ALL
       SELECT 'flow', intent->>'target', intent->'args'->>'body' FROM read_parquet(${nodes(summary.dir)}) WHERE intent->>'kind' = 'issue.comment'
       ORDER BY target, body, side`,
    );
    const legacy = rows.filter((r) => r.side === 'legacy').map((r) => `${r.target} ${r.body}`);
    const flow = rows.filter((r) => r.side === 'flow').map((r) => `${r.target} ${r.body}`);
    expect(legacy.length).toBeGreaterThan(10);
    expect(flow).toEqual(legacy); // job ids included: dry-run echoes the legacy queue's answers

    const labels = (await sql<{ legacy: number; flow: number; retry: number }>(
      `SELECT (SELECT count(*)::INTEGER FROM read_parquet(${sqlString(effects)}, hive_partitioning = true) WHERE path LIKE '%/labels') AS legacy,
              (SELECT count(*)::INTEGER FROM read_parquet(${nodes(summary.dir)}) WHERE intent->>'kind' = 'issue.labels.add') AS flow,
              (SELECT count(*)::INTEGER FROM read_parquet(${nodes(summary.dir)}) WHERE intent->>'kind' = 'issue.labels.add' AND flow = 'retry-agent') AS retry`,
    ))[0]!;
    // The deliberate difference: the flow also labels on /retry; the legacy bot does not.
    expect(labels.retry).toBeGreaterThan(0);
    expect(labels.flow).toBe(labels.legacy + labels.retry);
  });

  it('shards partition the deliveries, and the shards union to the full replay', async () => {
    const store = await fixtureStore();
    const full = await replay({ store, flowsDir: FLOWS, concurrency: 1, id: 'full' });
    const one = await replay({ store, flowsDir: FLOWS, concurrency: 1, shard: { k: 1, n: 2 } });
    const two = await replay({ store, flowsDir: FLOWS, concurrency: 1, shard: { k: 2, n: 2 } });
    expect(one.replay_id).toMatch(/-shard-1-of-2$/);
    expect(one.deliveries).toBeGreaterThan(0);
    expect(two.deliveries).toBeGreaterThan(0);
    expect(one.deliveries + two.deliveries).toBe(full.deliveries);
    const [diff] = await sql<{ missing: number; dup: number }>(
      `WITH u AS (SELECT run_id FROM read_parquet([${runs(one.dir)}, ${runs(two.dir)}]))
       SELECT (SELECT count(*)::INTEGER FROM (SELECT run_id FROM read_parquet(${runs(full.dir)}) EXCEPT SELECT run_id FROM u)) AS missing,
              (SELECT (count(*) - count(DISTINCT run_id))::INTEGER FROM u) AS dup`,
    );
    expect(diff).toEqual({ missing: 0, dup: 0 });
    expect(await resolveReplayId(store, 'latest')).toBe(two.replay_id);
    expect(await resolveReplayId(store, 'full')).toBe('full');
    await expect(resolveReplayId(store, 'nope')).rejects.toMatchObject({ code: 'HS_ERR_REPLAY_NOT_FOUND' });
    await expect(replay({ store, flowsDir: FLOWS, id: 'full' })).rejects.toMatchObject({ code: 'HS_ERR_USAGE' });
  });

  it('the same captures and flows give byte-identical files (--no-timings), whatever the worker count', async () => {
    const store = await fixtureStore();
    const a = await runCli(['replay', '--store', store, '--flows', FLOWS, '--no-timings', '--id', 'a', '--concurrency', '1']);
    const b = await runCli(['replay', '--store', store, '--flows', FLOWS, '--no-timings', '--id', 'b', '--concurrency', '2']);
    expect([a.code, b.code]).toEqual([0, 0]);
    for (const file of ['flow_runs.parquet', 'node_runs.parquet']) {
      const [x, y] = await Promise.all([readFile(join(store, 'replays', 'a', file)), readFile(join(store, 'replays', 'b', file))]);
      expect(x.equals(y), file).toBe(true);
    }
    const c = await runCli(['replay', '--store', store, '--flows', FLOWS, '--no-timings', '--id', 'c', '--seed', '9']);
    expect(c.code).toBe(0);
    // A different seed changes only synthetic values, not which nodes ran.
    const [same] = await sql<{ n: number }>(
      `SELECT count(*)::INTEGER AS n FROM (SELECT run_id, node_id, status FROM read_parquet(${nodes(join(store, 'replays', 'a'))})
       EXCEPT SELECT run_id, node_id, status FROM read_parquet(${nodes(join(store, 'replays', 'c'))}))`,
    );
    expect(same!.n).toBe(0);
  });

  it('dry-run never opens a socket', async () => {
    const store = await fixtureStore();
    const original = Socket.prototype.connect;
    const attempts: unknown[] = [];
    Socket.prototype.connect = function (this: Socket, ...args: unknown[]) {
      attempts.push(args[0]);
      throw new Error('dry-run must not connect anywhere');
    } as typeof Socket.prototype.connect;
    try {
      const summary = await replay({ store, flowsDir: FLOWS, concurrency: 1, upstreams: { github: { url: 'http://127.0.0.1:9' } } });
      expect(summary.intents).toBeGreaterThan(20);
      expect(summary.errors).toBe(0);
    } finally {
      Socket.prototype.connect = original;
    }
    expect(attempts).toEqual([]);
  });
});

describe('hookshadow replay: errors are clear and leave nothing behind', () => {
  it('invalid flows: every problem with file:line:col, exit 1, no replay written', async () => {
    const store = await fixtureStore();
    const flows = await tempDir();
    await writeFile(join(flows, 'bad.yaml'), 'name: bad\non: { event: issues }\nnodes:\n  - id: a\n    op: forge.issue.coment\n  - id: b\n    op: log\n    needs: [zz]\n    with: { message: x }\n');
    const res = await runCli(['replay', '--store', store, '--flows', flows]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('HS_ERR_FLOWS_INVALID');
    expect(res.stderr).toContain(`${join(flows, 'bad.yaml')}:5:9: HS_ERR_UNKNOWN_OP: unknown op "forge.issue.coment"`);
    expect(res.stderr).toContain(`${join(flows, 'bad.yaml')}:8:13: HS_ERR_UNKNOWN_NODE`);
    expect(await readdir(join(store, 'replays')).catch(() => [])).toEqual([]);
    const validate = await runCli(['flows', 'validate', flows]);
    expect(validate.code).toBe(1);
    expect(validate.stderr.split('\n').filter((l) => l.includes(': HS_ERR_')).length).toBeGreaterThanOrEqual(2);
    const good = await runCli(['flows', 'validate', FLOWS, '--format', 'json']);
    expect(good.code).toBe(0);
    expect(JSON.parse(good.stdout)).toMatchObject({ valid: true, problems: [] });
  });

  it('no store, or a corrupt Parquet file, is named', async () => {
    const empty = await tempDir();
    const none = await runCli(['replay', '--store', empty, '--flows', FLOWS]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/HS_ERR_STORE_UNREADABLE: .* is not a hookshadow store/);
    const store = await fixtureStore();
    const day = (await readdir(join(store, 'deliveries')))[0]!;
    await writeFile(join(store, 'deliveries', day, 'zz-corrupt.parquet'), 'PAR1 this is not parquet');
    const corrupt = await runCli(['replay', '--store', store, '--flows', FLOWS]);
    expect(corrupt.code).toBe(1);
    expect(corrupt.stderr).toMatch(/HS_ERR_STORE_CORRUPT: .*zz-corrupt\.parquet is not a readable Parquet file/);
  });

  it('running out of memory or disk is a clear HS_ERR_REPLAY_RESOURCES, other errors pass through', () => {
    const oom = asResourceError(new Error('Out of Memory Error: failed to allocate data of size 16.0 MiB (61.0 MiB/61.0 MiB used)\n\nPossible solutions: ...'));
    expect(oom).toMatchObject({ code: 'HS_ERR_REPLAY_RESOURCES', message: expect.stringContaining('nothing was written (Out of Memory Error: failed to allocate') });
    expect(asResourceError(new Error('IO Error: No space left on device'))).toMatchObject({ code: 'HS_ERR_REPLAY_RESOURCES' });
    const other = new Error('boom');
    expect(asResourceError(other)).toBe(other);
  });

  it('usage errors exit 2', async () => {
    const store = await fixtureStore();
    for (const args of [['--shard', '3/2'], ['--since', 'yesterday'], ['--concurrency', '0'], ['--id', 'latest'], ['--mode', 'sideways']]) {
      const res = await runCli(['replay', '--store', store, '--flows', FLOWS, ...args]);
      expect(res.code, args.join(' ')).toBe(2);
    }
  });
});

describe('live mode and re-delivery', () => {
  it('refuses to start live without the capabilities the flows need', async () => {
    const store = await fixtureStore();
    const res = await runCli(['replay', '--store', store, '--flows', FLOWS, '--mode', 'live', '--upstream', 'github=http://127.0.0.1:9']);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/HS_ERR_CAPABILITIES_MISSING: .*agent-queue:agents .*forge:gitea/);
    // Only the flows that go live need their capabilities.
    const one = await runCli(['replay', '--store', store, '--flows', FLOWS, '--flow-mode', 'request-review=live', '--upstream', 'github=http://127.0.0.1:9']);
    expect(one.code).toBe(1);
    expect(one.stderr).toContain('forge:gitea (flow request-review)');
    expect(one.stderr).not.toContain('assign-agent');
    const typo = await runCli(['replay', '--store', store, '--flows', FLOWS, '--flow-mode', 'asign-agent=off']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/HS_ERR_USAGE: Mode override for unknown flow\(s\) "asign-agent"/);
  });

  it('live replay calls the sandbox forge and records what it answered; per-flow modes apply', async () => {
    const store = await fixtureStore();
    const stub = buildForgeStub();
    const url = await stub.app.listen({ host: '127.0.0.1', port: 0 });
    onCleanup(() => stub.app.close());
    const res = await runCli(
      ['replay', '--store', store, '--flows', FLOWS, '--mode', 'live', '--flow-mode', 'request-review=off', '--flow-mode', 'retry-agent=dry-run', '--concurrency', '1', '--format', 'json', '--upstream', `github=${url}`, '--upstream', `gitea=${url}/api/v1`, '--upstream', `forgejo=${url}/api/v1`, '--upstream', `agents=${url}`],
      { env: { HOOKSHADOW_TOKEN_GITHUB: 'ghp_sandbox' } },
    );
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const summary = JSON.parse(res.stdout) as { dir: string; intents: number };
    const byMode = await sql<{ flow: string; mode: string; intents: number }>(
      `SELECT flow, mode, sum(intent_count)::INTEGER AS intents FROM read_parquet(${runs(summary.dir)}) GROUP BY ALL ORDER BY flow`,
    );
    expect(byMode.map((r) => [r.flow, r.mode])).toEqual([['assign-agent', 'live'], ['retry-agent', 'dry-run']]);
    const posts = stub.calls.filter((c) => c.method !== 'GET');
    expect(posts.length).toBe(byMode[0]!.intents);
    expect(stub.calls.some((c) => c.url.includes('requested_reviewers'))).toBe(false);
    expect(stub.calls.some((c) => c.url.startsWith('/repos/') && c.authorization === 'token ghp_sandbox')).toBe(true);
    // Node outputs are the forge's real answers: the comment ids the stub assigned, the job ids it queued.
    const acks = await sql<{ output: string; body: string }>(
      `SELECT output::VARCHAR AS output, intent->'args'->>'body' AS body FROM read_parquet(${nodes(summary.dir)}) WHERE node_id = 'ack' AND status = 'ok'`,
    );
    expect(acks.length).toBeGreaterThan(5);
    for (const a of acks) {
      expect(JSON.parse(a.output)).toMatchObject({ id: expect.any(Number), html_url: expect.stringContaining('#issuecomment-') });
      expect(a.body).toMatch(/queued as job-\d+$/);
    }
  });

  it('--live-reads: dry-run reads come from the upstream, and nothing is mutated', async () => {
    const store = await fixtureStore();
    const stub = buildForgeStub();
    const url = await stub.app.listen({ host: '127.0.0.1', port: 0 });
    onCleanup(() => stub.app.close());
    const res = await runCli(['replay', '--store', store, '--flows', FLOWS, '--live-reads', '--format', 'json', '--upstream', `github=${url}`, '--upstream', `gitea=${url}/api/v1`]);
    expect(res.code).toBe(0);
    const summary = JSON.parse(res.stdout) as { intents: number };
    expect(summary.intents).toBeGreaterThan(20);
    expect(stub.calls.length).toBeGreaterThan(10);
    expect(stub.calls.every((c) => c.method === 'GET')).toBe(true);
  });

  it('re-delivers captures to a webhook URL, re-signed with the configured secrets', async () => {
    const store = await fixtureStore();
    const target = await tempDir();
    const recorder = await startRecorder(testConfig(target, { secrets: { github: [DEMO_SECRETS.github], gitea: [DEMO_SECRETS.gitea] } }), { logger: silentLogger });
    const res = await runCli(['replay', '--store', store, '--flows', FLOWS, '--redeliver-to', `${recorder.url}/hooks/{source}`, '--format', 'json'], {
      env: { HOOKSHADOW_SECRET_GITHUB: DEMO_SECRETS.github, HOOKSHADOW_SECRET_GITEA: DEMO_SECRETS.gitea },
    });
    await recorder.stop();
    expect(res.code).toBe(0);
    const summary = JSON.parse(res.stdout) as { dir: string; deliveries: number; redelivered: number; redelivery_failures: number };
    expect(summary).toMatchObject({ redelivered: summary.deliveries, redelivery_failures: 0 });
    const received = await queryStore<{ n: number; valid: number; same: number }>(
      target,
      `SELECT count(*)::INTEGER AS n, count(*) FILTER (signature_valid)::INTEGER AS valid FROM deliveries`,
    );
    expect(received[0]).toEqual({ n: summary.deliveries, valid: summary.deliveries });
    const [statuses] = await sql<{ ok: number }>(`SELECT count(*) FILTER (status = 202)::INTEGER AS ok FROM read_parquet(${sqlString(join(summary.dir, 'redeliveries.parquet'))})`);
    expect(statuses!.ok).toBe(summary.deliveries);
  });
});

describe('what gets replayed', () => {
  it('deliveries stream in received_at order with their recorded calls, however small the windows', async () => {
    const reader = await openStoreReader('fixtures/store');
    try {
      const all = async (size: number) => {
        const out: string[] = [];
        for await (const s of streamDeliveries(reader, { sinceUs: null, untilUs: null, shard: null }, { windowSize: size })) {
          out.push(`${s.received_at_us} ${s.delivery_id} r${s.reads.map((r) => r.path).join(',')} w${s.writes.map((x) => `${x.method} ${x.path}`).join(',')}`);
        }
        return out;
      };
      const whole = await all(100_000);
      expect(whole.length).toBe(80);
      expect([...whole].sort((a, b) => Number(a.split(' ')[0]) - Number(b.split(' ')[0]))).toEqual(whole);
      expect(whole.filter((l) => !l.endsWith(' w')).length).toBeGreaterThan(20);
      expect(await all(7)).toEqual(whole);
      expect(await all(1)).toEqual(whole);
    } finally {
      reader.close();
    }
  });

  it('form-encoded payloads are parsed as at capture; deliveries the recorder rejected are not replayed', async () => {
    const { app, store, close } = await recorderApp([{ secrets: { github: 's3cret' } }]);
    const json = JSON.stringify({ action: 'opened', pull_request: { number: 5, user: { login: 'al' } }, repository: { full_name: 'octo/repo' } });
    const form = `payload=${encodeURIComponent(json)}`;
    const headers = (id: string, body: string, secret: string) => ({
      'content-type': 'application/x-www-form-urlencoded',
      'x-github-event': 'pull_request',
      'x-github-delivery': id,
      'x-hub-signature-256': `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`,
    });
    expect((await app.inject({ method: 'POST', url: '/hooks/github', headers: headers('ok-1', form, 's3cret'), payload: form })).statusCode).toBe(202);
    expect((await app.inject({ method: 'POST', url: '/hooks/github', headers: headers('bad-1', form, 'wrong'), payload: form })).statusCode).toBe(401);
    await close();
    const summary = await replay({ store, flowsDir: FLOWS, concurrency: 1 });
    expect(summary.deliveries).toBe(1);
    const [row] = await sql<{ delivery_id: string; target: string }>(`SELECT delivery_id, intent->>'target' AS target FROM read_parquet(${nodes(summary.dir)})`);
    expect(row).toEqual({ delivery_id: 'ok-1', target: 'octo/repo#5' });
  });
});

describe("users' ops", () => {
  it('a TypeScript module adds an op that flows validate and replay use', async () => {
    const store = await fixtureStore();
    const dir = await tempDir();
    await mkdir(join(dir, 'flows'));
    await writeFile(
      join(dir, 'chat-ops.ts'),
      `const post = {
  name: 'chat.post',
  description: 'Post a message to the team chat.',
  effectClass: 'mutate' as const,
  capability: 'chat',
  args: { type: 'object', required: ['text'], additionalProperties: false, properties: { text: { type: 'string' } } },
  request: (a: { text: string }) => ({ upstream: 'chat', method: 'POST', path: '/messages', body: { text: a.text } }),
  intent: (a: { text: string }) => ({ kind: 'chat.post', target: 'chat:#bots', args: { text: a.text } }),
};
export default [post];
`,
    );
    await writeFile(join(dir, 'flows', 'notify.yaml'), 'name: notify\non: { event: pull_request, action: opened }\nnodes:\n  - id: say\n    op: chat.post\n    with: { text: "PR #${{ delivery.payload.pull_request.number }} opened" }\n');
    const without = await runCli(['flows', 'validate', join(dir, 'flows')]);
    expect(without.code).toBe(1);
    expect(without.stderr).toContain('HS_ERR_UNKNOWN_OP: unknown op "chat.post"');
    const ok = await runCli(['flows', 'validate', join(dir, 'flows'), '--ops', join(dir, 'chat-ops.ts')]);
    expect(ok.code).toBe(0);
    const res = await runCli(['replay', '--store', store, '--flows', join(dir, 'flows'), '--ops', join(dir, 'chat-ops.ts'), '--format', 'json', '--concurrency', '2']);
    expect(res.stderr).toBe('');
    const summary = JSON.parse(res.stdout) as { dir: string; intents: number };
    expect(summary.intents).toBeGreaterThan(0);
    const [row] = await sql<{ target: string; text: string }>(`SELECT intent->>'target' AS target, intent->'args'->>'text' AS text FROM read_parquet(${nodes(summary.dir)}) LIMIT 1`);
    expect(row).toEqual({ target: 'chat:#bots', text: expect.stringMatching(/^PR #\d+ opened$/) });
  });

  it('a worker thread that dies mid-replay fails the replay, and nothing is left behind', async () => {
    const store = await fixtureStore();
    const dir = await tempDir();
    await mkdir(join(dir, 'flows'));
    // process.exit in a worker thread ends that thread only: the replay must notice and stop.
    await writeFile(
      join(dir, 'crash-ops.mjs'),
      `let seen = 0;
export default [{ name: 'crash.after', description: 'Ends its thread on the Nth call.', effectClass: 'pure', capability: null,
  args: { type: 'object' }, run: (a) => { if (++seen === a.n) process.exit(7); return a; } }];
`,
    );
    await writeFile(join(dir, 'flows', 'crash.yaml'), 'name: crash\non: [{ event: issues }, { event: issue_comment }, { event: pull_request }]\nnodes:\n  - id: c\n    op: crash.after\n    with: { n: 3 }\n');
    await expect(replay({ store, flowsDir: join(dir, 'flows'), opsModules: [join(dir, 'crash-ops.mjs')], concurrency: 2, id: 'crashed' })).rejects.toThrow(/replay worker exited with code 7/);
    expect(await readdir(join(store, 'replays')).catch(() => [])).toEqual([]);
    expect(await readdir(join(store, '_staging', 'replays'))).toEqual([]);
  });
});

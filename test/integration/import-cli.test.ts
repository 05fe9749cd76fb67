import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { queryStore, tempDir } from '../helpers.js';
import { runCli } from './cli.js';

const lines = [
  { type: 'delivery', delivery_id: 'imp-1', source: 'github', received_at: '2026-03-01T10:00:00.123456Z', headers: { 'x-github-event': 'issues', authorization: 'token t' }, payload: { action: 'assigned', repository: { full_name: 'o/r' }, issue: { number: 4 } } },
  { type: 'effect', observed_at: '2026-03-01T10:00:01Z', upstream: 'github', method: 'POST', path: '/repos/o/r/issues/4/comments', request_body: { body: 'On it' }, response_status: 201 },
  { type: 'effect', delivery_id: 'imp-1', observed_at: '2026-03-01T10:00:02Z', upstream: 'agents', method: 'POST', path: '/jobs', request_body: '{"queue":"triage"}' },
  { type: 'exchange', observed_at: '2026-03-01T10:00:00.5Z', upstream: 'github', method: 'GET', path: '/repos/o/r/issues/4', response_status: 200, response_body: { labels: [] } },
];
const ndjson = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

describe('hookshadow import', () => {
  it('loads deliveries, effects and exchanges from NDJSON, attributing effects that name no delivery', async () => {
    const dir = await tempDir();
    const store = join(dir, 'store');
    const file = join(dir, 'past.ndjson');
    await writeFile(file, ndjson(lines));
    const res = await runCli(['import', file, '--store', store, '--format', 'json']);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ deliveries: 1, effects: 2, exchanges: 1, invalid: [], written: true });
    const [d] = await queryStore(store, `SELECT delivery_id, event, action, mode, strftime(received_at, '%Y-%m-%dT%H:%M:%S.%f') AS at, date::VARCHAR AS date, headers FROM deliveries`);
    expect(d).toMatchObject({ delivery_id: 'imp-1', event: 'issues', action: 'assigned', mode: 'import', at: '2026-03-01T10:00:00.123456', date: '2026-03-01' });
    expect(JSON.parse(d!.headers as string).authorization).toBe('[REDACTED]');
    expect(await queryStore(store, 'SELECT path, delivery_id, correlation, origin FROM effects ORDER BY observed_at')).toEqual([
      { path: '/repos/o/r/issues/4/comments', delivery_id: 'imp-1', correlation: 'inferred', origin: 'import' },
      { path: '/jobs', delivery_id: 'imp-1', correlation: 'exact', origin: 'import' },
    ]);
  });

  it('reports every invalid line as file:line and writes nothing', async () => {
    const dir = await tempDir();
    const store = join(dir, 'store');
    const file = join(dir, 'bad.ndjson');
    await writeFile(file, ndjson([lines[0], { type: 'delivery', source: 'svn' }]) + 'not json\n' + ndjson([{ type: 'effect', observed_at: '2026-03-01T10:00:00Z', upstream: 'g', method: 'GET', path: '/x' }]));
    const res = await runCli(['import', file, '--store', store]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`${file}:2: HS_ERR_IMPORT_INVALID:`);
    expect(res.stderr).toContain(`${file}:3: HS_ERR_IMPORT_INVALID: not JSON`);
    expect(res.stderr).toContain(`${file}:4: HS_ERR_IMPORT_INVALID: type "effect" does not fit method GET`);
    expect(res.stderr).toMatch(/hookshadow: HS_ERR_IMPORT_INVALID: 3 invalid line\(s\); nothing was imported/);
    await expect(queryStore(store, 'SELECT 1')).rejects.toMatchObject({ code: 'HS_ERR_STORE_UNREADABLE' });
  });

  it('imports the valid lines with --skip-invalid, still reporting the rest and exiting 1', async () => {
    const dir = await tempDir();
    const store = join(dir, 'store');
    const file = join(dir, 'mixed.ndjson');
    await writeFile(file, ndjson([lines[0]]) + '{"type":"nope"}\n');
    const res = await runCli(['import', file, '--store', store, '--skip-invalid']);
    expect(res.code).toBe(1);
    expect(res.stdout).toContain('imported 1 deliveries');
    expect(await queryStore(store, 'SELECT delivery_id FROM deliveries')).toEqual([{ delivery_id: 'imp-1' }]);
  });

  it('accepts header names in any case and RFC 3339 times with a space', async () => {
    const dir = await tempDir();
    const store = join(dir, 'store');
    const file = join(dir, 'cased.ndjson');
    await writeFile(file, ndjson([{ type: 'delivery', source: 'github', received_at: '2026-03-01 23:30:00+02:00', headers: { 'X-GitHub-Event': 'issues', 'X-GitHub-Delivery': 'cased-1' }, body: '{}' }]));
    const res = await runCli(['import', file, '--store', store]);
    expect(res.code).toBe(0);
    expect(await queryStore(store, `SELECT delivery_id, event, strftime(received_at, '%Y-%m-%d %H:%M') AS at FROM deliveries`)).toEqual([
      { delivery_id: 'cased-1', event: 'issues', at: '2026-03-01 21:30' },
    ]);
  });

  it('fails clearly on a file that does not exist', async () => {
    const res = await runCli(['import', '/nonexistent/file.ndjson', '--store', join(await tempDir(), 's')]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/HS_ERR_IMPORT_INVALID: Cannot read \/nonexistent\/file.ndjson/);
  });
});

describe('hookshadow CLI', () => {
  it('has --help on every command and exits 0', async () => {
    for (const args of [['--help'], ['record', '--help'], ['import', '--help'], ['demo', '--help'], ['replay', '--help'], ['flows', '--help'], ['flows', 'validate', '--help'], ['flows', 'ops', '--help'], ['analyze', '--help'], ['sql', '--help'], ['notebook', '--help']]) {
      const res = await runCli(args);
      expect(res.code, args.join(' ')).toBe(0);
      expect(res.stdout).toMatch(/Usage: hookshadow/);
    }
  });

  it('exits 2 on a usage error', async () => {
    const res = await runCli(['record', '--signature-policy', 'sometimes']);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/Allowed choices are reject, flag/);
  });

  it('exits 2 on a demo flag that is not a positive integer', async () => {
    const res = await runCli(['demo', '--concurrency', '0', '--store', join(await tempDir(), 's')]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/HS_ERR_USAGE: --concurrency must be a positive integer/);
  });

  it('exits 2 with the config problem named on an invalid config file', async () => {
    const file = join(await tempDir(), 'c.yaml');
    await writeFile(file, 'port: [\n');
    const res = await runCli(['record', '--config', file]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/HS_ERR_CONFIG_INVALID: Invalid YAML in config file:\n {2}.*c\.yaml:\d+:\d+:/);
  });

  it('lists the ops flows can use', async () => {
    const res = await runCli(['flows', 'ops', '--format', 'json']);
    expect(res.code).toBe(0);
    const ops = JSON.parse(res.stdout) as { name: string; effect_class: string; capability: string | null }[];
    expect(ops.find((o) => o.name === 'forge.issue.comment')).toMatchObject({ effect_class: 'mutate', capability: 'forge' });
    expect(ops.find((o) => o.name === 'forge.issue.get')).toMatchObject({ effect_class: 'read', capability: 'forge' });
    expect(ops.find((o) => o.name === 'set')).toMatchObject({ effect_class: 'pure', capability: null });
  });

  it('runs the demo end to end and reports what it captured, and what the flows would do, as JSON', async () => {
    const store = join(await tempDir(), 'store');
    const res = await runCli(['demo', '--store', store, '--count', '40', '--format', 'json']);
    expect(res.code).toBe(0);
    const summary = JSON.parse(res.stdout);
    expect(summary.sent).toBe(40);
    expect(summary.acknowledged).toBe(40);
    expect(summary.deliveries.reduce((n: number, d: { count: number }) => n + d.count, 0)).toBe(40);
    expect(summary.signatures).toEqual({ valid: 40, invalid: 0 });
    expect(summary.effects.map((e: { route: string }) => e.route)).toContain('/repos/{owner}/{repo}/issues/{n}/comments');
    // The bundled flows replayed over the same deliveries: each legacy comment has a flow intent.
    const comments = summary.effects.filter((e: { route: string }) => e.route === '/repos/{owner}/{repo}/issues/{n}/comments').reduce((n: number, e: { count: number }) => n + e.count, 0);
    expect(summary.replay).toMatchObject({ deliveries: 40, errors: 0 });
    expect(summary.replay.intents).toBeGreaterThanOrEqual(comments);
  });
});

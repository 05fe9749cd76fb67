import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { XMLParser } from 'fast-xml-parser';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DIVERGENCE_COLUMNS } from '../../core/divergence-schema.js';
import { sqlString } from '../../core/sql.js';
import type { AnalysisResult } from '../../analyzer/result.js';
import { replay } from '../../replayer/replay.js';
import { tempDir } from '../helpers.js';
import { CLI, runCli } from './cli.js';

const FLOWS = 'fixtures/flows';

/** A private copy of the committed fixture store (replays and analyses write into it). */
async function fixtureStore(parent?: string): Promise<string> {
  const dir = join(parent ?? (await tempDir()), 'store');
  await cp('fixtures/store', dir, { recursive: true });
  return dir;
}

/** One fixture store for a whole suite (tempDir's are removed after each test), replayed once as `main`. */
function suiteStore(): () => string {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hookshadow-analyze-'));
    await replay({ store: await fixtureStore(dir), flowsDir: FLOWS, id: 'main', timings: false, concurrency: 1 });
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));
  return () => join(dir, 'store');
}

/** The fixture flows with one file's text changed: a "branch" of the flows. */
async function flowsWith(file: string, edit: (text: string) => string): Promise<string> {
  const dir = join(await tempDir(), 'flows');
  await cp(FLOWS, dir, { recursive: true });
  await writeFile(join(dir, file), edit(await readFile(join(dir, file), 'utf8')));
  return dir;
}

async function analyzeJson(args: string[]): Promise<{ code: number | null; result: AnalysisResult; stderr: string }> {
  const res = await runCli(['analyze', '--format', 'json', ...args]);
  return { code: res.code, result: JSON.parse(res.stdout) as AnalysisResult, stderr: res.stderr };
}

const validateResult = new Ajv({ allErrors: true, strict: false });
addFormats.default(validateResult);

describe('hookshadow analyze over the committed fixture store', () => {
  const suite = suiteStore();
  let store: string;
  beforeEach(() => {
    store = suite();
  });

  it('finds exactly the fixture flows\' deliberate difference, and exits 1 under --fail-on any', async () => {
    const { code, result } = await analyzeJson(['--store', store, '--replay', 'main']);
    expect(code).toBe(1);
    const schema = JSON.parse(await readFile('specs/schemas/analysis.schema.json', 'utf8'));
    expect(validateResult.validate(schema, result), JSON.stringify(validateResult.errors)).toBe(true);
    expect(result.totals).toEqual({
      deliveries: 80,
      deliveries_with_flow: 36,
      flow_runs: 36,
      divergent_runs: 5,
      divergent_deliveries: 5,
      legacy_effects: 80,
      intents: 85,
      matches: 80,
      unexpected: 5,
      expected: 0,
    });
    expect(Object.fromEntries(Object.entries(result.counts_by_class).filter(([c]) => c !== 'match').map(([c, v]) => [c, v.unexpected]))).toEqual({
      missing_in_flow: 0,
      extra_in_flow: 5,
      args_differ: 0,
      order_differs: 0,
      flow_error: 0,
      unattributed: 0,
    });
    expect(result.by_flow.map((f) => [f.flow, f.runs, f.divergent_runs])).toEqual([
      ['assign-agent', 24, 0],
      ['request-review', 7, 0],
      ['retry-agent', 5, 5],
    ]);
    // Each divergence traces to a node of a flow: retry-agent's `mark` re-adds the label the legacy bot forgets.
    for (const d of result.deliveries) {
      expect(d.event).toBe('issue_comment');
      expect(d.differences).toEqual([expect.objectContaining({ class: 'extra_in_flow', flow: 'retry-agent', node_id: 'mark', kind: 'issue.labels.add', flow_value: { labels: ['agent-running'] } })]);
    }
    expect(result.daily).toEqual([{ day: '2026-11-21', deliveries: 80, deliveries_with_flow: 36, flow_runs: 36, divergent_runs: 5, divergence_rate: 5 / 36 }]);

    // The Parquet is queryable like everything else, with the columns the spec names: one row per difference (matches are counted, not written).
    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    const file = sqlString(join(store, 'replays', 'main', 'divergences.parquet'));
    const cols = (await conn.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet(${file})`)).getRowObjectsJson().map((r) => r.column_name);
    expect(cols).toEqual(DIVERGENCE_COLUMNS.map((c) => c.name));
    const rows = (await conn.runAndReadAll(`SELECT class, count(*)::INTEGER AS n FROM read_parquet(${file}) GROUP BY class`)).getRowObjectsJson();
    expect(rows).toEqual([{ class: 'extra_in_flow', n: 5 }]);
    conn.closeSync();
    db.closeSync();
  });

  it('out of memory: a clear error, nothing written, nothing left behind; with more memory it completes', async () => {
    const own = await fixtureStore();
    await replay({ store: own, flowsDir: FLOWS, id: 'small', timings: false, concurrency: 1 });
    const dir = join(own, 'replays', 'small');
    const before = (await readdir(dir)).sort();
    const starved = await runCli(['analyze', '--store', own, '--replay', 'small', '--memory-limit', '2', '--format', 'json']);
    expect(starved.code).toBe(1);
    expect(starved.stdout).toBe('');
    expect(starved.stderr).toMatch(/HS_ERR_ANALYZE_RESOURCES: The analysis of small ran out of memory .* Raise --memory-limit \(now 2 MB\)/);
    expect((await readdir(dir)).sort()).toEqual(before);
    const bad = await runCli(['analyze', '--store', own, '--replay', 'small', '--memory-limit', '0.5']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--memory-limit must be a whole number of MB');
    const { code, result } = await analyzeJson(['--store', own, '--replay', 'small', '--memory-limit', '64']);
    expect(code).toBe(1); // the fixture flows' deliberate difference
    expect(result.totals.unexpected).toBe(5);
    expect(await readdir(dir)).toEqual(expect.arrayContaining(['divergences.parquet', 'analysis.json']));
  });

  it('suppresses documented differences under an expect rule, reports them apart, and flags expired and unused rules', async () => {
    const rules = join(await tempDir(), 'rules.yaml');
    await writeFile(
      rules,
      `expect:
  - id: retry-marks-running
    class: extra_in_flow
    flow: retry-agent
    node: mark
    reason: the flow fixes the legacy bot, which forgets agent-running on /retry
    owner: platform-team
    expires: 2099-12-31
`,
    );
    const ok = await analyzeJson(['--store', store, '--replay', 'main', '--rules', rules]);
    expect(ok.code).toBe(0);
    expect(ok.result.totals).toMatchObject({ unexpected: 0, expected: 5, matches: 80, divergent_runs: 0 });
    expect(ok.result.counts_by_class.extra_in_flow).toEqual({ unexpected: 0, expected: 5 });
    expect(ok.result.deliveries).toHaveLength(5);
    expect(ok.result.deliveries.every((d) => !d.unexpected && d.differences.every((x) => x.expected_by === 'expect:retry-marks-running'))).toBe(true);
    expect(ok.result.rules).toMatchObject({ expired: [], unused: [] });

    await writeFile(
      rules,
      `expect:
  - { id: retry-marks-running, class: extra_in_flow, flow: retry-agent, reason: r, owner: o, expires: 2020-01-01 }
  - { id: merges, kind: pr.merge, reason: not yet built, owner: o }
`,
    );
    const stale = await analyzeJson(['--store', store, '--replay', 'main', '--rules', rules]);
    expect(stale.code).toBe(1);
    expect(stale.result.rules).toMatchObject({ expired: ['retry-marks-running'], unused: ['merges'] });
    // An expired rule suppresses nothing.
    expect(stale.result.totals.unexpected).toBe(5);
    const none = await runCli(['analyze', '--store', store, '--replay', 'main', '--rules', rules, '--fail-on', 'none']);
    expect(none.code).toBe(0);
    expect(none.stdout).toContain('expired rules (suppress nothing; fail under --fail-on): retry-marks-running');
    expect(none.stdout).toContain('unused rules (matched nothing; fail under --fail-on): merges');
  });

  it('compares against a baseline: introduced and resolved divergences, and --fail-on new', async () => {
    // A branch that words the ack differently (21 args differences: 3 of the 24 assignments find agent-running already) and fixes nothing.
    const reworded = await flowsWith('assign-agent.yaml', (t) => t.replace('On it — queued as', 'Working on it — queued as'));
    await replay({ store, flowsDir: reworded, id: 'reworded', timings: false, concurrency: 1 });
    const worse = await analyzeJson(['--store', store, '--replay', 'reworded', '--baseline', 'main', '--fail-on', 'new']);
    expect(worse.code).toBe(1);
    expect(worse.result.baseline!.introduced).toHaveLength(21);
    expect(worse.result.baseline).toMatchObject({ introduced_total: 21, resolved_total: 0, resolved: [] });
    // --limit cuts the lists, never the totals (nor the exit code).
    const cut = await analyzeJson(['--store', store, '--replay', 'reworded', '--baseline', 'main', '--fail-on', 'new', '--limit', '3']);
    expect(cut.code).toBe(1);
    expect(cut.result.baseline!.introduced).toHaveLength(3);
    expect(cut.result.baseline!.introduced_total).toBe(21);
    expect(cut.result.deliveries).toHaveLength(3);
    expect(cut.result.deliveries_total).toBe(26);
    const first = worse.result.baseline!.introduced[0]!;
    expect(first).toMatchObject({ class: 'args_differ', flow: 'assign-agent', node_id: 'ack', kind: 'issue.comment', path: '$.body' });
    expect(first.legacy_value).toMatch(/^On it — queued as job-/);
    expect(first.flow_value).toMatch(/^Working on it — queued as job-/);

    // A branch that drops the deliberate difference: 5 resolved, nothing new, so --fail-on new passes.
    const fixed = await flowsWith('retry-agent.yaml', (t) => t.slice(0, t.indexOf('  # DELIBERATE DIFFERENCE')));
    await replay({ store, flowsDir: fixed, id: 'fixed', timings: false, concurrency: 1 });
    const better = await analyzeJson(['--store', store, '--replay', 'fixed', '--baseline', 'main', '--fail-on', 'new']);
    expect(better.code).toBe(0);
    expect(better.result.baseline).toMatchObject({ replay_id: 'main', introduced: [] });
    expect(better.result.baseline!.resolved.map((d) => [d.flow, d.node_id, d.class])).toEqual(Array(5).fill(['retry-agent', 'mark', 'extra_in_flow']));
    expect(better.result.totals.unexpected).toBe(0);
  });

  it('judges the baseline by the same rules as the replay, so a rule change alone introduces or resolves nothing', async () => {
    const same = 'same-flows';
    await replay({ store, flowsDir: FLOWS, id: same, timings: false, concurrency: 1 });
    // The baseline's own analysis has no rules; this one documents the retry difference.
    expect((await runCli(['analyze', '--store', store, '--replay', 'main', '--fail-on', 'none'])).code).toBe(0);
    const rules = join(await tempDir(), 'rules.yaml');
    await writeFile(rules, 'expect: [{ id: retry, flow: retry-agent, class: extra_in_flow, reason: r, owner: o }]\n');
    const res = await analyzeJson(['--store', store, '--replay', same, '--baseline', 'main', '--rules', rules, '--fail-on', 'new']);
    expect(res.code).toBe(0);
    expect(res.result.baseline).toMatchObject({ introduced: [], resolved: [] });
    expect(res.result.rules.expect[0]).toMatchObject({ id: 'retry', suppressed: 5 });
  });

  it('refuses a baseline over other deliveries', async () => {
    await replay({ store, flowsDir: FLOWS, id: 'half', timings: false, concurrency: 1, shard: { k: 1, n: 2 } });
    const res = await runCli(['analyze', '--store', store, '--replay', 'half', '--baseline', 'main']);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/HS_ERR_USAGE: --baseline main covered other deliveries/);
  });

  it('summarizes a shard over its own deliveries only', async () => {
    if (!(await readFile(join(store, 'replays', 'half', 'manifest.json'), 'utf8').catch(() => null))) {
      await replay({ store, flowsDir: FLOWS, id: 'half', timings: false, concurrency: 1, shard: { k: 1, n: 2 } });
    }
    const { result } = await analyzeJson(['--store', store, '--replay', 'half', '--fail-on', 'none']);
    expect(result.totals.deliveries).toBeGreaterThan(0);
    expect(result.totals.deliveries).toBeLessThan(80);
    expect(result.daily).toEqual([expect.objectContaining({ deliveries: result.totals.deliveries, flow_runs: result.totals.flow_runs })]);
  });

  it('names a damaged divergences file, and a new analysis replaces it', async () => {
    const file = join(store, 'replays', 'main', 'divergences.parquet');
    expect((await runCli(['analyze', '--store', store, '--replay', 'main', '--fail-on', 'none', '--format', 'json'])).code).toBe(0);
    await writeFile(file, (await readFile(file)).subarray(0, 200));
    const query = await runCli(['sql', '--store', store, '--replay', 'main', 'SELECT count(*) FROM deliveries']);
    expect(query.code).toBe(1);
    expect(query.stderr).toContain(`HS_ERR_STORE_CORRUPT: ${file} is not a readable Parquet file`);
    expect(query.stderr).toContain('hookshadow analyze --replay main');
    const again = await analyzeJson(['--store', store, '--replay', 'main', '--fail-on', 'none']);
    expect(again.result.totals.matches).toBe(80);
    expect((await runCli(['sql', '--store', store, '--replay', 'main', 'SELECT count(*) FROM divergences'])).code).toBe(0);
    // No spill or temporary files are left behind.
    expect((await readdir(join(store, 'replays', 'main'))).sort()).toEqual(['analysis.json', 'divergences.parquet', 'flow_runs.parquet', 'manifest.json', 'node_runs.parquet']);
  });

  it('detects nondeterministic paths by replaying with a perturbed seed and clock, and excludes them only when told to', async () => {
    // A flow whose comment carries the clock: it differs from the legacy comment, and from itself under another clock.
    const timed = await flowsWith('assign-agent.yaml', (t) => t.replace('On it — queued as ${{ nodes.enqueue.output.job_id }}', 'On it at ${{ now }} — queued as ${{ nodes.enqueue.output.job_id }}'));
    await replay({ store, flowsDir: timed, id: 'timed', timings: false, concurrency: 1 });
    const reported = await analyzeJson(['--store', store, '--replay', 'timed', '--detect-noise', '--flows', timed, '--fail-on', 'none']);
    expect(reported.code).toBe(0);
    expect(reported.result.noise).toEqual({
      replay_id: 'timed.noise',
      excluded: false,
      // 26 comments: 21 carry the clock; 5 retry acks do not.
      paths: [{ kind: 'issue.comment', path: '$.body', self_pairs: 26, self_differs: 21, legacy_pairs: 26, legacy_differs: 21, noise: true }],
    });
    expect(reported.result.counts_by_class.args_differ).toEqual({ unexpected: 21, expected: 0 });

    const excluded = await analyzeJson(['--store', store, '--replay', 'timed', '--noise-replay', 'timed.noise', '--exclude-noise', '--fail-on', 'none']);
    expect(excluded.result.counts_by_class.args_differ).toEqual({ unexpected: 0, expected: 21 });
    expect(excluded.result.deliveries.flatMap((d) => d.differences).filter((d) => d.class === 'args_differ').every((d) => d.expected_by === 'noise:issue.comment:$.body')).toBe(true);
    // The retry difference is deterministic: still unexpected.
    expect(excluded.result.totals.unexpected).toBe(5);
  });

  it('reports legacy effects tied to no delivery as unattributed, never dropping them', async () => {
    const own = await fixtureStore();
    const file = join(await tempDir(), 'orphan.ndjson');
    await writeFile(
      file,
      JSON.stringify({ type: 'effect', observed_at: '2026-11-21T21:10:33Z', upstream: 'github', method: 'POST', path: '/repos/octo/repo/issues/7/comments', request_body: { body: 'orphan' }, response_status: 201 }) + '\n',
    );
    expect((await runCli(['import', file, '--store', own])).code).toBe(0);
    await replay({ store: own, flowsDir: FLOWS, id: 'r', timings: false, concurrency: 1 });
    const { result } = await analyzeJson(['--store', own, '--fail-on', 'none']);
    // Mapped by the built-in GitHub route map.
    expect(result.unattributed).toEqual([
      expect.objectContaining({ class: 'unattributed', delivery_id: null, kind: 'issue.comment', target: 'octo/repo#7', legacy_value: { body: 'orphan' }, route: 'POST /repos/{owner}/{repo}/issues/{number}/comments' }),
    ]);
    expect(result.counts_by_class.unattributed.unexpected).toBe(1);
  });

  it('keeps the instances of a repeated delivery id apart (a redelivery keeps its id)', async () => {
    // The demo's generator is seeded: a second run sends the same delivery ids again, with new effects (new job ids).
    const own = join(await tempDir(), 'store');
    const runs = [];
    for (let i = 0; i < 2; i++) {
      const res = await runCli(['demo', '--store', own, '--count', '60', '--format', 'json']);
      expect(res.code).toBe(0);
      runs.push(JSON.parse(res.stdout).analysis as Pick<AnalysisResult, 'totals' | 'counts_by_class'>);
    }
    // Each replay compares its own deliveries with their own effects: only the deliberate difference, twice the same.
    for (const a of runs) {
      expect(a.totals.unexpected).toBe(a.counts_by_class.extra_in_flow.unexpected);
      expect(a.counts_by_class.args_differ.unexpected + a.counts_by_class.missing_in_flow.unexpected).toBe(0);
    }
    expect(runs[1]!.totals).toEqual(runs[0]!.totals);
  });

  it('writes Markdown and JUnit reports that parse back', async () => {
    const dir = await tempDir();
    const md = join(dir, 'report.md');
    const xml = join(dir, 'report.xml');
    expect((await runCli(['analyze', '--store', store, '--replay', 'main', '--format', 'md', '--out', md])).code).toBe(1);
    expect((await runCli(['analyze', '--store', store, '--replay', 'main', '--format', 'junit', '--out', xml])).code).toBe(1);
    const mdText = await readFile(md, 'utf8');
    expect(mdText).toMatch(/\| *retry-agent *\| *5 *\| *5 *\|/);
    const junit = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(await readFile(xml, 'utf8'));
    const suites = [junit.testsuites.testsuite].flat() as { name: string; failures: string; testcase: unknown }[];
    expect(suites.find((s) => s.name === 'retry-agent')?.failures).toBe('5');
    expect(Number(junit.testsuites.failures)).toBe(5);
  });

  it('refuses bad usage with exit 2 and bad rules with their file:line:col', async () => {
    const noBaseline = await runCli(['analyze', '--store', store, '--fail-on', 'new']);
    expect(noBaseline.code).toBe(2);
    expect(noBaseline.stderr).toContain('HS_ERR_USAGE');
    const rules = join(await tempDir(), 'bad.yaml');
    await writeFile(rules, 'expect:\n  - { id: x, reason: r, owner: o, colour: red }\n');
    const bad = await runCli(['analyze', '--store', store, '--rules', rules]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`${rules}:2:`);
    expect(bad.stderr).toContain('unknown key "colour"');
    const missing = await runCli(['analyze', '--store', store, '--replay', 'nope']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('HS_ERR_REPLAY_NOT_FOUND');
  });
});

describe('hookshadow sql', () => {
  const suite = suiteStore();
  let store: string;
  beforeAll(async () => {
    store = suite();
    await runCli(['analyze', '--store', store, '--fail-on', 'none', '--format', 'json']);
  });

  it('answers a query over the views as JSON rows, with bound parameters', async () => {
    const res = await runCli(['sql', '--store', store, '--format', 'json', 'SELECT flow, count(*) AS n FROM divergences WHERE class = $cls GROUP BY flow', '--param', 'cls=extra_in_flow']);
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toEqual([{ flow: 'retry-agent', n: 5 }]);
    // A value with a quote is data, not SQL.
    const quoted = await runCli(['sql', '--store', store, '--format', 'json', 'SELECT count(*) AS n FROM deliveries WHERE delivery_id = $id', '--param', "id=x' OR '1'='1"]);
    expect(JSON.parse(quoted.stdout)).toEqual([{ n: 0 }]);
    const csv = await runCli(['sql', '--store', store, '--format', 'csv', 'SELECT day, deliveries FROM daily_summary']);
    expect(csv.stdout).toBe('day,deliveries\n2026-11-21,80\n');
    const table = await runCli(['sql', '--store', store, 'SELECT kind, count(*) AS n FROM intents GROUP BY kind ORDER BY kind']);
    expect(table.stdout).toMatch(/issue\.labels\.add\s*│\s*26/);
  });

  it('prints view definitions that work in a plain DuckDB client', async () => {
    const res = await runCli(['sql', '--store', store, '--print-views']);
    expect(res.code).toBe(0);
    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    await conn.run(res.stdout);
    const rows = (await conn.runAndReadAll('SELECT flow, flow_runs::INTEGER AS runs, divergent_runs::INTEGER AS bad FROM daily_flow_summary ORDER BY flow')).getRowObjectsJson();
    expect(rows).toEqual([
      { flow: 'assign-agent', runs: 24, bad: 0 },
      { flow: 'request-review', runs: 7, bad: 0 },
      { flow: 'retry-agent', runs: 5, bad: 5 },
    ]);
    conn.closeSync();
    db.closeSync();
  });

  it('runs an interactive prompt: multi-line statements, errors that do not end it, and a history file', async () => {
    const history = join(await tempDir(), 'history');
    const child = spawn(process.execPath, [CLI, 'sql', '--store', store], { env: { ...process.env, HOOKSHADOW_SQL_HISTORY: history }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stdin.end('SELECT count(*) AS n\nFROM deliveries;\nSELECT nope;\nSELECT 41 + 1 AS answer;\n.quit\n');
    const code = await new Promise((r) => child.on('close', r));
    expect(code).toBe(0);
    expect(out).toMatch(/│ 80 /);
    expect(out).toMatch(/HS_ERR_QUERY_FAILED: .*nope/);
    expect(out).toMatch(/│ 42 /);
    expect((await readFile(history, 'utf8')).split('\n')).toEqual(['SELECT count(*) AS n FROM deliveries;', 'SELECT nope;', 'SELECT 41 + 1 AS answer;', '']);
  });

  it('reports a bad query with its code and DuckDB\'s message', async () => {
    const res = await runCli(['sql', '--store', store, 'SELECT nope FROM divergences']);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/HS_ERR_QUERY_FAILED: .*nope/);
  });
});

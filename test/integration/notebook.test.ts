import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { renderNotebookHtml, renderNotebookMarkdown, runNotebook, type NotebookCell, type NotebookResult, type QueryResult } from '../../analyzer/notebook.js';
import { replayFiles } from '../../analyzer/views.js';
import { DIVERGENCE_COLUMNS } from '../../core/divergence-schema.js';
import { sqlIdent, sqlString } from '../../core/sql.js';
import { notebookCommand } from '../../cli/commands/notebook.js';
import { replay } from '../../replayer/replay.js';
import { queryStore } from '../helpers.js';

// One store for the whole file: a copy of the committed fixture (80 deliveries, one day),
// replayed twice. `plain` has no divergences yet (the analyzer has not run on it);
// `analyzed` gets a small, known divergences.parquet written below.
let root: string;
let store: string;
let work: string;
let picked: { a: string; b: string; c: string };

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'hookshadow-notebook-'));
  store = join(root, 'store');
  work = join(root, 'work');
  await cp('fixtures/store', store, { recursive: true });
  await mkdir(work);
  await replay({ store, flowsDir: 'fixtures/flows', concurrency: 1, id: 'plain', timings: false });
  await replay({ store, flowsDir: 'fixtures/flows', concurrency: 1, id: 'analyzed', timings: false });
  picked = await writeKnownDivergences(replayFiles(store, 'analyzed').divergences);
}, 60_000);

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

type Row = Record<string, unknown>;

/**
 * Five unexpected divergences and one expected one, on three real deliveries:
 * A (assign-agent) has three, B (assign-agent) one plus one an expect rule covers,
 * C (request-review) one. So issue.comment is the worst kind, assign-agent the worst
 * flow and A the most divergent delivery. A's legacy value carries a <script>.
 */
async function writeKnownDivergences(file: string): Promise<{ a: string; b: string; c: string }> {
  const runs = await queryStore<Row>(
    store,
    `SELECT r.run_id, r.delivery_id, r.flow, r.source, r.event, r.action, strftime(r.received_at, '%Y-%m-%d %H:%M:%S.%f') AS received_at
     FROM read_parquet($1) r
     WHERE (r.flow = 'assign-agent' AND r.delivery_id IN (SELECT delivery_id FROM effects)) OR r.flow = 'request-review'
     ORDER BY r.flow, r.received_at, r.delivery_id`,
    [replayFiles(store, 'analyzed').flowRuns],
  );
  const assign = runs.filter((r) => r.flow === 'assign-agent');
  const [a, b, c] = [assign[0]!, assign[1]!, runs.find((r) => r.flow === 'request-review')!];
  const row = (run: Row, cls: string, kind: string, extra: Row = {}): Row => ({
    delivery_id: run.delivery_id,
    received_at: run.received_at,
    source: run.source,
    event: run.event,
    action: run.action,
    class: cls,
    flow: run.flow,
    run_id: run.run_id,
    kind,
    target: `octo-org/gadgets#${String(run.delivery_id).slice(0, 4)}`,
    iteration: 0,
    ...extra,
  });
  const rows: Row[] = [
    row(a, 'args_differ', 'issue.comment', { node_id: 'ack', path: '$.body', legacy_value: JSON.stringify('<script>alert(1)</script>'), flow_value: JSON.stringify('Queued') }),
    row(a, 'extra_in_flow', 'issue.comment', { node_id: 'ack', flow_value: '{"body":"again"}' }),
    row(a, 'missing_in_flow', 'issue.labels.add', { legacy_value: '{"labels":["triaged"]}' }),
    row(a, 'match', 'agent.enqueue', { node_id: 'enqueue' }),
    row(b, 'args_differ', 'issue.comment', { node_id: 'ack', path: '$.body', legacy_value: '"Queued!"', flow_value: '"Queued"' }),
    row(b, 'missing_in_flow', 'pr.merge', { legacy_value: '{}', expected_by: 'expect:no-auto-merge' }),
    row(c, 'missing_in_flow', 'pr.review.request', { legacy_value: '{"reviewers":["octocat"]}' }),
  ];
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  try {
    await conn.run(`CREATE TABLE d (${DIVERGENCE_COLUMNS.map((col) => `${sqlIdent(col.name)} ${col.type}`).join(', ')})`);
    const insert = await conn.prepare(`INSERT INTO d VALUES (${DIVERGENCE_COLUMNS.map((_, i) => `$${i + 1}`).join(', ')})`);
    try {
      for (const r of rows) {
        insert.bind(DIVERGENCE_COLUMNS.map((col) => (r[col.name] ?? null) as never));
        await insert.run();
      }
    } finally {
      insert.destroySync();
    }
    await conn.run(`COPY d TO ${sqlString(file)} (FORMAT parquet)`);
  } finally {
    conn.closeSync();
    db.closeSync();
  }
  return { a: String(a.delivery_id), b: String(b.delivery_id), c: String(c.delivery_id) };
}

const sqlCells = (result: NotebookResult) => result.cells.filter((c): c is Extract<NotebookCell, { type: 'sql' }> => c.type === 'sql');
const chartCells = (result: NotebookResult) => result.cells.filter((c): c is Extract<NotebookCell, { type: 'chart' }> => c.type === 'chart');

/** The result of the sql block named `name`, or the one whose SQL contains `name`. */
function resultOf(result: NotebookResult, name: string): QueryResult {
  const cell = sqlCells(result).find((c) => c.name === name) ?? sqlCells(result).find((c) => c.sql.includes(name));
  if (!cell?.result) throw new Error(`no sql block ${name} with a result`);
  return cell.result;
}

/** Rows as objects, by column name. */
function objects(result: QueryResult): Row[] {
  return result.rows.map((row) => Object.fromEntries(result.columns.map((c, i) => [c.name, row[i]])));
}

/** A notebook written into the work directory; returns its path. */
async function notebook(name: string, text: string): Promise<string> {
  const file = join(work, name);
  await writeFile(file, text);
  return file;
}

async function expectError(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e as { code: string; message: string },
  );
  if (err === null) throw new Error('expected an error');
  return err;
}

const EXTERNAL_URL = /\b(?:src|href|xlink:href)\s*=\s*["']?\s*(?:https?:)?\/\//i;

describe('shipped notebooks over the fixture store', () => {
  it('daily-trend shows the 80 deliveries of 2026-11-21 and draws its charts as SVG', async () => {
    const result = await runNotebook({ file: 'notebooks/daily-trend.md', store, replay: 'plain' });

    expect(result.replay_id).toBe('plain');
    expect(objects(resultOf(result, 'daily'))).toEqual([
      { day: '2026-11-21', deliveries: 80, deliveries_with_flow: 36, flow_runs: 36, divergent_runs: 0, divergence_rate: 0 },
    ]);
    expect(objects(resultOf(result, 'per_flow')).map((r) => [r.flow, r.flow_runs])).toEqual([
      ['assign-agent', 24],
      ['request-review', 7],
      ['retry-agent', 5],
    ]);
    expect(chartCells(result)).toHaveLength(2);
    for (const chart of chartCells(result)) expect(chart.svg).toMatch(/^<svg[\s\S]*<\/svg>$/);
    const markdown = renderNotebookMarkdown(result);
    expect(markdown).toContain('| 2026-11-21 | 80 | 36 | 36 | 0 | 0 |');
    const img = /src="data:image\/svg\+xml;base64,([^"]+)"/.exec(markdown);
    expect(Buffer.from(img![1]!, 'base64').toString('utf8')).toMatch(/^<svg/);
    expect(renderNotebookHtml(result)).toContain('<svg');
  });

  it('cutover-readiness finds none of the three fixture flows ready after one day of soak', async () => {
    const result = await runNotebook({ file: 'notebooks/cutover-readiness.md', store, replay: 'plain' });

    expect(objects(resultOf(result, 'readiness')).map((r) => [r.flow, r.verdict, r.days_soaked, r.runs, r.unexpected_divergences])).toEqual([
      ['assign-agent', 'NOT READY', 1, 24, 0],
      ['request-review', 'NOT READY', 1, 7, 0],
      ['retry-agent', 'NOT READY', 1, 5, 0],
    ]);
    expect(objects(resultOf(result, 'readiness'))[0]!.blocked_by).toBe('soaked 1 of 7 days; 24 of 500 runs');
    expect(chartCells(result)[0]!.svg).toContain('<svg');
  });

  it('cutover-readiness calls a flow READY once it meets every threshold', async () => {
    const result = await runNotebook({ file: 'notebooks/cutover-readiness.md', store, replay: 'plain', params: { min_days: '1', min_runs: '6' } });

    expect(objects(resultOf(result, 'readiness')).map((r) => [r.flow, r.verdict, r.blocked_by])).toEqual([
      ['assign-agent', 'READY', ''],
      ['request-review', 'READY', ''],
      ['retry-agent', 'NOT READY', '5 of 6 runs'],
    ]);
  });

  it('cutover-readiness judges against thresholds given as --param, and counts unexpected divergences', async () => {
    const result = await runNotebook({ file: 'notebooks/cutover-readiness.md', store, replay: 'analyzed', params: { min_days: '1', min_runs: '6' } });

    expect(objects(resultOf(result, 'readiness')).map((r) => [r.flow, r.verdict, r.unexpected_divergences, r.blocked_by])).toEqual([
      ['assign-agent', 'NOT READY', 4, '4 unexpected divergences (at most 0)'],
      ['request-review', 'NOT READY', 1, '1 unexpected divergences (at most 0)'],
      ['retry-agent', 'NOT READY', 0, '5 of 6 runs'],
    ]);
    expect(result.params).toEqual([
      { name: 'min_days', value: '1', given: true },
      { name: 'min_runs', value: '6', given: true },
      { name: 'max_unexpected', value: '0', given: false },
    ]);
  });

  it('divergence-triage ranks unexpected divergences by kind, target and flow, and drills into the worst delivery', async () => {
    const result = await runNotebook({ file: 'notebooks/divergence-triage.md', store, replay: 'analyzed' });

    expect(objects(resultOf(result, 'kinds')).map((r) => [r.kind, r.divergences, r.deliveries])).toEqual([
      ['issue.comment', 3, 2],
      ['issue.labels.add', 1, 1],
      ['pr.review.request', 1, 1],
    ]);
    expect(objects(resultOf(result, 'flows')).map((r) => [r.flow, r.divergences, r.divergent_runs, r.runs])).toEqual([
      ['assign-agent', 4, 2, 24],
      ['request-review', 1, 1, 7],
    ]);
    expect(objects(resultOf(result, "coalesce(target, '(none)')")).map((r) => [r.target, r.divergences])).toEqual([
      [`octo-org/gadgets#${picked.a.slice(0, 4)}`, 3],
      [expect.any(String), 1],
      [expect.any(String), 1],
    ]);
    // The drill-down defaults to A, the delivery with the most unexpected divergences.
    expect(objects(resultOf(result, 'CREATE OR REPLACE TEMP TABLE drill'))).toEqual([expect.objectContaining({ delivery_id: picked.a, unexpected_divergences: 3 })]);
    expect(resultOf(result, 'FROM effects').row_count).toBeGreaterThan(0);
    expect(resultOf(result, 'FROM intents').row_count).toBeGreaterThan(0);
    expect(objects(resultOf(result, 'legacy_value, flow_value')).map((r) => r.class)).toEqual(['args_differ', 'extra_in_flow', 'missing_in_flow']);
    expect(chartCells(result).map((c) => c.svg?.startsWith('<svg'))).toEqual([true, true]);
  });

  it('divergence-triage drills into the delivery given with --param delivery, expected rows marked', async () => {
    const result = await runNotebook({ file: 'notebooks/divergence-triage.md', store, replay: 'analyzed', params: { delivery: picked.b } });

    expect(objects(resultOf(result, 'CREATE OR REPLACE TEMP TABLE drill'))[0]).toMatchObject({ delivery_id: picked.b, unexpected_divergences: 1 });
    expect(objects(resultOf(result, 'legacy_value, flow_value')).map((r) => [r.class, r.kind, r.expected_by])).toEqual([
      ['args_differ', 'issue.comment', null],
      ['missing_in_flow', 'pr.merge', 'expect:no-auto-merge'],
    ]);
  });

  it('divergence-triage runs on a replay the analyzer has not seen: empty tables, no charts', async () => {
    const result = await runNotebook({ file: 'notebooks/divergence-triage.md', store, replay: 'plain' });

    expect(resultOf(result, 'kinds').row_count).toBe(0);
    expect(chartCells(result).map((c) => c.svg)).toEqual([null, null]);
    expect(renderNotebookMarkdown(result)).toContain('*No rows to chart.*');
  });
});

describe('the HTML report', () => {
  it('escapes a <script> from the data, loads nothing from outside and runs no script', async () => {
    const result = await runNotebook({ file: 'notebooks/divergence-triage.md', store, replay: 'analyzed' });
    const html = renderNotebookHtml(result);

    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).not.toMatch(/<script/i);
    expect(renderNotebookMarkdown(result)).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(renderNotebookMarkdown(result)).not.toMatch(/<script/i);
    expect(html).not.toMatch(EXTERNAL_URL);
    expect(html).toContain(`Content-Security-Policy" content="default-src 'none'`);
  });

  it("shows the notebook's own raw HTML, links and images as text, never as something to load", async () => {
    const file = await notebook(
      'prose.md',
      `# Links <b>bold</b>

See [the docs](https://example.com/docs), <https://example.com/auto> and [below](#below).

![logo](https://example.com/logo.png)

<img src="https://example.com/pixel.gif"><script src="http://example.com/x.js"></script>

\`\`\`sql
SELECT 1 AS one
\`\`\`
`,
    );
    const html = renderNotebookHtml(await runNotebook({ file, store }));

    expect(html).not.toMatch(EXTERNAL_URL);
    expect(html).not.toMatch(/<script|<img src="http|<b>/i);
    expect(html).toContain('the docs <span class="url">(https://example.com/docs)</span>');
    expect(html).toContain('<a href="#below">below</a>');
    expect(html).toContain('[image: logo]');
    expect(html).toContain('&lt;img src=&quot;https://example.com/pixel.gif&quot;&gt;');
  });
});

describe('parameters', () => {
  it('binds a value with a quote in it as data: it matches as text and injects nothing', async () => {
    const evil = "x'); DROP VIEW deliveries; SELECT ('";
    const file = await notebook(
      'params.md',
      "```params\nwho:\n```\n\n```sql\nSELECT $who AS who, length($who) AS n, (SELECT count(*) FROM deliveries WHERE delivery_id = $who) AS matches\n```\n\n```sql\nSELECT count(*) AS deliveries FROM deliveries\n```\n",
    );
    const result = await runNotebook({ file, store, params: { who: evil } });

    const [bound, after] = sqlCells(result);
    expect(objects(bound!.result!)).toEqual([{ who: evil, n: evil.length, matches: 0 }]);
    expect(objects(after!.result!)).toEqual([{ deliveries: 80 }]);
  });

  it('binds NULL for a parameter with no default and no --param', async () => {
    const file = await notebook('null-param.md', "```params\nwho:\n```\n\n```sql\nSELECT $who IS NULL AS unset, coalesce($who, 'fallback') AS value\n```\n");
    const result = await runNotebook({ file, store });

    expect(objects(sqlCells(result)[0]!.result!)).toEqual([{ unset: true, value: 'fallback' }]);
  });

  it('refuses a --param the notebook does not declare', async () => {
    const file = await notebook('declared.md', '```params\ndelivery:\n```\n\n```sql\nSELECT 1\n```\n');
    const err = await expectError(runNotebook({ file, store, params: { delivry: 'x' } }));

    expect(err.code).toBe('HS_ERR_USAGE');
    expect(err.message).toContain('it declares: delivery');
  });

  it('refuses a query that uses a parameter the notebook does not declare, naming file:line', async () => {
    const file = await notebook('undeclared.md', '# t\n\n```sql\nSELECT $nope\n```\n');
    const err = await expectError(runNotebook({ file, store }));

    expect(err.code).toBe('HS_ERR_NOTEBOOK_INVALID');
    expect(err.message).toContain(`${file}:3: the query uses $nope`);
  });
});

describe('errors name the block', () => {
  it('a failing query is HS_ERR_QUERY_FAILED with file:line and DuckDB’s message', async () => {
    const file = await notebook('bad-query.md', '# Bad\n\nSome prose.\n\n```sql\nSELECT 1\n```\n\n```sql name=broken\nSELECT * FROM no_such_view\n```\n');
    const err = await expectError(runNotebook({ file, store }));

    expect(err.code).toBe('HS_ERR_QUERY_FAILED');
    expect(err.message).toContain(`${file}:9:`);
    expect(err.message).toMatch(/Catalog Error: Table with name no_such_view does not exist/);
  });

  it('every problem in the notebook is reported at once, before any query runs', async () => {
    const file = await notebook(
      'bad-blocks.md',
      [
        '```vega-lite', // 1: before any sql block
        '{"mark": "bar"}',
        '```',
        '',
        '```sql name=a colour=red', // 5: unknown attribute
        'SELECT * FROM no_such_view',
        '```',
        '',
        '```vega-lite data=missing', // 9: names no block
        'mark: bar',
        '```',
        '',
        '```vega-lite',
        'mark: [bar', // 14: not YAML
        '```',
      ].join('\n'),
    );
    const err = await expectError(runNotebook({ file, store }));

    expect(err.code).toBe('HS_ERR_NOTEBOOK_INVALID');
    expect(err.message.split('\n')).toEqual([
      `${file}:1: vega-lite block comes before any sql block whose result it could draw`,
      `${file}:5: sql block: unknown attribute "colour" (it takes name, rows)`,
      `${file}:9: vega-lite block: data=missing names no sql block above it`,
      expect.stringMatching(/:14: vega-lite block is not valid JSON or YAML: /),
    ]);
  });

  it('a chart spec Vega-Lite cannot compile is HS_ERR_CHART_INVALID with file:line', async () => {
    const file = await notebook('bad-chart.md', '```sql\nSELECT 1 AS x\n```\n\n```vega-lite\nmark: not-a-mark\n```\n');
    const err = await expectError(runNotebook({ file, store }));

    expect(err.code).toBe('HS_ERR_CHART_INVALID');
    expect(err.message).toContain(`${file}:5:`);
  });

  it('a missing notebook is HS_ERR_NOTEBOOK_INVALID naming it', async () => {
    const err = await expectError(runNotebook({ file: join(work, 'nope.md'), store }));

    expect(err.code).toBe('HS_ERR_NOTEBOOK_INVALID');
    expect(err.message).toContain('nope.md: cannot read the notebook: no such file');
  });
});

describe('result tables', () => {
  it('show the first 50 rows and say how many more there are; rows=N changes the cap', async () => {
    const file = await notebook('many.md', '```sql\nSELECT range AS i FROM range(120)\n```\n\n```sql rows=5\nSELECT range AS i FROM range(120)\n```\n');
    const result = await runNotebook({ file, store });

    expect(sqlCells(result).map((c) => [c.result!.rows.length, c.result!.row_count])).toEqual([
      [50, 120],
      [5, 120],
    ]);
    expect(renderNotebookMarkdown(result)).toContain('… 70 more rows not shown (120 in all).');
  });

  it('keep temp tables between blocks, and show no table for a block ending in DDL', async () => {
    const file = await notebook('temp.md', '```sql\nCREATE TEMP TABLE t AS SELECT 41 AS n\n```\n\n```sql\nSELECT n + 1 AS answer FROM t\n```\n');
    const result = await runNotebook({ file, store });

    expect(sqlCells(result).map((c) => c.result && objects(c.result))).toEqual([null, [{ answer: 42 }]]);
  });
});

describe('hookshadow notebook', () => {
  it('writes a self-contained HTML report to --out, finding a shipped notebook by name', async () => {
    const out = join(work, 'trend.html');
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      await notebookCommand().parseAsync(['daily-trend', '--store', store, '--replay', 'plain', '--out', out], { from: 'user' });
    } finally {
      stderr.mockRestore();
    }
    const html = await readFile(out, 'utf8');

    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('<title>Daily trend</title>');
    expect(html).toContain('<svg');
    expect(html).not.toMatch(EXTERNAL_URL);
  });

  it('explains the block syntax in --help', () => {
    const command = notebookCommand();
    let text = '';
    command.configureOutput({ writeOut: (s) => (text += s) });
    command.outputHelp();

    expect(text).toContain('```sql [name=NAME] [rows=N]');
    expect(text).toContain('```vega-lite [data=NAME]');
    expect(text).toContain('```params');
  });
});

import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { PNG } from 'pngjs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIVERGENCE_CLASSES, DIVERGENT_CLASSES, type Divergence, type DivergenceClass } from '../../core/divergence-schema.js';
import { describeDifference } from '../../analyzer/report/describe.js';
import { escapeXmlAttr, escapeXmlText, markdownCode } from '../../analyzer/report/escape.js';
import { renderHtml } from '../../analyzer/report/html.js';
import { NOT_LISTED_SUITE, NO_FLOW_SUITE, RULES_SUITE, UNATTRIBUTED_SUITE, renderJUnit } from '../../analyzer/report/junit.js';
import { renderMarkdown } from '../../analyzer/report/markdown.js';
import type { AnalysisResult, DivergentDelivery } from '../../analyzer/result.js';
import { blockNetwork, launchChromium } from '../support/chromium.js';

// ── A realistic analysis, built by hand ────────────────────────────────────────

/** A comment body an attacker controls: HTML, a CDATA terminator, a table pipe and a BEL. */
const HOSTILE_BODY = 'Fixed | see <script>window.__pwned = 1</script> ]]> <img src=x onerror=window.__pwned=2> \u0007 done';

const DAY_US = 86_400_000_000;
const T0 = Date.UTC(2025, 2, 3) * 1000;

function row(partial: Partial<Divergence> & { class: DivergenceClass }): Divergence {
  return {
    delivery_id: null,
    received_at_us: T0,
    source: 'github',
    event: null,
    action: null,
    flow: null,
    node_id: null,
    iteration: 0,
    run_id: null,
    kind: null,
    target: null,
    path: null,
    // What analyze reads back from divergences.parquet for an absent side.
    legacy_value: null,
    flow_value: null,
    text_diff: null,
    effect_id: null,
    route: null,
    expected_by: null,
    ...partial,
  };
}

function delivery(id: string, atUs: number, event: string, action: string | null, rows: Partial<Divergence>[]): DivergentDelivery {
  const differences = rows.map((r) => row({ class: 'args_differ', delivery_id: id, received_at_us: atUs, event, action, ...r }));
  return {
    delivery_id: id,
    received_at: new Date(atUs / 1000).toISOString(),
    source: 'github',
    event,
    action,
    unexpected: differences.some((d) => d.expected_by === null),
    differences,
  };
}

const ackLegacy = 'On it — queued as job-1';
const ackFlow = 'On it — queued as job-9';

const deliveries: DivergentDelivery[] = [
  delivery('d-001', T0 + 1_000_000, 'issue_comment', 'created', [
    {
      class: 'args_differ',
      flow: 'assign-agent',
      node_id: 'ack',
      run_id: 'run-1',
      kind: 'issue.comment',
      target: 'octo/repo#12',
      path: '$.body',
      legacy_value: ackLegacy,
      flow_value: ackFlow,
      effect_id: 'e-1',
      route: 'POST /repos/{owner}/{repo}/issues/{number}/comments',
    },
    {
      class: 'args_differ',
      flow: 'assign-agent',
      node_id: 'summary',
      run_id: 'run-1',
      kind: 'issue.comment',
      target: 'octo/repo#12',
      path: '$.body',
      legacy_value: `${HOSTILE_BODY}\nline two\nline three`,
      flow_value: `Fixed | see the log ]]> now\nline two\nline 3`,
      text_diff: '--- legacy\n+++ flow\n@@ -1,3 +1,3 @@\n-' + HOSTILE_BODY + '\n+Fixed | see the log ]]> now\n line two\n-line three\n+line 3\n',
      effect_id: 'e-2',
    },
    {
      class: 'order_differs',
      flow: 'assign-agent',
      node_id: 'label',
      run_id: 'run-1',
      kind: 'issue.label',
      target: 'octo/repo#12',
      legacy_value: ['issue.comment', 'issue.label'],
      flow_value: ['issue.label', 'issue.comment'],
    },
  ]),
  delivery('d-002', T0 + 2_000_000, 'issues', 'opened', [
    // The delivery ran two flows, so the missing effect names none.
    { class: 'missing_in_flow', kind: 'issue.assign', target: 'octo/repo#13', legacy_value: { assignees: ['hubot'] }, effect_id: 'e-3' },
    { class: 'extra_in_flow', flow: 'label-triage', node_id: 'add-labels', run_id: 'run-2', kind: 'issue.label', target: 'octo/repo#13', flow_value: { labels: ['bug', 'triage'] } },
  ]),
  delivery('d-003', T0 + DAY_US, 'pull_request', 'closed', [
    { class: 'flow_error', flow: 'release-notes', node_id: 'render', run_id: 'run-3', flow_value: { code: 'HS_ERR_EXPR', message: 'no such field: pr.merged_by' } },
  ]),
  // analyze lists deliveries with something unexpected first.
  delivery('d-005', T0 + 2 * DAY_US, 'issue_comment', 'created', [
    { class: 'missing_in_flow', flow: 'assign-agent', run_id: 'run-5', kind: 'issue.comment', target: 'octo/repo#15', legacy_value: { body: 'dup' }, expected_by: 'expect:double-post', effect_id: 'e-5' },
    {
      class: 'args_differ',
      flow: 'assign-agent',
      node_id: 'ack',
      iteration: 2,
      run_id: 'run-5',
      kind: 'issue.comment',
      target: 'octo/repo#15',
      path: '$.body',
      legacy_value: 'On it',
      flow_value: 'On it!',
    },
  ]),
  delivery('d-004', T0 + DAY_US + 5_000_000, 'issues', 'labeled', [
    {
      class: 'args_differ',
      flow: 'label-triage',
      node_id: 'add-labels',
      run_id: 'run-4',
      kind: 'issue.label',
      target: 'octo/repo#14',
      path: '$.labels[0]',
      legacy_value: 'Bug',
      flow_value: 'bug',
      expected_by: 'expect:label-case',
    },
  ]),
];

const unattributed: Divergence[] = [
  row({ class: 'unattributed', received_at_us: T0 + 3_000_000, kind: 'http.POST', target: 'ci:/jobs', legacy_value: { queue: 'nightly' }, effect_id: 'e-90' }),
  row({ class: 'unattributed', received_at_us: T0 + 4_000_000, kind: 'http.PUT', target: 'cron:/sync', legacy_value: {}, effect_id: 'e-91', expected_by: 'expect:cron-sync' }),
];

function countsByClass(rows: Divergence[]): AnalysisResult['counts_by_class'] {
  const counts = Object.fromEntries(DIVERGENCE_CLASSES.map((c) => [c, { unexpected: 0, expected: 0 }])) as AnalysisResult['counts_by_class'];
  for (const d of rows) counts[d.class][d.expected_by ? 'expected' : 'unexpected'] += 1;
  return counts;
}

function buildResult(): AnalysisResult {
  const allRows = [...deliveries.flatMap((d) => d.differences), ...unattributed];
  const unexpected = allRows.filter((d) => !d.expected_by).length;
  return {
    format: 'hookshadow-analysis',
    version: 1,
    replay_id: 'r-20250305-a1b2',
    store: '/var/lib/hookshadow',
    generated_at: '2025-03-06T09:00:00.000Z',
    rules_file: 'hookshadow.rules.yaml',
    totals: {
      deliveries: 40,
      deliveries_with_flow: 31,
      flow_runs: 36,
      divergent_runs: 4,
      divergent_deliveries: 4,
      legacy_effects: 52,
      intents: 50,
      matches: 44,
      unexpected,
      expected: allRows.length - unexpected,
    },
    counts_by_class: countsByClass(allRows),
    by_flow: [
      { flow: 'assign-agent', runs: 20, divergent_runs: 2, divergence_rate: 0.1, unexpected: { args_differ: 3, order_differs: 1 }, expected: 1 },
      { flow: 'label-triage', runs: 10, divergent_runs: 1, divergence_rate: 0.1, unexpected: { extra_in_flow: 1 }, expected: 1 },
      { flow: 'release-notes', runs: 4, divergent_runs: 1, divergence_rate: 0.25, unexpected: { flow_error: 1 }, expected: 0 },
      { flow: 'stale-bot', runs: 2, divergent_runs: 0, divergence_rate: 0, unexpected: {}, expected: 0 },
    ],
    worst: {
      kinds: [
        { key: 'issue.comment', count: 3 },
        { key: 'issue.label', count: 2 },
      ],
      targets: [{ key: 'octo/repo#12', count: 3 }],
      flows: [
        { key: 'assign-agent', count: 4 },
        { key: 'label-triage', count: 1 },
      ],
    },
    deliveries,
    deliveries_total: deliveries.length,
    unattributed,
    unattributed_total: unattributed.length,
    rules: {
      expect: [
        { id: 'label-case', reason: 'flows lower-case labels', owner: 'alice', expires: null, suppressed: 1, expired: false },
        { id: 'double-post', reason: 'legacy posts twice on retry', owner: 'bob', expires: '2025-06-01', suppressed: 1, expired: false },
        { id: 'cron-sync', reason: 'cron job, not a webhook', owner: 'carol', expires: null, suppressed: 1, expired: false },
        { id: 'old-migration', reason: 'bot replies differ | tracked in #42\nremove after the migration', owner: 'dave', expires: '2025-01-01', suppressed: 0, expired: true },
        { id: 'never-hit', reason: 'legacy webhook for `deploy`', owner: 'erin', expires: null, suppressed: 0, expired: false },
      ],
      expired: ['old-migration'],
      unused: ['never-hit', 'normalize:strip-request-id'],
    },
    noise: {
      replay_id: 'r-20250305-a1b2-noise',
      excluded: true,
      paths: [
        { kind: 'issue.comment', path: '$.body.request_id', self_pairs: 30, self_differs: 30, legacy_pairs: 30, legacy_differs: 30, noise: true },
        { kind: 'issue.label', path: '$.labels[0]', self_pairs: 10, self_differs: 0, legacy_pairs: 10, legacy_differs: 2, noise: false },
      ],
    },
    baseline: {
      replay_id: 'r-20250301-base',
      introduced: [deliveries[0]!.differences[0]!],
      resolved: [row({ class: 'missing_in_flow', delivery_id: 'd-000', flow: 'label-triage', kind: 'issue.label', target: 'octo/repo#9', legacy_value: { labels: ['x'] } })],
      introduced_total: 1,
      resolved_total: 1,
    },
    daily: [
      { day: '2025-03-03', deliveries: 14, deliveries_with_flow: 11, flow_runs: 13, divergent_runs: 2, divergence_rate: 2 / 13 },
      { day: '2025-03-04', deliveries: 15, deliveries_with_flow: 12, flow_runs: 14, divergent_runs: 1, divergence_rate: 1 / 14 },
      { day: '2025-03-05', deliveries: 11, deliveries_with_flow: 8, flow_runs: 9, divergent_runs: 1, divergence_rate: 1 / 9 },
    ],
  };
}

/** Flows of each delivery with at least one unexpected difference, as (suite, delivery) keys. */
function failingPairs(result: AnalysisResult): Set<string> {
  const pairs = new Set<string>();
  for (const d of result.deliveries) {
    for (const diff of d.differences) if (!diff.expected_by) pairs.add(`${diff.flow ?? NO_FLOW_SUITE}|${d.delivery_id}`);
  }
  return pairs;
}

/** The fixture with `listed` copies of an unexpected delivery, out of `total` the analysis found. */
function manyDeliveries(listed: number, total: number): AnalysisResult {
  const result = buildResult();
  const template = deliveries[2]!;
  result.deliveries = Array.from({ length: listed }, (_, i) => ({ ...template, delivery_id: `d-${1000 + i}` }));
  result.deliveries_total = total;
  result.totals = { ...result.totals, divergent_deliveries: total };
  return result;
}

// ── describeDifference ─────────────────────────────────────────────────────────

describe('describeDifference', () => {
  it('says class, kind, target, path, both values and the flow node on one line', () => {
    expect(describeDifference(deliveries[0]!.differences[0]!)).toBe(
      'args_differ issue.comment octo/repo#12 $.body: "On it — queued as job-1" → "On it — queued as job-9" (assign-agent/ack)',
    );
  });

  it('keeps multi-line values on one line, cuts long ones and names the rule of an expected row', () => {
    const line = describeDifference(deliveries[0]!.differences[1]!);
    expect(line).not.toContain('\n');
    expect(line).toContain('…');
    expect(describeDifference(deliveries[3]!.differences[0]!)).toBe(
      'missing_in_flow issue.comment octo/repo#15: {"body":"dup"} (assign-agent) [expected by expect:double-post]',
    );
    expect(describeDifference(deliveries[3]!.differences[1]!)).toContain('(assign-agent/ack[2])');
    expect(describeDifference(unattributed[0]!)).toBe('unattributed http.POST ci:/jobs: {"queue":"nightly"} (effect e-90)');
  });
});

describe('escaping helpers', () => {
  it('spells out characters XML 1.0 forbids and keeps line breaks in attributes', () => {
    expect(escapeXmlText('a\u0000b\u0007c\uFFFE<&>')).toBe('a\\u0000b\\u0007c\\ufffe&lt;&amp;&gt;');
    expect(escapeXmlText('lone \uD800 pair \uD83D\uDE00')).toBe('lone \\ud800 pair \uD83D\uDE00');
    expect(escapeXmlAttr('a\nb\t"c"')).toBe('a&#10;b&#9;&quot;c&quot;');
  });

  it('fences a code span with more backticks than it contains', () => {
    expect(markdownCode('a`b')).toBe('``a`b``');
    expect(markdownCode('`x`')).toBe('`` `x` ``');
    expect(markdownCode('a|b', true)).toBe('`a\\|b`');
  });
});

// ── JUnit ──────────────────────────────────────────────────────────────────────

interface JUnitCase {
  '@_classname': string;
  '@_name': string;
  failure?: { '@_message': string; '@_type': string; '#text'?: string }[];
  skipped?: { '@_message': string }[];
  'system-out'?: string;
}
interface JUnitSuite {
  '@_name': string;
  '@_tests': string;
  '@_failures': string;
  '@_skipped': string;
  testcase?: JUnitCase[];
  properties?: { property: { '@_name': string; '@_value': string }[] };
}

function parseJUnit(xml: string): { root: Record<string, string>; suites: JUnitSuite[] } {
  const parser = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '@_',
    htmlEntities: true, // decode numeric character references (&#10;) too
    parseAttributeValue: false,
    isArray: (name) => ['testsuite', 'testcase', 'failure', 'skipped', 'property'].includes(name),
  });
  const doc = parser.parse(xml) as { testsuites: Record<string, string> & { testsuite: JUnitSuite[] } };
  return { root: doc.testsuites, suites: doc.testsuites.testsuite };
}

describe('renderJUnit', () => {
  const result = buildResult();
  const xml = renderJUnit(result);
  const { root, suites } = parseJUnit(xml);
  const suite = (name: string) => suites.find((s) => s['@_name'] === name)!;
  const cases = (s: JUnitSuite) => s.testcase ?? [];

  it('is well-formed XML 1.0 with no forbidden characters, even from hostile payloads', () => {
    expect(XMLValidator.validate(xml)).toBe(true);
    expect(xml).not.toMatch(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/);
    expect(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites ')).toBe(true);
  });

  it('has a suite per flow, then (no flow), (unattributed) and (rules)', () => {
    expect(suites.map((s) => s['@_name'])).toEqual([
      'assign-agent',
      'label-triage',
      'release-notes',
      'stale-bot',
      NO_FLOW_SUITE,
      UNATTRIBUTED_SUITE,
      RULES_SUITE,
    ]);
    expect(suite('stale-bot')['@_tests']).toBe('0');
    expect(suite('assign-agent').properties!.property.map((p) => [p['@_name'], p['@_value']])).toContainEqual(['divergence_rate', '10.0%']);
  });

  it('fails one case per flow and divergent delivery, named by delivery and event', () => {
    const failing = new Set<string>();
    for (const s of suites.filter((s) => ![UNATTRIBUTED_SUITE, RULES_SUITE].includes(s['@_name']))) {
      for (const c of cases(s)) {
        expect(c['@_classname']).toBe(s['@_name']);
        if (c.failure) failing.add(`${s['@_name']}|${c['@_name'].split(' ')[0]}`);
      }
    }
    expect(failing).toEqual(failingPairs(result));
    expect(cases(suite('assign-agent')).map((c) => c['@_name'])).toEqual(['d-001 issue_comment.created', 'd-005 issue_comment.created']);
    expect(cases(suite(NO_FLOW_SUITE)).map((c) => c['@_name'])).toEqual(['d-002 issues.opened']);
  });

  it('passes deliveries whose differences were all expected, naming the rule in system-out', () => {
    const d004 = cases(suite('label-triage')).find((c) => c['@_name'].startsWith('d-004'))!;
    expect(d004.failure).toBeUndefined();
    expect(d004['system-out']).toContain('[expected by expect:label-case]');
  });

  it('carries the hostile comment through escaping intact, ]]> and all', () => {
    const d001 = cases(suite('assign-agent')).find((c) => c['@_name'].startsWith('d-001'))!;
    const failure = d001.failure![0]!;
    expect(failure['@_type']).toBe('args_differ,order_differs');
    expect(failure['@_message']).toMatch(/^3 unexpected differences: args_differ issue.comment octo\/repo#12 \$\.body/);
    const body = failure['#text']!;
    expect(body).toContain('Fixed | see <script>window.__pwned = 1</script> ]]> <img src=x onerror=window.__pwned=2> \\u0007 done');
    expect(body).toContain('+line 3');
  });

  it('fails expired and unused rules in (rules) and unattributed effects no rule expected', () => {
    const rules = cases(suite(RULES_SUITE));
    expect(rules.filter((c) => c.failure).map((c) => c['@_name'])).toEqual(['old-migration', 'never-hit', 'normalize:strip-request-id']);
    expect(rules.filter((c) => !c.failure).map((c) => c['@_name'])).toEqual(['label-case', 'double-post', 'cron-sync']);
    const un = cases(suite(UNATTRIBUTED_SUITE));
    expect(un.map((c) => [c['@_name'], !!c.failure])).toEqual([
      ['e-90 http.POST ci:/jobs', true],
      ['e-91 http.PUT cron:/sync', false],
    ]);
  });

  it('keeps tests and failures counts consistent on every suite and on the root', () => {
    let tests = 0;
    let failures = 0;
    for (const s of suites) {
      expect(Number(s['@_tests'])).toBe(cases(s).length);
      expect(Number(s['@_failures'])).toBe(cases(s).filter((c) => c.failure).length);
      tests += cases(s).length;
      failures += Number(s['@_failures']);
    }
    expect(Number(root['@_tests'])).toBe(tests);
    expect(Number(root['@_failures'])).toBe(failures);
    expect(failures).toBe(failingPairs(result).size + 1 + 3);
  });

  it('says in a skipped case how many deliveries a cut list (--limit) left without a case', () => {
    const cut = parseJUnit(renderJUnit(manyDeliveries(3, 10)));
    const notListed = cut.suites.find((s) => s['@_name'] === NOT_LISTED_SUITE)!;
    expect(notListed['@_skipped']).toBe('1');
    expect(cut.root['@_skipped']).toBe('1');
    expect(cases(notListed)[0]!.skipped![0]!['@_message']).toMatch(/^7 more divergent deliveries not listed/);
    expect(suites.some((s) => s['@_name'] === NOT_LISTED_SUITE)).toBe(false);
  });

  it('is deterministic', () => {
    expect(renderJUnit(buildResult())).toBe(xml);
  });
});

// ── Markdown ───────────────────────────────────────────────────────────────────

/** Splits a GFM table row into cells, honouring `\|` escapes. */
function cells(line: string): string[] {
  return line
    .replace(/^\|\s?/, '')
    .replace(/\s?\|$/, '')
    .split(/(?<!\\)\|/)
    .map((c) => c.trim());
}

/** Every table in a Markdown document, keyed by the heading above it. */
function markdownTables(md: string): Map<string, { header: string[]; rows: string[][] }> {
  const tables = new Map<string, { header: string[]; rows: string[][] }>();
  const lines = md.split('\n');
  let heading = '(top)';
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith('#')) heading = line.replace(/^#+\s*/, '');
    if (line.startsWith('|') && lines[i + 1]?.match(/^\|(\s*-+:?\s*\|)+$/)) {
      const header = cells(line);
      const rows: string[][] = [];
      for (i += 2; i < lines.length && lines[i]!.startsWith('|'); i++) rows.push(cells(lines[i]!));
      tables.set(heading, { header, rows });
    }
  }
  return tables;
}

/** Markdown with fenced blocks and code spans removed: what GitHub would parse as markup. */
function outsideCode(md: string): string {
  return md.replace(/^(`{3,})[^\n]*\n[\s\S]*?\n\1$/gm, '').replace(/(`+)[^`]*?\1/g, '');
}

describe('renderMarkdown', () => {
  const result = buildResult();
  const md = renderMarkdown(result);
  const tables = markdownTables(md);

  it('leads with the verdict', () => {
    expect(md.split('\n')[0]).toBe('## ❌ hookshadow: 8 unexpected divergences: 4 deliveries and 4 of 36 flow runs divergent');
  });

  it('counts rows by class, unexpected and expected, with a total', () => {
    const t = tables.get('Divergences by class')!;
    expect(t.header).toEqual(['class', 'unexpected', 'expected']);
    expect(t.rows.map((r) => r[0])).toEqual([...DIVERGENT_CLASSES, '**total**']);
    for (const [cls, unexpected, expected] of t.rows.slice(0, -1)) {
      const c = result.counts_by_class[cls as DivergenceClass];
      expect([Number(unexpected), Number(expected)]).toEqual([c.unexpected, c.expected]);
    }
    expect(t.rows.at(-1)).toEqual(['**total**', `**${result.totals.unexpected}**`, `**${result.totals.expected}**`]);
  });

  it('has a row per flow with runs, divergent runs and rate', () => {
    const t = tables.get('Flows')!;
    expect(t.rows).toEqual([
      ['assign-agent', '20', '2', '10.0%', '4', '1'],
      ['label-triage', '10', '1', '10.0%', '1', '1'],
      ['release-notes', '4', '1', '25.0%', '1', '0'],
      ['stale-bot', '2', '0', '0.0%', '0', '0'],
    ]);
  });

  it('escapes pipes and line breaks so every table row keeps its columns', () => {
    for (const [, t] of tables) for (const r of t.rows) expect(r).toHaveLength(t.header.length);
    const rules = tables.get('Rules needing attention')!;
    expect(rules.rows.map((r) => [r[0], r[1]])).toEqual([
      ['`old-migration`', 'expired'],
      ['`never-hit`', 'unused'],
      ['`normalize:strip-request-id`', 'unused'],
    ]);
    expect(rules.rows[0]![5]).toBe('bot replies differ \\| tracked in \\#42<br>remove after the migration');
    expect(rules.rows[1]![5]).toBe('legacy webhook for \\`deploy\\`');
  });

  it('lists worst offenders, baseline, noise paths and unattributed effects', () => {
    expect(md).toContain('- **kinds:** `issue.comment` (3), `issue.label` (2)');
    expect(md).toContain('### Against baseline `r-20250301-base`\n\n1 divergence introduced, 1 resolved.');
    expect(tables.get('Noise')!.rows.map((r) => r[4])).toEqual(['noise', 'signal']);
    expect(md).toContain('### Unattributed effects (2)');
  });

  it('lists divergent deliveries with every difference, and long text diffs in a diff fence inside details', () => {
    expect(md).toContain('### Divergent deliveries (4)\n\n1 delivery with only expected differences not listed.');
    const headings = md.split('\n').filter((l) => l.startsWith('#### '));
    expect(headings.map((h) => h.split(' ')[1])).toEqual(['`d-001`', '`d-002`', '`d-003`', '`d-005`']);
    expect(md).not.toContain('`null`');
    expect(md).toContain('- **args_differ** `issue.comment` `octo/repo#12` `$.body`: `"On it — queued as job-1"` → `"On it — queued as job-9"` (assign-agent/ack)');
    expect(md).toContain('— expected by `expect:double-post`');
    expect(md).toMatch(/<details><summary>text diff at \$\.body<\/summary>\n\n```diff\n--- legacy\n[\s\S]*?\n```\n\n<\/details>/);
  });

  it('leaves no payload HTML outside code spans and fences', () => {
    expect(outsideCode(md)).not.toMatch(/<script|<img/i);
  });

  it('caps the delivery list and says how many were left out', () => {
    const out = renderMarkdown(manyDeliveries(60, 60));
    expect(out.split('\n').filter((l) => l.startsWith('#### '))).toHaveLength(50);
    expect(out).toContain('…and 10 more deliveries with unexpected differences not shown');
  });

  it('counts deliveries the analyzer already cut (--limit) as left out', () => {
    const out = renderMarkdown(manyDeliveries(20, 75));
    expect(out).toContain('### Divergent deliveries (75)');
    expect(out.split('\n').filter((l) => l.startsWith('#### '))).toHaveLength(20);
    expect(out).toContain('…and 55 more deliveries with unexpected differences not shown');
  });

  it('is deterministic', () => {
    expect(renderMarkdown(buildResult())).toBe(md);
  });
});

// ── HTML, in a real browser ────────────────────────────────────────────────────

describe('renderHtml', () => {
  let browser: Browser;
  let page: Page;
  let requested: string[];
  let html: string;

  beforeAll(async () => {
    html = await renderHtml(buildResult());
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    requested = await blockNetwork(context);
    page = await context.newPage();
    await page.setContent(html, { waitUntil: 'load' });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
  });

  it('is one self-contained page: no script, no external URL, no request made', async () => {
    // Payload text may say `src=` or `http://` (escaped, as text); only tags and CSS could fetch.
    expect(html).not.toMatch(/<(script|link|iframe|object|embed|img|image|use)\b/i);
    expect(html).not.toMatch(/<[^>]*\s(src|href|xlink:href)=/i);
    expect(html).not.toMatch(/url\(|@import/i);
    expect(requested).toEqual([]);
  });

  it('shows a hostile comment body as text, without running it', async () => {
    // A string expression: this project type-checks without the DOM library.
    expect(await page.evaluate('typeof window.__pwned')).toBe('undefined');
    expect(await page.locator('script').count()).toBe(0);
    expect(await page.locator('img').count()).toBe(0);
    const legacy = await page.locator('.col.legacy pre').allInnerTexts();
    expect(legacy.some((t) => t.includes('Fixed | see <script>window.__pwned = 1</script> ]]> <img src=x onerror=window.__pwned=2>'))).toBe(true);
  });

  it('puts the replay id and verdict in the header', async () => {
    expect(await page.locator('header h1').innerText()).toContain('r-20250305-a1b2');
    expect(await page.locator('header .verdict.fail').innerText()).toContain('8 unexpected divergences');
  });

  it('shows legacy and flow side by side with word-level highlights', async () => {
    const diff = page.locator('.difference').filter({ hasText: 'assign-agent/ack' }).first();
    // The word diff tokenizes `job-1` as `job`, `-`, `1`: only the number changed.
    expect(await diff.locator('.col.legacy').innerText()).toContain('On it — queued as job-1');
    expect(await diff.locator('.col.legacy del').allInnerTexts()).toEqual(['1']);
    expect(await diff.locator('.col.flow ins').allInnerTexts()).toEqual(['9']);
  });

  it('collapses deliveries whose differences were all expected', async () => {
    expect(await page.locator('details.delivery[open] > summary code').allInnerTexts()).toEqual(['d-001', 'd-002', 'd-003', 'd-005']);
    expect(await page.locator('details.delivery:not([open]) > summary code').allInnerTexts()).toEqual(['d-004']);
  });

  it('shows no value, not null, for the side a class does not have', async () => {
    const missing = page.locator('.difference').filter({ hasText: 'issue.assign' });
    expect(await missing.locator('.col.flow').innerText()).toContain('no value');
    expect(await missing.locator('.col.flow pre').count()).toBe(0);
  });

  it('draws the daily trend as a real chart', async () => {
    const png = PNG.sync.read(await page.locator('#trend-chart').screenshot());
    const colours = new Set<number>();
    let inked = 0;
    let blue = 0;
    let red = 0;
    for (let i = 0; i < png.data.length; i += 4) {
      const [r, g, b] = [png.data[i]!, png.data[i + 1]!, png.data[i + 2]!];
      colours.add((r << 16) | (g << 8) | b);
      if (r < 240 || g < 240 || b < 240) inked++;
      if (Math.abs(r - 0x4c) < 12 && Math.abs(g - 0x78) < 12 && Math.abs(b - 0xa8) < 12) blue++;
      if (Math.abs(r - 0xe4) < 12 && Math.abs(g - 0x57) < 12 && Math.abs(b - 0x56) < 12) red++;
    }
    expect(png.width).toBeGreaterThan(300);
    expect(inked).toBeGreaterThan(2000);
    expect(colours.size).toBeGreaterThan(2);
    // Both series are drawn: flow runs in blue, divergent runs in red.
    expect(blue).toBeGreaterThan(500);
    expect(red).toBeGreaterThan(50);
  });

  it('is deterministic', async () => {
    expect(await renderHtml(buildResult())).toBe(html);
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareDelivery, type FlowIntent, type FlowRunInfo, type LegacyEffect } from '../../analyzer/match.js';
import { NO_RULES, parseRules, staleRules, type Rules } from '../../analyzer/rules.js';
import { compareValues, textDiff } from '../../analyzer/compare.js';
import { formatPath, parsePathPattern, updateAt } from '../../analyzer/json-path.js';
import { isNoise } from '../../analyzer/noise.js';

const meta = { delivery_id: 'd1', received_at_us: 1_795_000_000_000_000, source: 'github', event: 'issues', action: 'assigned' };
const T = 'octo/repo#12';
let n = 0;
const legacy = (kind: string, args: Record<string, unknown>, target = T): LegacyEffect => ({ effect_id: `e${++n}`, kind, target, args, route: null });
const intent = (kind: string, args: Record<string, unknown>, node = `n${++n}`, flow = 'f', target = T): FlowIntent => ({ run_id: `run-${flow}`, flow, node_id: node, iteration: 0, kind, target, args });
const run = (flow = 'f', status = 'ok', node_id: string | null = null): FlowRunInfo => ({ run_id: `run-${flow}`, flow, status, error: status === 'ok' ? null : 'boom', node_id });
const rules = (yaml: string, now = new Date('2026-11-21T12:00:00Z')): Rules => parseRules(yaml, 'rules.yaml', now);
const classes = (rows: { class: string }[]) => rows.map((r) => r.class).sort();

describe('matcher', () => {
  it('matches equal effects and intents as multisets, whatever their order', () => {
    const rows = compareDelivery(
      meta,
      [legacy('issue.comment', { body: 'a' }), legacy('issue.comment', { body: 'b' })],
      [intent('issue.comment', { body: 'b' }), intent('issue.comment', { body: 'a' })],
      [run()],
      NO_RULES(),
    );
    // Two matches; the flow comments b then a while legacy did a then b: an order difference, reported once.
    expect(classes(rows)).toEqual(['match', 'match', 'order_differs']);
    const order = rows.find((r) => r.class === 'order_differs')!;
    expect(order.legacy_value).toEqual([`issue.comment ${T}`, `issue.comment ${T}`]);
  });

  it('counts duplicates: two legacy comments against one intent leave one missing_in_flow', () => {
    const rows = compareDelivery(meta, [legacy('issue.comment', { body: 'x' }), legacy('issue.comment', { body: 'x' })], [intent('issue.comment', { body: 'x' })], [run()], NO_RULES());
    expect(classes(rows)).toEqual(['match', 'missing_in_flow']);
    // One flow ran: the gap is attributed to it.
    expect(rows.find((r) => r.class === 'missing_in_flow')).toMatchObject({ flow: 'f', run_id: 'run-f', legacy_value: { body: 'x' } });
  });

  it('reports extra_in_flow with the flow and node, and missing_in_flow with no flow when none ran', () => {
    const extra = compareDelivery(meta, [], [intent('issue.labels.add', { labels: ['a'] }, 'mark', 'retry')], [run('retry')], NO_RULES());
    expect(extra).toEqual([expect.objectContaining({ class: 'extra_in_flow', flow: 'retry', node_id: 'mark', flow_value: { labels: ['a'] }, kind: 'issue.labels.add', target: T })]);
    const missing = compareDelivery(meta, [legacy('issue.close', {})], [], [], NO_RULES());
    expect(missing).toEqual([expect.objectContaining({ class: 'missing_in_flow', flow: null, node_id: null, kind: 'issue.close' })]);
    // Two flows ran: no single one to blame.
    const two = compareDelivery(meta, [legacy('issue.close', {})], [], [run('a'), run('b')], NO_RULES());
    expect(two[0]).toMatchObject({ class: 'missing_in_flow', flow: null });
  });

  it('diffs args field by field, with JSON paths and a unified diff for long text', () => {
    const long = 'line one\nline two\nline three\n';
    const rows = compareDelivery(
      meta,
      [legacy('issue.comment', { body: long, extra: 1 })],
      [intent('issue.comment', { body: long.replace('two', '2') }, 'ack')],
      [run()],
      NO_RULES(),
    );
    expect(rows.map((r) => [r.class, r.path])).toEqual([
      ['args_differ', '$.body'],
      ['args_differ', '$.extra'],
    ]);
    expect(rows[0]!.text_diff).toContain('-line two');
    expect(rows[0]!.text_diff).toContain('+line 2');
    expect(rows[0]!.node_id).toBe('ack');
    expect(rows[1]).toMatchObject({ legacy_value: 1, flow_value: undefined, text_diff: null });
  });

  it('pairs each leftover effect with the closest intent', () => {
    const rows = compareDelivery(
      meta,
      [legacy('issue.comment', { body: 'alpha', n: 1 }), legacy('issue.comment', { body: 'beta', n: 2 })],
      [intent('issue.comment', { body: 'beta', n: 3 }, 'b'), intent('issue.comment', { body: 'alpha', n: 9 }, 'a')],
      [run()],
      NO_RULES(),
    );
    const differ = rows.filter((r) => r.class === 'args_differ');
    expect(differ.map((r) => [r.node_id, r.path, r.legacy_value, r.flow_value])).toEqual([
      ['a', '$.n', 1, 9],
      ['b', '$.n', 2, 3],
    ]);
  });

  it('keeps different targets apart', () => {
    const rows = compareDelivery(meta, [legacy('issue.comment', { body: 'x' }, 'o/r#1')], [intent('issue.comment', { body: 'x' }, 'n', 'f', 'o/r#2')], [run()], NO_RULES());
    expect(classes(rows)).toEqual(['extra_in_flow', 'missing_in_flow']);
  });

  it('reports a failed or incomplete run as flow_error, naming the node', () => {
    const rows = compareDelivery(meta, [], [], [run('f', 'failed', 'issue'), run('g', 'incomplete', 'fetch'), run('h')], NO_RULES());
    expect(rows.map((r) => [r.class, r.flow, r.node_id])).toEqual([
      ['flow_error', 'f', 'issue'],
      ['flow_error', 'g', 'fetch'],
    ]);
    expect(rows[0]!.flow_value).toEqual({ status: 'failed', error: 'boom' });
  });

  it('checks order only within a flow', () => {
    const rows = compareDelivery(
      meta,
      [legacy('issue.comment', { body: 'x' }), legacy('agent.enqueue', { q: 1 }, 'queue:q')],
      [intent('agent.enqueue', { q: 1 }, 'enq', 'a', 'queue:q'), intent('issue.comment', { body: 'x' }, 'ack', 'b')],
      [run('a'), run('b')],
      NO_RULES(),
    );
    expect(classes(rows)).toEqual(['match', 'match']);
  });

  it('is a multiset match: any permutation of the same effects gives only matches (and perhaps one order difference)', () => {
    const effect = fc.record({ kind: fc.constantFrom('issue.comment', 'issue.labels.add'), target: fc.constantFrom('o/r#1', 'o/r#2'), body: fc.string({ maxLength: 3 }) });
    fc.assert(
      fc.property(fc.array(effect, { maxLength: 8 }).chain((es) => fc.tuple(fc.constant(es), fc.shuffledSubarray(es, { minLength: es.length, maxLength: es.length }))), ([es, shuffled]) => {
        const rows = compareDelivery(
          meta,
          es.map((e) => legacy(e.kind, { body: e.body }, e.target)),
          shuffled.map((e) => intent(e.kind, { body: e.body }, `n${++n}`, 'f', e.target)),
          [run()],
          NO_RULES(),
        );
        expect(rows.filter((r) => r.class === 'match')).toHaveLength(es.length);
        expect(rows.filter((r) => r.class !== 'match' && r.class !== 'order_differs')).toEqual([]);
      }),
    );
  });
});

describe('rules', () => {
  it('normalizes: ignore a path, regex-replace, trim and case-fold, array as set, numeric tolerance', () => {
    const r = rules(`
normalize:
  - { id: job-ids, kind: issue.comment, path: $.body, replace: { pattern: 'job-[0-9a-f]+', with: 'job-*' } }
  - { id: no-ts, path: $.ts, ignore: true }
  - { id: title, path: $.title, trim: true, case_fold: true }
  - { id: labels, path: $.labels, as_set: true }
  - { id: score, path: $.score, tolerance: 0.01 }
`);
    const rows = compareDelivery(
      meta,
      [legacy('issue.comment', { body: 'queued as job-1a', ts: 1, title: ' Hello ', labels: ['b', 'a'], score: 1.0 })],
      [intent('issue.comment', { body: 'queued as job-ff', ts: 2, title: 'hello', labels: ['a', 'b'], score: 1.005 })],
      [run()],
      r,
    );
    expect(classes(rows)).toEqual(['match']);
    expect(staleRules(r)).toEqual({ expired: [], unused: [] });
    // Outside the tolerance it differs; the regex is scoped to its kind.
    const differ = compareDelivery(meta, [legacy('issue.comment', { score: 1 })], [intent('issue.comment', { score: 1.02 })], [run()], r);
    expect(differ.map((d) => d.path)).toEqual(['$.score']);
    const scoped = compareDelivery(meta, [legacy('issue.create', { body: 'job-1' }, 'o/r')], [intent('issue.create', { body: 'job-2' }, 'n', 'f', 'o/r')], [run()], r);
    expect(scoped.map((d) => d.class)).toEqual(['args_differ']);
  });

  it('counts a normalize rule as used only when it changes a value, a tolerance only when it makes numbers equal', () => {
    const r = rules(`
normalize:
  - { id: never-matches, path: $.body, replace: { pattern: 'job-[0-9]+', with: 'job-*' } }
  - { id: already-trim, path: $.body, trim: true }
  - { id: close-enough, path: $.n, tolerance: 0.1 }
`);
    compareDelivery(meta, [legacy('issue.comment', { body: 'same', n: 1 })], [intent('issue.comment', { body: 'same', n: 5 })], [run()], r);
    expect(staleRules(r).unused).toEqual(['never-matches', 'already-trim', 'close-enough']);
    compareDelivery(meta, [legacy('issue.comment', { body: ' x ', n: 1 })], [intent('issue.comment', { body: 'x', n: 1.05 })], [run()], r);
    expect(staleRules(r).unused).toEqual(['never-matches']);
  });

  it('array as set keeps multiplicity', () => {
    const r = rules(`normalize: [{ path: $.labels, as_set: true }]`);
    const rows = compareDelivery(meta, [legacy('issue.labels.add', { labels: ['a', 'a', 'b'] })], [intent('issue.labels.add', { labels: ['b', 'a'] })], [run()], r);
    expect(rows.map((d) => [d.class, d.path])).toEqual([
      ['args_differ', '$.labels[1]'],
      ['args_differ', '$.labels[2]'],
    ]);
  });

  it('expect rules suppress what they match, reported apart with the rule; expired rules suppress nothing', () => {
    const r = rules(`
expect:
  - id: retry-marks-running
    class: extra_in_flow
    kind: issue.labels.add
    flow: retry-*
    reason: the flow fixes a legacy bug
    owner: platform
    expires: 2026-12-31
  - { id: old, class: missing_in_flow, reason: was a bug, owner: me, expires: 2026-11-20 }
  - { id: never, kind: pr.merge, reason: not yet, owner: me }
`);
    const rows = compareDelivery(meta, [legacy('issue.close', {})], [intent('issue.labels.add', { labels: ['x'] }, 'mark', 'retry-agent')], [run('retry-agent')], r);
    expect(rows.map((d) => [d.class, d.expected_by])).toEqual([
      ['missing_in_flow', null],
      ['extra_in_flow', 'expect:retry-marks-running'],
    ]);
    expect(r.expect.find((e) => e.id === 'retry-marks-running')!.suppressed).toBe(1);
    expect(staleRules(r)).toEqual({ expired: ['old'], unused: ['never'] });
  });

  it('a rule is good through its expires day (UTC)', () => {
    const yaml = `expect: [{ id: x, reason: r, owner: o, expires: 2026-11-21 }]`;
    expect(rules(yaml, new Date('2026-11-21T23:59:59Z')).expect[0]!.expired).toBe(false);
    expect(rules(yaml, new Date('2026-11-22T00:00:00Z')).expect[0]!.expired).toBe(true);
  });

  it('reports every problem of a bad rules file with file:line:col', () => {
    const bad = `normalize:
  - { path: body, ignore: true }
  - { path: $.a, ignore: true, as_set: true }
  - { path: $.b, replace: { pattern: '(', with: '' } }
expect:
  - { id: a, reason: r }
  - { id: b, reason: r, owner: o, expires: tomorrow }
`;
    let message = '';
    try {
      parseRules(bad, 'rules.yaml', new Date());
    } catch (err) {
      message = (err as Error).message;
      expect((err as { code: string }).code).toBe('HS_ERR_RULES_INVALID');
    }
    // The schema problems come first (missing owner, bad expires); fix them and the rest show.
    expect(message).toMatch(/rules\.yaml:6:\d+: missing "owner"/);
    expect(message).toMatch(/rules\.yaml:7:\d+: .*expires/);
    const second = bad.replace('{ id: a, reason: r }', '{ id: a, reason: r, owner: o }').replace('expires: tomorrow', 'expires: 2026-01-01');
    try {
      parseRules(second, 'rules.yaml', new Date());
      expect.unreachable();
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/rules\.yaml:2:\d+: path "body" must start with "\$"/);
    expect(message).toMatch(/rules\.yaml:3:\d+: a normalize rule needs exactly one of/);
    expect(message).toMatch(/rules\.yaml:4:\d+: RE2 refuses the pattern/);
    expect(() => parseRules('expect: [\n  {id: x', 'r.yaml', new Date())).toThrow(/r\.yaml:\d+:\d+:/);
  });

  it('regexes are RE2: a pattern that would backtrack catastrophically runs in linear time', () => {
    const r = rules(`normalize: [{ path: $.body, replace: { pattern: '(a+)+$', with: 'x' } }]`);
    const body = 'a'.repeat(5000) + 'b';
    const rows = compareDelivery(meta, [legacy('issue.comment', { body })], [intent('issue.comment', { body })], [run()], r);
    expect(rows.map((d) => d.class)).toEqual(['match']);
  });
});

describe('noise (Diffy)', () => {
  it('calls a path noise only when it differs against the legacy side no more often than against itself', () => {
    // A timestamp: differs every time, both ways.
    expect(isNoise({ self_pairs: 10, self_differs: 10, legacy_pairs: 10, legacy_differs: 10 })).toBe(true);
    // Flaky 1 in 10 against itself, but 9 in 10 against legacy: a real divergence hides behind the noise.
    expect(isNoise({ self_pairs: 10, self_differs: 1, legacy_pairs: 10, legacy_differs: 9 })).toBe(false);
    // Never differs against itself: deterministic, whatever the legacy side says.
    expect(isNoise({ self_pairs: 10, self_differs: 0, legacy_pairs: 10, legacy_differs: 0 })).toBe(false);
    // Nothing to compare on the legacy side: what differs against itself is noise.
    expect(isNoise({ self_pairs: 4, self_differs: 2, legacy_pairs: 0, legacy_differs: 0 })).toBe(true);
  });
});

describe('values and paths', () => {
  it('formats and parses JSON paths', () => {
    expect(formatPath(['labels', 0, 'x-y'])).toBe('$.labels[0]["x-y"]');
    expect(parsePathPattern('$.items[*].name')).toEqual(['items', '*', 'name']);
    expect(parsePathPattern('$["a b"][2]')).toEqual(['a b', 2]);
    expect(() => parsePathPattern('$.a..b')).toThrow(/column 4/);
  });

  it('updates every selected value, deleting array elements without skipping any', () => {
    const v = { items: [{ t: 1 }, { t: 2 }], tags: ['a', 'b', 'c'] };
    expect(updateAt(v, ['items', '*', 't'], () => undefined)).toBe(true);
    expect(updateAt(v, ['tags', '*'], () => undefined)).toBe(true);
    expect(v).toEqual({ items: [{}, {}], tags: [] });
    expect(updateAt(v, ['missing'], () => 1)).toBe(false);
  });

  it('compares deeply, reporting the deepest differing paths', () => {
    expect(compareValues({ a: { b: [1, 2] }, c: 'x' }, { a: { b: [1, 3, 4] }, c: 'x' }).map((d) => formatPath(d.path))).toEqual(['$.a.b[1]', '$.a.b[2]']);
    expect(compareValues({ a: 1 }, { a: '1' })).toHaveLength(1);
    expect(textDiff('short', 'other')).toBeNull();
  });
});

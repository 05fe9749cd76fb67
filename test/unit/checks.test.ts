import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { caseArbitrary } from '../../analyzer/checks/arbitraries.js';
import { describeCase, materialize, type CasePlan } from '../../analyzer/checks/case.js';
import { defaultChecks, parseChecks } from '../../analyzer/checks/checks-file.js';
import { openInvariantDb } from '../../analyzer/checks/invariants.js';
import { keyPaths, replaceAt, reorderKeys } from '../../analyzer/checks/payload-tree.js';
import { isHsError } from '../../core/errors.js';
import { createDedupMemory } from '../../replayer/engine/dedup.js';
import { NO_RECORDINGS } from '../../replayer/engine/recordings.js';
import { runDelivery, type EngineOptions } from '../../replayer/engine/run.js';
import { compileExpression } from '../../replayer/flows/expressions.js';
import { compileFlow } from '../../replayer/flows/load.js';
import { formatProblem, type CompiledFlow, type FlowProblem } from '../../replayer/flows/model.js';
import { createOpRegistry } from '../../replayer/ops/registry.js';
import type { StoredDelivery } from '../../replayer/source.js';

const ops = createOpRegistry();

function compile(text: string): { flow: CompiledFlow | null; problems: string[] } {
  const problems: FlowProblem[] = [];
  const flow = compileFlow(text, 'f.yaml', ops, problems);
  return { flow, problems: problems.map(formatProblem) };
}

const DEDUP_FLOW = `name: once
on: { event: issues }
dedup: { window: 1h }
nodes:
  - { id: q, op: agent.enqueue, with: { queue: triage, ref: x } }
`;

const at = (hours: number) => Date.UTC(2026, 10, 21, hours) * 1000;
const delivery = (id: string, receivedAtUs: number) => ({ delivery_id: id, source: 'github', event: 'issues', action: 'assigned', received_at_us: receivedAtUs, headers: {}, payload: {}, repository: null });
const opts = (over: Partial<EngineOptions> = {}): EngineOptions => ({ mode: 'dry-run', seed: 0, reads: NO_RECORDINGS, logger: { info: () => {} }, ...over });

describe('flow dedup', () => {
  it('runs a flow once per key within its window; a repeat is a duplicate run with no nodes', async () => {
    const { flow } = compile(DEDUP_FLOW);
    const dedup = createDedupMemory();
    const statuses = async (id: string, t: number) => (await runDelivery([flow!], delivery(id, t), opts({ dedup }))).map((r) => `${r.status}:${r.nodes.length}`);
    expect(await statuses('a', at(1))).toEqual(['ok:1']);
    expect(await statuses('a', at(1) + 60_000_000)).toEqual(['duplicate:0']);
    expect(await statuses('b', at(1) + 60_000_000)).toEqual(['ok:1']);
    // Measured from the run that acted: two hours later the key is free again.
    expect(await statuses('a', at(3))).toEqual(['ok:1']);
  });

  it('without a dedup memory every delivery acts (nothing to compare with)', async () => {
    const { flow } = compile(DEDUP_FLOW);
    for (let i = 0; i < 2; i++) expect((await runDelivery([flow!], delivery('a', at(1)), opts()))[0]!.status).toBe('ok');
  });

  it('a key that reads nodes, or a malformed window, is reported at its line and column', () => {
    const { problems } = compile(DEDUP_FLOW.replace('dedup: { window: 1h }', "dedup:\n  key: '${{ nodes.q.output.job_id }}'\n  window: 1 hour"));
    expect(problems).toEqual([expect.stringMatching(/^f\.yaml:5:11: HS_ERR_FLOW_INVALID: .*window must match pattern/)]);
    const nodes = compile(DEDUP_FLOW.replace('dedup: { window: 1h }', "dedup:\n  key: '${{ nodes.q.output.job_id }}'"));
    expect(nodes.problems).toEqual(['f.yaml:4:8: HS_ERR_NODE_REFERENCE: the dedup key is computed before any node runs; it cannot read nodes.q']);
  });
});

describe('what an expression reads of the delivery', () => {
  it('lists the longest field chains from `delivery`, through optional and index access', () => {
    const e = compileExpression('delivery.payload.?assignee.login.orValue(delivery.payload["issue"].user.login) == delivery.event && has(delivery.payload.x)');
    expect(e.deliveryReads).toEqual([['payload', 'assignee', 'login'], ['payload', 'issue', 'user', 'login'], ['event'], ['payload', 'x']]);
    expect(compileExpression('size(delivery) > 0').deliveryReads).toEqual([[]]);
    expect(compileExpression('delivery.payload.issue.map(k, k)[0] == "id"').deliveryReads).toEqual([['payload', 'issue']]);
  });
});

describe('payload tree helpers', () => {
  it('replaceAt copies, deletes with undefined, and leaves missing parents alone', () => {
    const p = { a: { b: [1, 2, 3] }, c: 1 };
    expect(replaceAt(p, ['a', 'b', 1], () => undefined)).toEqual({ a: { b: [1, 3] }, c: 1 });
    expect(replaceAt(p, ['c'], () => undefined)).toEqual({ a: { b: [1, 2, 3] } });
    expect(replaceAt(p, ['x', 'y'], () => 1)).toEqual(p);
    expect(p).toEqual({ a: { b: [1, 2, 3] }, c: 1 });
  });

  it('reorderKeys keeps every value; keyPaths lists parents before children', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.nat(), (v, seed) => {
        const r = reorderKeys(v, (path, k) => (seed * 31 + k.length + path.length) % 7);
        expect(r).toEqual(v);
      }),
    );
    expect(keyPaths({ a: { b: 1 }, c: [{ d: 2 }] })).toEqual([['a'], ['a', 'b'], ['c'], ['c', 0, 'd']]);
  });
});

const githubSample = (payload: Record<string, unknown>): StoredDelivery => ({
  delivery_id: 'gh-1',
  source: 'github',
  event: 'issues',
  action: 'assigned',
  received_at_us: at(23) + 59 * 60_000_000,
  headers: JSON.stringify({ 'x-github-event': 'issues', 'x-github-delivery': 'gh-1' }),
  body: JSON.stringify(payload),
  body_encoding: 'utf8',
  content_type: 'application/json',
  repository: 'octo/repo',
  reads: [],
  writes: [],
});

const SAMPLE = { action: 'assigned', issue: { number: 1, labels: [{ name: 'bug' }], assignees: [], body: 'hi' }, assignee: { login: 'x' }, repository: { full_name: 'octo/repo' }, sender: { login: 's' } };

describe('cases', () => {
  it('applies mutations and recomputes the capture columns as the recorder would', () => {
    const plan: CasePlan = {
      origin: { kind: 'sample', index: 0 },
      keep: [],
      mutations: [
        { op: 'action', value: 'unassigned' },
        { op: 'label.add', name: 'agent-running' },
        { op: 'assignee.add', login: 'hookbot' },
        { op: 'midnight', offsetMs: -500 },
        { op: 'redeliver', afterMs: 2_000 },
      ],
    };
    const c = materialize(plan, [githubSample(SAMPLE)]);
    expect(c.deliveries).toHaveLength(2);
    const [first, again] = c.deliveries;
    expect(first!.action).toBe('unassigned');
    const p = JSON.parse(first!.body!);
    expect(p.issue.labels.map((l: { name: string }) => l.name)).toEqual(['bug', 'agent-running']);
    expect(p.assignee.login).toBe('hookbot');
    expect(first!.received_at_us).toBe(Date.UTC(2026, 10, 22) * 1000 - 500_000);
    expect(again).toMatchObject({ delivery_id: first!.delivery_id, body: first!.body, received_at_us: first!.received_at_us + 2_000_000 });
    expect(describeCase(c)).toBe('sample gh-1; action "unassigned"; label.add "agent-running"; assignee.add "hookbot"; received at UTC midnight -500 ms; redelivered 2000 ms later');
  });

  it('drops only keys the GitHub schema leaves optional', () => {
    const keys = keyPaths(SAMPLE);
    const c = materialize({ origin: { kind: 'sample', index: 0 }, keep: keys.map(() => 0), mutations: [] }, [githubSample(SAMPLE)]);
    const p = JSON.parse(c.deliveries[0]!.body!);
    // The schema requires action, issue, repository, sender and the issue's number; it lets labels and body go.
    expect(p).toMatchObject({ action: 'assigned', issue: { number: 1 }, repository: {}, sender: {} });
    expect(c.dropped).toContain('$.issue.labels');
    expect(c.dropped).not.toContain('$.issue.number');
  });

  it('the arbitrary always yields cases that materialize to deliveries with a parseable body', () => {
    const samples = [githubSample(SAMPLE)];
    fc.assert(
      fc.property(caseArbitrary(samples, { schemas: false }), (plan) => {
        const c = materialize(plan, samples);
        expect(c.deliveries.length).toBeGreaterThanOrEqual(1);
        for (const d of c.deliveries) expect(() => JSON.parse(d.body!)).not.toThrow();
      }),
      { numRuns: 200 },
    );
  });
});

describe('the checks file', () => {
  it('defaults: every property but legacy-parity, on every flow', () => {
    const d = defaultChecks();
    expect(Object.entries(d.properties).filter(([, s]) => s.enabled).map(([n]) => n)).toEqual(['deterministic', 'dry-run-is-inert', 'redelivery-idempotent', 'trigger-consistent', 'irrelevant-fields-inert']);
  });

  it('scopes properties to flows by glob, and turns legacy-parity on with an oracle', () => {
    const c = parseChecks('properties:\n  deterministic: { flows: "assign-*" }\n  trigger-consistent: false\nlegacy:\n  module: oracle.ts\n', '/x/checks.yaml');
    expect(c.properties.deterministic.flows!.test('assign-agent')).toBe(true);
    expect(c.properties.deterministic.flows!.test('retry-agent')).toBe(false);
    expect(c.properties['trigger-consistent'].enabled).toBe(false);
    expect(c.properties['legacy-parity'].enabled).toBe(true);
    expect(c.legacy).toEqual({ module: '/x/oracle.ts', settleMs: 50, rules: null, routes: [] });
  });

  it('reports every problem at once, at file:line:col', () => {
    let err: unknown;
    try {
      parseChecks('properties:\n  legacy-parity: true\ninvariants:\n  - { name: a, meaning: m, sql: SELECT 1 }\n  - { name: a, meaning: m, sql: SELECT 2 }\n', 'c.yaml');
    } catch (e) {
      err = e;
    }
    expect(isHsError(err) && err.code).toBe('HS_ERR_CHECKS_INVALID');
    expect((err as Error).message).toContain('c.yaml:5:13: duplicate invariant name "a"');
    expect((err as Error).message).toContain('c.yaml:2:18: legacy-parity needs a legacy oracle');
  });

  it('an invariant whose SQL does not run against the replay views is refused before any search', async () => {
    const db = await openInvariantDb();
    try {
      await expect(db.validate({ name: 'typo', meaning: 'm', sql: 'SELECT * FROM intent', at: 'c.yaml:3:10' })).rejects.toThrow(/c\.yaml:3:10: invariant "typo" does not run against the replay views/);
      await expect(db.validate({ name: 'ok', meaning: 'm', sql: "SELECT * FROM intents i JOIN deliveries d USING (delivery_id) WHERE i.kind = 'issue.close'", at: 'c.yaml:1:1' })).resolves.toBeUndefined();
    } finally {
      db.close();
    }
  });
});

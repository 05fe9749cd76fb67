import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../core/effects.js';
import type { DeliveryInput } from '../../replayer/engine/delivery.js';
import { NO_RECORDINGS, recordedReads, type RecordedExchange } from '../../replayer/engine/recordings.js';
import { runDelivery, type EngineOptions, type FlowRun } from '../../replayer/engine/run.js';
import { compileFlow } from '../../replayer/flows/load.js';
import { formatProblem, type CompiledFlow, type FlowProblem } from '../../replayer/flows/model.js';
import { createOpRegistry } from '../../replayer/ops/registry.js';
import { encodeBlocks } from '../../replayer/output/ndjson.js';

const ops = createOpRegistry();

function flow(text: string): CompiledFlow {
  const problems: FlowProblem[] = [];
  const f = compileFlow(text, 'test.yaml', ops, problems);
  if (!f) throw new Error(problems.map(formatProblem).join('\n'));
  return f;
}

function delivery(payload: Record<string, unknown>, over: Partial<DeliveryInput> = {}): DeliveryInput {
  return { delivery_id: 'd-1', source: 'github', event: 'issues', action: 'assigned', received_at_us: Date.UTC(2026, 10, 21, 12) * 1000, headers: {}, payload, repository: 'octo/repo', ...over };
}

const logged: string[] = [];
const opts = (over: Partial<EngineOptions> = {}): EngineOptions => ({ mode: 'dry-run', seed: 0, reads: NO_RECORDINGS, logger: { info: (_o, msg) => logged.push(msg) }, ...over });

async function runOne(f: CompiledFlow, d: DeliveryInput, o: Partial<EngineOptions> = {}): Promise<FlowRun> {
  const runs = await runDelivery([f], d, opts(o));
  expect(runs).toHaveLength(1);
  return runs[0]!;
}

const statuses = (run: FlowRun) => run.nodes.map((n) => `${n.node_id}${n.iteration === null ? '' : `[${n.iteration}]`}:${n.status}`);

const issuePayload = { issue: { number: 12, html_url: 'https://forge/octo/repo/issues/12' }, repository: { full_name: 'octo/repo' } };

describe('triggers', () => {
  const f = flow(`name: t
on:
  - { source: github, event: issues, action: [assigned, opened], if: 'delivery.payload.issue.number > 10' }
  - { event: push }
nodes:
  - { id: a, op: log, with: { message: hi } }
`);
  it('match on source, event, action and condition; any trigger will do', async () => {
    expect(await runDelivery([f], delivery(issuePayload), opts())).toHaveLength(1);
    expect(await runDelivery([f], delivery(issuePayload, { action: 'opened' }), opts())).toHaveLength(1);
    expect(await runDelivery([f], delivery(issuePayload, { source: 'gitea' }), opts())).toHaveLength(0);
    expect(await runDelivery([f], delivery(issuePayload, { action: 'closed' }), opts())).toHaveLength(0);
    expect(await runDelivery([f], delivery({ issue: { number: 3 } }), opts())).toHaveLength(0);
    expect(await runDelivery([f], delivery({}, { source: 'gitlab', event: 'push', action: null }), opts())).toHaveLength(1);
  });
  it('a condition that cannot be evaluated is a failed run, not a silent non-match', async () => {
    const run = await runOne(f, delivery({ pull_request: {} }));
    expect(run.status).toBe('failed');
    expect(run.error).toMatch(/^HS_ERR_EXPRESSION: trigger condition failed: No such key: issue/);
    expect(run.nodes).toEqual([]);
  });
});

describe('execution', () => {
  it('runs nodes in needs order, ties in file order, and passes outputs along', async () => {
    const f = flow(`name: t
on: { event: issues }
nodes:
  - id: ack
    op: set
    needs: [enqueue]
    with: { text: "queued \${{ nodes.enqueue.output.job_id }} for #\${{ nodes.issue.output.number }}" }
  - { id: issue, op: set, with: { number: "\${{ delivery.payload.issue.number }}" } }
  - { id: enqueue, op: agent.enqueue, with: { queue: triage, ref: "\${{ delivery.payload.issue.html_url }}" } }
`);
    const run = await runOne(f, delivery(issuePayload));
    expect(statuses(run)).toEqual(['issue:ok', 'enqueue:planned', 'ack:ok']);
    expect(run.nodes[0]!.output).toEqual({ number: 12 }); // a whole-string template keeps the number type
    expect(run.nodes[2]!.output).toEqual({ text: expect.stringMatching(/^queued job-[0-9a-f]{16} for #12$/) });
    expect(run.status).toBe('ok');
  });

  it('if: a false condition skips the node, and nodes that need it', async () => {
    const f = flow(`name: t
on: { event: issues }
nodes:
  - { id: a, op: set, if: 'delivery.payload.issue.number > 100', with: { x: 1 } }
  - { id: b, op: set, needs: a, with: { x: 2 } }
  - { id: c, op: set, with: { x: 3 } }
`);
    const run = await runOne(f, delivery(issuePayload));
    expect(statuses(run)).toEqual(['a:skipped', 'b:skipped', 'c:ok']);
    expect(run.status).toBe('ok');
  });

  it('foreach: one run per item with item and index, output is the list, an empty list skips', async () => {
    const f = flow(`name: t
on: { event: issues }
nodes:
  - id: each
    op: forge.issue.labels.remove
    foreach: delivery.payload.issue.labels.filter(l, l.name.startsWith("stale"))
    with: { repo: octo/repo, number: 12, label: "\${{ item.name }}" }
  - { id: after, op: set, needs: each, with: { n: "\${{ size(nodes.each.output) }}", i: "x" } }
`);
    const labels = [{ name: 'stale-1' }, { name: 'bug' }, { name: 'stale-2' }];
    const run = await runOne(f, delivery({ ...issuePayload, issue: { ...issuePayload.issue, labels } }));
    expect(statuses(run)).toEqual(['each[0]:planned', 'each[1]:planned', 'after:ok']);
    expect(run.nodes.slice(0, 2).map((n) => n.intent)).toEqual([
      { kind: 'issue.labels.remove', target: 'octo/repo#12', args: { label: 'stale-1' }, request: { upstream: 'github', method: 'DELETE', path: '/repos/octo/repo/issues/12/labels/stale-1', body: null } },
      { kind: 'issue.labels.remove', target: 'octo/repo#12', args: { label: 'stale-2' }, request: { upstream: 'github', method: 'DELETE', path: '/repos/octo/repo/issues/12/labels/stale-2', body: null } },
    ]);
    expect(run.nodes[2]!.output).toEqual({ n: 2, i: 'x' });
    const empty = await runOne(f, delivery({ ...issuePayload, issue: { ...issuePayload.issue, labels: [] } }));
    expect(statuses(empty)).toEqual(['each:skipped', 'after:skipped']);
  });

  it('on_error: stop fails the run and cancels the rest; continue blocks only what needs the node', async () => {
    const text = (onError: string) => `name: t
on: { event: issues }
nodes:
  - { id: boom, op: fail, on_error: ${onError}, with: { message: "no agent for #\${{ delivery.payload.issue.number }}" } }
  - { id: dependent, op: set, needs: boom, with: { x: 1 } }
  - { id: independent, op: set, with: { x: 2 } }
`;
    const stop = await runOne(flow(text('stop')), delivery(issuePayload));
    expect(statuses(stop)).toEqual(['boom:failed', 'dependent:cancelled', 'independent:cancelled']);
    expect(stop.status).toBe('failed');
    expect(stop.error).toBe('node boom: HS_ERR_NODE_FAILED: no agent for #12');
    const cont = await runOne(flow(text('continue')), delivery(issuePayload));
    expect(statuses(cont)).toEqual(['boom:failed', 'dependent:blocked', 'independent:ok']);
    expect(cont.status).toBe('incomplete');
    expect(cont.error).toBeNull();
  });

  it('an expression error at run time fails the node with its message', async () => {
    const f = flow(`name: t\non: { event: issues }\nnodes:\n  - { id: a, op: set, with: { x: "\${{ delivery.payload.nope.deeper }}" } }\n`);
    const run = await runOne(f, delivery(issuePayload));
    expect(run.nodes[0]).toMatchObject({ status: 'failed', error: expect.stringMatching(/^HS_ERR_EXPRESSION: No such key: nope/) });
  });

  it('arguments are validated once resolved', async () => {
    const f = flow(`name: t\non: { event: issues }\nnodes:\n  - { id: a, op: forge.issue.comment, with: { repo: octo/repo, number: "\${{ delivery.payload.issue.html_url }}", body: hi } }\n`);
    const run = await runOne(f, delivery(issuePayload));
    expect(run.nodes[0]).toMatchObject({ status: 'failed', error: 'HS_ERR_OP_ARGS: bad arguments for forge.issue.comment: number must be integer', intent: null });
  });
});

describe('reads', () => {
  const f = flow(`name: t
on: { event: issues }
nodes:
  - { id: issue, op: forge.issue.get, with: { repo: octo/repo, number: 12 } }
  - { id: ack, op: forge.issue.comment, needs: issue, with: { repo: octo/repo, number: 12, body: "title: \${{ nodes.issue.output.title }}" } }
`);
  const recorded = (status: number, body: unknown): RecordedExchange => ({ upstream: 'github', method: 'GET', path: '/repos/octo/repo/issues/12', response_status: status, response_body: JSON.stringify(body) });

  it('come from the recorded exchanges of the same delivery', async () => {
    const run = await runOne(f, delivery(issuePayload), { reads: recordedReads([recorded(200, { title: 'Broken' })]) });
    expect(statuses(run)).toEqual(['issue:ok', 'ack:planned']);
    expect(run.nodes[1]!.intent!.args).toEqual({ body: 'title: Broken' });
  });
  it('a read nobody recorded is no_recording, not a crash; the run is incomplete', async () => {
    const run = await runOne(f, delivery(issuePayload));
    expect(statuses(run)).toEqual(['issue:no_recording', 'ack:blocked']);
    expect(run.nodes[0]!.error).toMatch(/^HS_ERR_NO_RECORDING: /);
    expect(run.status).toBe('incomplete');
  });
  it('a recorded error response fails the read', async () => {
    const run = await runOne(f, delivery(issuePayload), { reads: recordedReads([recorded(404, { message: 'Not Found' })]) });
    expect(run.nodes[0]).toMatchObject({ status: 'failed', error: 'HS_ERR_UPSTREAM_ERROR: GET /repos/octo/repo/issues/12 answered 404' });
  });
  it("a dry-run mutation echoes the legacy handler's response to the same call", async () => {
    const g = flow(`name: t
on: { event: issues }
nodes:
  - { id: enqueue, op: agent.enqueue, with: { queue: triage, ref: x } }
  - { id: ack, op: set, with: { text: "queued as \${{ nodes.enqueue.output.job_id }}" } }
`);
    const echoes = recordedReads([{ upstream: 'agents', method: 'POST', path: '/jobs', response_status: 201, response_body: '{"job_id":"job-7"}' }]);
    const run = await runOne(g, delivery(issuePayload), { echoes });
    expect(run.nodes[1]!.output).toEqual({ text: 'queued as job-7' });
  });
});

describe('built-in ops produce the shared effect model', () => {
  const cases: [string, string, Record<string, unknown>, unknown][] = [
    ['forge.issue.comment', 'github', { body: 'hi' }, { kind: 'issue.comment', target: 'octo/repo#12', args: { body: 'hi' }, request: { upstream: 'github', method: 'POST', path: '/repos/octo/repo/issues/12/comments', body: { body: 'hi' } } }],
    ['forge.issue.labels.add', 'gitea', { labels: ['a', 'b'] }, { kind: 'issue.labels.add', target: 'octo/repo#12', args: { labels: ['a', 'b'] }, request: { upstream: 'gitea', method: 'POST', path: '/repos/octo/repo/issues/12/labels', body: { labels: ['a', 'b'] } } }],
    ['forge.issue.labels.remove', 'github', { label: 'needs triage' }, { kind: 'issue.labels.remove', target: 'octo/repo#12', args: { label: 'needs triage' }, request: { upstream: 'github', method: 'DELETE', path: '/repos/octo/repo/issues/12/labels/needs%20triage', body: null } }],
    ['forge.issue.assign', 'github', { assignees: ['al'] }, { kind: 'issue.assign', target: 'octo/repo#12', args: { assignees: ['al'] }, request: { upstream: 'github', method: 'POST', path: '/repos/octo/repo/issues/12/assignees', body: { assignees: ['al'] } } }],
    ['forge.issue.unassign', 'github', { assignees: ['al'] }, { kind: 'issue.unassign', target: 'octo/repo#12', args: { assignees: ['al'] }, request: { upstream: 'github', method: 'DELETE', path: '/repos/octo/repo/issues/12/assignees', body: { assignees: ['al'] } } }],
    ['forge.issue.close', 'github', {}, { kind: 'issue.close', target: 'octo/repo#12', args: {}, request: { upstream: 'github', method: 'PATCH', path: '/repos/octo/repo/issues/12', body: { state: 'closed' } } }],
    ['forge.issue.reopen', 'forgejo', {}, { kind: 'issue.reopen', target: 'octo/repo#12', args: {}, request: { upstream: 'forgejo', method: 'PATCH', path: '/repos/octo/repo/issues/12', body: { state: 'open' } } }],
    ['forge.pr.review.request', 'github', { reviewers: ['rev'] }, { kind: 'pr.review.request', target: 'octo/repo#12', args: { reviewers: ['rev'] }, request: { upstream: 'github', method: 'POST', path: '/repos/octo/repo/pulls/12/requested_reviewers', body: { reviewers: ['rev'] } } }],
    ['forge.pr.merge', 'github', { method: 'squash' }, { kind: 'pr.merge', target: 'octo/repo#12', args: { method: 'squash' }, request: { upstream: 'github', method: 'PUT', path: '/repos/octo/repo/pulls/12/merge', body: { merge_method: 'squash' } } }],
    ['forge.pr.merge', 'gitea', {}, { kind: 'pr.merge', target: 'octo/repo#12', args: { method: 'merge' }, request: { upstream: 'gitea', method: 'POST', path: '/repos/octo/repo/pulls/12/merge', body: { Do: 'merge' } } }],
  ];
  it.each(cases)('%s (%s)', async (op, source, args, intent) => {
    const f = flow(`name: t\non: { event: issues }\nnodes:\n  - id: n\n    op: ${op}\n    with: ${JSON.stringify({ repo: 'octo/repo', number: 12, ...args })}\n`);
    const run = await runOne(f, delivery(issuePayload, { source }));
    expect(run.nodes[0]).toMatchObject({ status: 'planned', effect_class: 'mutate', intent });
  });
  it('forge.issue.create, agent.enqueue, http.request', async () => {
    const f = flow(`name: t
on: { event: issues }
nodes:
  - { id: create, op: forge.issue.create, with: { repo: octo/repo, title: Flaky, labels: [ci] } }
  - { id: job, op: agent.enqueue, with: { queue: triage, ref: r, number: 12, data: { priority: high } } }
  - { id: hook, op: http.request, with: { upstream: chat, method: POST, path: /notify?x=1, body: { text: hi } } }
  - { id: get, op: http.request, with: { upstream: chat, method: GET, path: /status } }
  - { id: log, op: log, with: { message: done } }
`);
    const run = await runOne(f, delivery(issuePayload), { reads: recordedReads([{ upstream: 'chat', method: 'GET', path: '/status', response_status: 200, response_body: '{"up":true}' }]) });
    expect(run.nodes.map((n) => [n.effect_class, n.status, n.intent && { kind: n.intent.kind, target: n.intent.target, args: n.intent.args }])).toEqual([
      ['mutate', 'planned', { kind: 'issue.create', target: 'octo/repo', args: { title: 'Flaky', labels: ['ci'] } }],
      ['mutate', 'planned', { kind: 'agent.enqueue', target: 'queue:triage', args: { queue: 'triage', ref: 'r', number: 12, priority: 'high' } }],
      ['mutate', 'planned', { kind: 'http.POST', target: 'chat:/notify', args: { text: 'hi' } }],
      ['read', 'ok', null],
      ['pure', 'ok', null],
    ]);
    expect(run.nodes[3]!.output).toEqual({ up: true });
    expect(logged).toContain('done');
  });
});

describe('determinism', () => {
  const f = flow(`name: t
on: { event: issues }
nodes:
  - { id: job, op: agent.enqueue, with: { queue: q, ref: "p=\${{ delivery.payload }}" } }
  - { id: ack, op: forge.issue.comment, with: { repo: octo/repo, number: 1, body: "\${{ nodes.job.output.job_id }} at \${{ now }}" } }
`);
  const json = fc.jsonValue({ maxDepth: 3 });
  it('any delivery, replayed twice, gives byte-identical runs (durations aside)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ minLength: 1 }), fc.dictionary(fc.string(), json), fc.integer({ min: 0, max: 4e12 }), async (id, payload, ms) => {
        const d = delivery(payload, { delivery_id: id, received_at_us: ms * 1000 });
        const strip = (runs: FlowRun[]) => canonicalJson(runs.map((r) => ({ ...r, duration_us: 0, nodes: r.nodes.map((n) => ({ ...n, duration_us: 0 })) })));
        const a = strip(await runDelivery([f], d, opts()));
        const b = strip(await runDelivery([f], structuredClone(d), opts()));
        expect(a).toBe(b);
      }),
      { numRuns: 200 },
    );
  });
  it('the seed and the delivery id change synthetic ids; the clock is the delivery time', async () => {
    const d = delivery(issuePayload);
    const a = await runOne(f, d);
    const b = await runOne(f, d, { seed: 1 });
    const c = await runOne(f, { ...d, delivery_id: 'd-2' });
    expect(a.nodes[0]!.output).not.toEqual(b.nodes[0]!.output);
    expect(a.nodes[0]!.output).not.toEqual(c.nodes[0]!.output);
    expect(a.nodes[1]!.intent!.args.body).toMatch(/ at 2026-11-21T12:00:00(\.000)?Z$/);
    expect(a.started_at_us).toBe(d.received_at_us);
  });
});

describe('review fixes', () => {
  it('each flow reads the recordings from the start, whatever other flows read', async () => {
    const reader = (name: string) =>
      flow(`name: ${name}\non: { event: issues }\nnodes:\n  - { id: issue, op: forge.issue.get, with: { repo: octo/repo, number: 12 } }\n`);
    const reads = recordedReads([
      { upstream: 'github', method: 'GET', path: '/repos/octo/repo/issues/12', response_status: 200, response_body: '{"n":1}' },
      { upstream: 'github', method: 'GET', path: '/repos/octo/repo/issues/12', response_status: 200, response_body: '{"n":2}' },
    ]);
    const runs = await runDelivery([reader('a'), reader('b')], delivery(issuePayload), opts({ reads }));
    expect(runs.map((r) => r.nodes[0]!.output)).toEqual([{ n: 1 }, { n: 1 }]);
  });
  it('a recorded read that got no answer fails the node', async () => {
    const f = flow(`name: t\non: { event: issues }\nnodes:\n  - { id: issue, op: forge.issue.get, with: { repo: octo/repo, number: 12 } }\n`);
    const reads = recordedReads([{ upstream: 'github', method: 'GET', path: '/repos/octo/repo/issues/12', response_status: null, response_body: null }]);
    const run = await runOne(f, delivery(issuePayload), { reads });
    expect(run.nodes[0]).toMatchObject({ status: 'failed', error: 'HS_ERR_UPSTREAM_ERROR: GET /repos/octo/repo/issues/12 got no answer' });
  });
  it('a skipped http GET is still reported as a read; redeliveries get their own run id', async () => {
    const f = flow(`name: t\non: { event: issues }\nnodes:\n  - { id: get, op: http.request, if: 'false', with: { upstream: x, method: GET, path: /a } }\n`);
    const run = await runOne(f, delivery(issuePayload));
    expect(run.nodes[0]).toMatchObject({ status: 'skipped', effect_class: 'read' });
    const again = await runOne(f, delivery(issuePayload, { received_at_us: delivery(issuePayload).received_at_us + 1 }));
    expect(again.run_id).not.toBe(run.run_id);
  });
  it('agent.enqueue: data cannot override the queue the target names', async () => {
    const f = flow(`name: t\non: { event: issues }\nnodes:\n  - { id: j, op: agent.enqueue, with: { queue: triage, ref: r, data: { queue: other, extra: 1 } } }\n`);
    const run = await runOne(f, delivery(issuePayload));
    expect(run.nodes[0]!.intent).toMatchObject({ target: 'queue:triage', args: { queue: 'triage', ref: 'r', extra: 1 } });
  });
});

describe('replay output', () => {
  it('encodes text blocks into one UTF-8 buffer whose ends slice each block back out, whatever its characters', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'grapheme' }), { maxLength: 12 }), (blocks) => {
        const { bytes, ends } = encodeBlocks(blocks);
        expect(ends).toHaveLength(blocks.length);
        const back = blocks.map((_, i) => new TextDecoder().decode(bytes.subarray(i === 0 ? 0 : ends[i - 1], ends[i])));
        expect(back).toEqual(blocks);
        expect(bytes.byteLength).toBe(Buffer.byteLength(blocks.join('')));
      }),
    );
  });
});

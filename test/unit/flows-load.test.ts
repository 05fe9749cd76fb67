import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileFlow, loadFlowsDir } from '../../replayer/flows/load.js';
import { formatProblem, type FlowProblem } from '../../replayer/flows/model.js';
import { createOpRegistry } from '../../replayer/ops/registry.js';
import { tempDir } from '../helpers.js';

const ops = createOpRegistry();

function problemsOf(text: string): FlowProblem[] {
  const problems: FlowProblem[] = [];
  const flow = compileFlow(text, 'flows/x.yaml', ops, problems);
  if (problems.length === 0) expect(flow).not.toBeNull();
  else expect(flow).toBeNull();
  return problems;
}

const lines = (text: string) => problemsOf(text).map(formatProblem);

const HEAD = `name: x
on: { event: issues }
nodes:
`;

describe('flow loading reports each problem with file:line:col and a code', () => {
  it('accepts a valid flow and orders nodes by needs, then file order', () => {
    const problems: FlowProblem[] = [];
    const flow = compileFlow(
      `${HEAD}  - id: ack
    op: log
    needs: [enqueue]
    with: { message: "queued \${{ nodes.enqueue.output.job_id }}" }
  - id: enqueue
    op: agent.enqueue
    with: { queue: triage, ref: "\${{ delivery.payload.issue.html_url }}" }
`,
      'f.yaml',
      ops,
      problems,
    );
    expect(problems).toEqual([]);
    expect(flow!.nodes.map((n) => n.id)).toEqual(['enqueue', 'ack']);
    expect(flow!.version).toMatch(/^[0-9a-f]{12}$/);
  });

  it('YAML syntax errors', () => {
    expect(lines(`name: x\non: [\nnodes: {`)).toEqual([
      'flows/x.yaml:3:1: HS_ERR_FLOW_YAML: Flow sequence in block collection must be sufficiently indented and end with a ]',
      'flows/x.yaml:3:9: HS_ERR_FLOW_YAML: Flow map in block collection must be sufficiently indented and end with a }',
    ]);
    const dup = lines(`name: x\nname: y\non: {}\nnodes: []\n`);
    expect(dup[0]).toMatch(/^flows\/x\.yaml:2:1: HS_ERR_FLOW_YAML: .*unique/i);
  });

  it('unknown keys and missing fields in the flow shape', () => {
    expect(lines(`name: x\non: { event: issues }\nnodez: []\n`)).toEqual([
      'flows/x.yaml:1:1: HS_ERR_FLOW_INVALID: missing "nodes"',
      'flows/x.yaml:3:1: HS_ERR_FLOW_INVALID: unknown key "nodez"',
    ]);
    expect(lines(`${HEAD}  - id: a\n    op: log\n    with: { message: hi }\n    retries: 3\n`)).toEqual(['flows/x.yaml:7:5: HS_ERR_FLOW_INVALID: unknown key "retries" in nodes.0']);
  });

  it('unknown op, with a suggestion', () => {
    expect(lines(`${HEAD}  - id: a\n    op: forge.issue.coment\n    with: { repo: a/b, number: 1, body: hi }\n`)).toEqual([
      'flows/x.yaml:5:9: HS_ERR_UNKNOWN_OP: unknown op "forge.issue.coment" (did you mean "forge.issue.comment"?); `hookshadow flows ops` lists them',
    ]);
  });

  it('bad arguments for an op, checked against its schema (templates stand for any value)', () => {
    const out = lines(`${HEAD}  - id: a
    op: forge.issue.comment
    with: { repo: a/b, number: "one", bdy: hi }
  - id: b
    op: forge.issue.comment
    with: { repo: "\${{ delivery.payload.repository.full_name }}", number: "\${{ delivery.payload.issue.number }}", body: ok }
`);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatch(/^flows\/x\.yaml:6:11: HS_ERR_OP_ARGS: bad arguments for forge\.issue\.comment: /);
    expect(out[0]).toContain('missing argument "body"');
    expect(out[0]).toContain('unknown argument "bdy"');
    expect(out[0]).toContain('number must be integer');
  });

  it('unknown node in needs', () => {
    expect(lines(`${HEAD}  - id: issue\n    op: log\n    with: { message: a }\n  - id: b\n    op: log\n    needs: [isue]\n    with: { message: b }\n`)).toEqual([
      'flows/x.yaml:9:13: HS_ERR_UNKNOWN_NODE: needs unknown node "isue" (did you mean "issue"?)',
    ]);
  });

  it('cycles, naming the nodes on the cycle', () => {
    expect(lines(`${HEAD}  - id: a\n    op: log\n    needs: [b]\n    with: { message: a }\n  - id: b\n    op: log\n    needs: a\n    with: { message: b }\n`)).toEqual([
      'flows/x.yaml:6:12: HS_ERR_FLOW_CYCLE: nodes form a cycle: a → b → a',
    ]);
  });

  it('expression syntax errors point into the expression', () => {
    expect(lines(`${HEAD}  - id: a\n    op: log\n    if: delivery.payload.(\n    with: { message: a }\n`)).toEqual([
      expect.stringMatching(/^flows\/x\.yaml:6:26: HS_ERR_EXPRESSION: syntax error in `delivery\.payload\.\(`: /),
    ]);
    // Inside a template, the column is that of the bad token in the line.
    expect(lines(`${HEAD}  - id: a\n    op: log\n    with: { message: "hi \${{ delivery.( }}" }\n`)).toEqual([
      expect.stringMatching(/^flows\/x\.yaml:6:39: HS_ERR_EXPRESSION: /),
    ]);
    expect(lines(`${HEAD}  - id: a\n    op: log\n    if: 'delivery.payload.body.matches("x")'\n    with: { message: a }\n`)[0]).toMatch(/HS_ERR_EXPRESSION: .*re2/);
    expect(lines(`${HEAD}  - id: a\n    op: log\n    if: 'delivery.payload.body.re2("(")'\n    with: { message: a }\n`)[0]).toMatch(/HS_ERR_EXPRESSION: .*invalid RE2 pattern/);
    expect(lines(`${HEAD}  - id: a\n    op: log\n    if: 'nodez.a == 1'\n    with: { message: a }\n`)[0]).toMatch(/HS_ERR_EXPRESSION: invalid expression .*nodez/);
  });

  it('references to nodes that do not run before, or do not exist', () => {
    const out = lines(`${HEAD}  - id: ack
    op: log
    needs: [enqueue]
    with: { message: "\${{ nodes.issue.output.title }}" }
  - id: enqueue
    op: log
    with: { message: "\${{ nodes.nope.output }}" }
  - id: issue
    op: log
    with: { message: x }
`);
    expect(out).toEqual([
      'flows/x.yaml:10:22: HS_ERR_UNKNOWN_NODE: `nodes.nope.output` reads nodes.nope, and there is no node "nope"',
      'flows/x.yaml:7:22: HS_ERR_NODE_REFERENCE: `nodes.issue.output.title` reads nodes.issue, which does not run before "ack"; add "issue" to its needs or move it up',
    ]);
    expect(lines(`name: x\non: { event: issues, if: 'nodes.a.output == 1' }\nnodes:\n  - id: a\n    op: log\n    with: { message: a }\n`)[0]).toMatch(
      /^flows\/x\.yaml:2:26: HS_ERR_NODE_REFERENCE: a trigger's condition runs before any node/,
    );
  });

  it('reports every problem in a file at once', () => {
    const out = lines(`${HEAD}  - id: a
    op: nope.op
  - id: b
    op: log
    needs: [zz]
    with: { message: a }
  - id: c
    op: log
    if: "1 +"
    with: { message: c }
`);
    expect(out.map((l) => l.split(': ')[1])).toEqual(['HS_ERR_UNKNOWN_OP', 'HS_ERR_UNKNOWN_NODE', 'HS_ERR_EXPRESSION']);
  });

  it('a directory: every file, duplicate flow names, an empty or missing directory', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'team'));
    const flow = (name: string) => `name: ${name}\non: { event: issues }\nnodes:\n  - id: a\n    op: log\n    with: { message: hi }\n`;
    await writeFile(join(dir, 'a.yaml'), flow('one'));
    await writeFile(join(dir, 'team', 'b.yml'), flow('one'));
    await writeFile(join(dir, 'c.yaml'), 'name: [');
    await writeFile(join(dir, 'notes.txt'), 'not a flow');
    const loaded = await loadFlowsDir(dir, ops);
    expect(loaded.flows.map((f) => f.name)).toEqual(['one']);
    expect(loaded.problems.map((p) => p.code).sort()).toEqual(['HS_ERR_FLOW_INVALID', 'HS_ERR_FLOW_YAML']);
    expect(loaded.problems.find((p) => p.code === 'HS_ERR_FLOW_INVALID')!.message).toContain('also used by');
    await expect(loadFlowsDir(join(dir, 'missing'), ops)).rejects.toMatchObject({ code: 'HS_ERR_FLOWS_INVALID' });
    const empty = await tempDir();
    await expect(loadFlowsDir(empty, ops)).rejects.toMatchObject({ code: 'HS_ERR_FLOWS_INVALID' });
  });

  it('the fixture flows load cleanly', async () => {
    const loaded = await loadFlowsDir('fixtures/flows', ops);
    expect(loaded.problems).toEqual([]);
    expect(loaded.flows.map((f) => f.name).sort()).toEqual(['assign-agent', 'request-review', 'retry-agent']);
  });
});

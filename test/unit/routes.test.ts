import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { parse } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { BUILTIN_ROUTE_FILES, compileRouteMaps, formatRouteProblem, loadRouteMaps, type LegacyCall, type MappedEffect, type RouteMaps, type RouteProblem } from '../../analyzer/routes.js';
import { httpEffect } from '../../core/effects.js';
import { HsError } from '../../core/errors.js';
import { PACKAGE_ROOT } from '../../core/version.js';
import { BUILTIN_OPS, createOpRegistry } from '../../replayer/ops/registry.js';
import type { OpContext } from '../../replayer/ops/types.js';
import { tempDir } from '../helpers.js';

let maps: RouteMaps;
beforeAll(async () => {
  maps = await loadRouteMaps();
});

const call = (upstream: string, method: string, path: string, body: unknown = null): LegacyCall => ({ upstream, method, path, body });

describe('the built-in maps turn every mutating op request back into its intent', () => {
  const ops = createOpRegistry();
  const ctx = (source: string): OpContext => ({ source, flow: 'triage', nodeId: 'n1', syntheticId: (p) => `${p}-0000000000000000`, nowUs: 0 });
  const issue = '/repos/{owner}/{repo}/issues/{number}';

  /** Sample arguments per op, with the route the call must match (per upstream where the ops differ). */
  const SAMPLES: Record<string, { args: Record<string, unknown>; route: string | null | Record<string, string> }[]> = {
    'forge.issue.create': [
      { args: { repo: 'octo/widgets', title: 'Flaky test' }, route: 'POST /repos/{owner}/{repo}/issues' },
      { args: { repo: 'octo/widgets', title: 'Flaky test', body: '', labels: [] }, route: 'POST /repos/{owner}/{repo}/issues' },
      { args: { repo: 'octo/widgets', title: 'Flaky test', body: 'Seen twice.', labels: ['bug', 'needs triage'] }, route: 'POST /repos/{owner}/{repo}/issues' },
    ],
    'forge.issue.comment': [{ args: { repo: 'octo/widgets', number: 12, body: 'On it — queued.' }, route: `POST ${issue}/comments` }],
    'forge.issue.labels.add': [{ args: { repo: 'octo/widgets', number: 12, labels: ['bug', 'needs triage'] }, route: `POST ${issue}/labels` }],
    'forge.issue.labels.remove': [
      { args: { repo: 'octo/widgets', number: 12, label: 'bug' }, route: `DELETE ${issue}/labels/{label}` },
      { args: { repo: 'octo/widgets', number: 12, label: 'needs triage' }, route: `DELETE ${issue}/labels/{label}` },
      { args: { repo: 'octo/widgets', number: 12, label: 'area/ci 100%?' }, route: `DELETE ${issue}/labels/{label}` },
    ],
    'forge.issue.assign': [{ args: { repo: 'octo/widgets', number: 12, assignees: ['alice', 'bob'] }, route: `POST ${issue}/assignees` }],
    'forge.issue.unassign': [{ args: { repo: 'octo/widgets', number: 12, assignees: ['bob'] }, route: `DELETE ${issue}/assignees` }],
    'forge.issue.close': [{ args: { repo: 'octo/widgets', number: 12 }, route: `PATCH ${issue}` }],
    'forge.issue.reopen': [{ args: { repo: 'octo/widgets', number: 12 }, route: `PATCH ${issue}` }],
    'forge.pr.review.request': [{ args: { repo: 'octo/widgets', number: 7, reviewers: ['carol'] }, route: 'POST /repos/{owner}/{repo}/pulls/{number}/requested_reviewers' }],
    'forge.pr.merge': ['merge', 'squash', 'rebase', undefined].map((method) => ({
      args: { repo: 'octo/widgets', number: 7, ...(method ? { method } : {}) },
      route: { github: 'PUT /repos/{owner}/{repo}/pulls/{number}/merge', gitea: 'POST /repos/{owner}/{repo}/pulls/{number}/merge', forgejo: 'POST /repos/{owner}/{repo}/pulls/{number}/merge' },
    })),
    'agent.enqueue': [
      { args: { queue: 'triage', ref: 'https://github.com/octo/widgets/issues/12' }, route: 'POST /jobs' },
      { args: { queue: 'triage', ref: 'r', repo: 'octo/widgets', number: 12, data: { priority: 2, queue: 'ignored' } }, route: 'POST /jobs' },
    ],
    // Unmapped calls compare as http.<METHOD> on both sides.
    'http.request': [
      { args: { upstream: 'slack', method: 'POST', path: '/api/chat.postMessage?pretty=1', body: { text: 'hi' } }, route: null },
      { args: { upstream: 'github', method: 'DELETE', path: '/repos/octo/widgets/issues/12/lock' }, route: null },
    ],
  };

  const mutating = BUILTIN_OPS.filter((op) => op.intent);

  it('has samples for every mutating built-in op', () => {
    expect(Object.keys(SAMPLES).sort()).toEqual(mutating.map((op) => op.name).sort());
  });

  for (const source of ['github', 'gitea', 'forgejo']) {
    const cases = mutating.flatMap((op) => (SAMPLES[op.name] ?? []).map((s, i) => ({ name: `${op.name} #${i + 1}`, op, ...s })));
    it.each(cases)(`on ${source}: $name`, ({ op, args, route }) => {
      expect(ops.get(op.name)!.validate(args), 'sample args must be valid').toBe(true);
      const request = op.request!(args, ctx(source));
      const expected = route === null || typeof route === 'string' ? route : route[source]!;
      expect(maps.map(request)).toStrictEqual({ ...op.intent!(args, ctx(source)), route: expected });
    });
  }
});

/** Every route of a shipped map, as `route → kind` (several routes share a pattern and differ by `when`). */
function routesOf(file: string): string[] {
  const doc = parse(readFileSync(file, 'utf8')) as { routes: { route: string; kind: string }[] };
  return doc.routes.map((r) => `${r.route} → ${r.kind}`);
}

const PER_ROUTE: { upstream: 'github' | 'gitea'; call: LegacyCall; expected: MappedEffect }[] = [];
for (const upstream of ['github', 'gitea'] as const) {
  const t = 'octo/widgets#12';
  const r = (route: string, kind: string, args: Record<string, unknown>, target = t) => ({ kind, target, args, route });
  const add = (c: LegacyCall, expected: MappedEffect) => PER_ROUTE.push({ upstream, call: c, expected });
  const base = '/repos/octo/widgets';
  add(call(upstream, 'POST', `${base}/issues`, { title: 'T', body: 'B', labels: ['bug'], assignees: ['x'] }), r('POST /repos/{owner}/{repo}/issues', 'issue.create', { title: 'T', body: 'B', labels: ['bug'] }, 'octo/widgets'));
  add(call(upstream, 'POST', `${base}/issues/12/comments`, { body: 'hello' }), r('POST /repos/{owner}/{repo}/issues/{number}/comments', 'issue.comment', { body: 'hello' }));
  add(call(upstream, 'POST', `${base}/issues/12/labels`, { labels: ['bug'] }), r('POST /repos/{owner}/{repo}/issues/{number}/labels', 'issue.labels.add', { labels: ['bug'] }));
  add(call(upstream, 'DELETE', `${base}/issues/12/labels/good%20first%20issue`), r('DELETE /repos/{owner}/{repo}/issues/{number}/labels/{label}', 'issue.labels.remove', { label: 'good first issue' }));
  add(call(upstream, 'POST', `${base}/issues/12/assignees`, { assignees: ['alice'] }), r('POST /repos/{owner}/{repo}/issues/{number}/assignees', 'issue.assign', { assignees: ['alice'] }));
  add(call(upstream, 'DELETE', `${base}/issues/12/assignees`, { assignees: ['alice'] }), r('DELETE /repos/{owner}/{repo}/issues/{number}/assignees', 'issue.unassign', { assignees: ['alice'] }));
  add(call(upstream, 'PATCH', `${base}/issues/12`, { state: 'closed', state_reason: 'completed' }), r('PATCH /repos/{owner}/{repo}/issues/{number}', 'issue.close', {}));
  add(call(upstream, 'PATCH', `${base}/issues/12`, { state: 'open' }), r('PATCH /repos/{owner}/{repo}/issues/{number}', 'issue.reopen', {}));
  add(call(upstream, 'PATCH', `${base}/pulls/12`, { state: 'closed' }), r('PATCH /repos/{owner}/{repo}/pulls/{number}', 'issue.close', {}));
  add(call(upstream, 'PATCH', `${base}/pulls/12`, { state: 'open' }), r('PATCH /repos/{owner}/{repo}/pulls/{number}', 'issue.reopen', {}));
  add(call(upstream, 'POST', `${base}/pulls/12/requested_reviewers`, { reviewers: ['carol'], team_reviewers: [] }), r('POST /repos/{owner}/{repo}/pulls/{number}/requested_reviewers', 'pr.review.request', { reviewers: ['carol'] }));
  if (upstream === 'github') {
    add(call(upstream, 'PUT', `${base}/pulls/12/merge`, { merge_method: 'squash', commit_title: 'x' }), r('PUT /repos/{owner}/{repo}/pulls/{number}/merge', 'pr.merge', { method: 'squash' }));
  } else {
    add(call(upstream, 'POST', `${base}/pulls/12/merge`, { Do: 'rebase-merge', delete_branch_after_merge: true }), r('POST /repos/{owner}/{repo}/pulls/{number}/merge', 'pr.merge', { method: 'rebase-merge' }));
    add(call(upstream, 'PATCH', `${base}/issues/12`, { assignees: ['alice'], title: 'x' }), r('PATCH /repos/{owner}/{repo}/issues/{number}', 'issue.assign', { assignees: ['alice'] }));
  }
}

describe('each mapped GitHub and Gitea route', () => {
  it.each(PER_ROUTE.map((c) => ({ ...c, name: `${c.upstream}: ${c.expected.route} → ${c.expected.kind}` })))('$name', ({ call: c, expected }) => {
    expect(maps.map(c)).toStrictEqual(expected);
  });

  it.each([
    ['github', 'github.yaml'],
    ['gitea', 'gitea.yaml'],
  ])('the cases above cover every route of %s', (upstream, file) => {
    const covered = new Set(PER_ROUTE.filter((c) => c.upstream === upstream).map((c) => `${c.expected.route} → ${c.expected.kind}`));
    expect([...covered].sort()).toEqual(routesOf(BUILTIN_ROUTE_FILES.find((f) => f.endsWith(file))!).sort());
  });

  it('maps forgejo calls with the gitea routes', () => {
    expect(maps.map(call('forgejo', 'POST', '/repos/o/r/pulls/3/merge', { Do: 'squash' }))).toStrictEqual({
      kind: 'pr.merge',
      target: 'o/r#3',
      args: { method: 'squash' },
      route: 'POST /repos/{owner}/{repo}/pulls/{number}/merge',
    });
  });

  it('maps an agent job to agent.enqueue on its queue, the job as args', () => {
    const job = { queue: 'retry', ref: 'x', repo: 'o/r', number: 3, attempt: 2 };
    expect(maps.map(call('agents', 'POST', '/jobs', job))).toStrictEqual({ kind: 'agent.enqueue', target: 'queue:retry', args: job, route: 'POST /jobs' });
  });
});

describe('Gitea-native shapes', () => {
  it('reads a label removed by id as that id, a string', () => {
    expect(maps.map(call('gitea', 'DELETE', '/repos/o/r/issues/3/labels/7')).args).toStrictEqual({ label: '7' });
  });

  it('passes label ids in an issue creation through as numbers', () => {
    expect(maps.map(call('gitea', 'POST', '/repos/o/r/issues', { title: 'T', labels: [4, 9] })).args).toStrictEqual({ title: 'T', labels: [4, 9] });
  });

  it('reads an issue edit with assignees as issue.assign', () => {
    expect(maps.map(call('gitea', 'PATCH', '/repos/o/r/issues/3', { assignees: ['alice'] }))).toMatchObject({ kind: 'issue.assign', args: { assignees: ['alice'] } });
  });

  it('lets a state win over assignees in the same edit', () => {
    expect(maps.map(call('gitea', 'PATCH', '/repos/o/r/issues/3', { state: 'closed', assignees: ['alice'] }))).toMatchObject({ kind: 'issue.close', args: {} });
  });

  it('leaves an edit with neither state nor assignees unmapped', () => {
    expect(maps.map(call('gitea', 'PATCH', '/repos/o/r/issues/3', { title: 'New title' }))).toStrictEqual({
      kind: 'http.PATCH',
      target: 'gitea:/repos/o/r/issues/3',
      args: { title: 'New title' },
      route: null,
    });
  });

  it('defaults a merge without Do to merge', () => {
    expect(maps.map(call('gitea', 'POST', '/repos/o/r/pulls/3/merge', {})).args).toStrictEqual({ method: 'merge' });
  });

  it('does not take GitHub’s PUT merge on gitea', () => {
    expect(maps.map(call('gitea', 'PUT', '/repos/o/r/pulls/3/merge', { merge_method: 'squash' })).route).toBeNull();
  });
});

describe('calls no route matches become http effects', () => {
  it('on an upstream without a map', () => {
    expect(maps.map(call('slack', 'POST', '/api/chat.postMessage?x=1', { text: 'hi' }))).toStrictEqual({ ...httpEffect('slack', 'POST', '/api/chat.postMessage?x=1', { text: 'hi' }), route: null });
  });

  it('on a path no route names', () => {
    expect(maps.map(call('github', 'POST', '/repos/o/r/issues/3/reactions', { content: '+1' }))).toStrictEqual({
      kind: 'http.POST',
      target: 'github:/repos/o/r/issues/3/reactions',
      args: { content: '+1' },
      route: null,
    });
  });

  it('when a required arg is absent from the body', () => {
    expect(maps.map(call('github', 'POST', '/repos/o/r/issues/3/comments', { text: 'hi' })).route).toBeNull();
  });

  it('when the body is not JSON', () => {
    expect(maps.map(call('github', 'POST', '/repos/o/r/issues/3/comments', 'not json'))).toStrictEqual({
      kind: 'http.POST',
      target: 'github:/repos/o/r/issues/3/comments',
      args: { body: 'not json' },
      route: null,
    });
  });

  it('when a path parameter is malformed percent-encoding', () => {
    expect(maps.map(call('github', 'DELETE', '/repos/o/r/issues/3/labels/%E0%A4%A')).route).toBeNull();
  });

  it('when the path has a trailing slash', () => {
    expect(maps.map(call('agents', 'POST', '/jobs/', { queue: 'q', ref: 'r' })).route).toBeNull();
  });
});

describe('matching', () => {
  it('ignores the query string', () => {
    expect(maps.map(call('github', 'POST', '/repos/o/r/issues/3/comments?per_page=1', { body: 'x' }))).toMatchObject({ kind: 'issue.comment', target: 'o/r#3' });
  });

  it('accepts a lower-case method', () => {
    expect(maps.map(call('github', 'post', '/repos/o/r/issues/3/comments', { body: 'x' })).kind).toBe('issue.comment');
  });

  it('decodes path parameters used in the target', () => {
    expect(maps.map(call('github', 'POST', '/repos/my%2Dorg/r/issues/3/comments', { body: 'x' })).target).toBe('my-org/r#3');
  });
});

describe('users’ route maps', () => {
  async function userFile(text: string, name = 'routes.yaml'): Promise<string> {
    const file = join(await tempDir(), name);
    await writeFile(file, text);
    return file;
  }

  it('lists the built-in files, then the user’s', async () => {
    const file = await userFile('api: github\nupstreams: [ghe]\n');
    expect((await loadRouteMaps([file])).files).toEqual([...BUILTIN_ROUTE_FILES, file]);
  });

  it('binds another upstream to a built-in api', async () => {
    const user = await loadRouteMaps([await userFile('api: github\nupstreams: [ghe]\n')]);
    expect(user.map(call('ghe', 'PUT', '/repos/o/r/pulls/3/merge', null))).toStrictEqual({
      kind: 'pr.merge',
      target: 'o/r#3',
      args: { method: 'merge' },
      route: 'PUT /repos/{owner}/{repo}/pulls/{number}/merge',
    });
    expect(user.map(call('github', 'POST', '/repos/o/r/issues/3/comments', { body: 'x' })).kind).toBe('issue.comment');
  });

  it('tries the user’s routes before the built-in ones', async () => {
    const file = await userFile(`api: github
routes:
  - route: POST /repos/{owner}/{repo}/issues/{number}/comments
    when: { body.body: "/retry" }
    kind: agent.retry
    target: "{owner}/{repo}#{number}"
    args: {}
`);
    const user = await loadRouteMaps([file]);
    expect(user.map(call('github', 'POST', '/repos/o/r/issues/3/comments', { body: '/retry' })).kind).toBe('agent.retry');
    expect(user.map(call('github', 'POST', '/repos/o/r/issues/3/comments', { body: 'thanks' })).kind).toBe('issue.comment');
  });

  it('binds a new api to the upstream of its own name by default', async () => {
    const user = await loadRouteMaps([
      await userFile(`api: slack
routes:
  - route: POST /api/chat.postMessage
    kind: chat.post
    target: "slack:{body.channel}"
    args: { text: body.text, thread: body.thread_ts?, unfurl: { from: body.unfurl_links, default: false } }
`),
    ]);
    expect(user.map(call('slack', 'POST', '/api/chat.postMessage', { channel: 'C1', text: 'hi' }))).toStrictEqual({
      kind: 'chat.post',
      target: 'slack:C1',
      args: { text: 'hi', unfurl: false },
      route: 'POST /api/chat.postMessage',
    });
  });

  it('reads only a body’s own fields', async () => {
    const user = await loadRouteMaps([await userFile('api: x\nroutes:\n  - { route: POST /a, kind: a, target: x, args: { c: body.constructor? } }\n')]);
    expect(user.map(call('x', 'POST', '/a', {})).args).toStrictEqual({});
  });

  it('refuses a binding to an api no map has routes for', async () => {
    const file = await userFile('api: gitlab\nupstreams: [gl]\n');
    await expect(loadRouteMaps([file])).rejects.toThrow(`${file}:1:6: no route map has routes for api "gitlab"; bind upstreams to a built-in api (github, gitea, agents) or add routes`);
  });

  it('reports a file it cannot read', async () => {
    const missing = join(await tempDir(), 'nope.yaml');
    await expect(loadRouteMaps([missing])).rejects.toThrow(`${missing}:1:1: cannot read the route map: ENOENT`);
  });
});

describe('loading reports every problem at once, each as file:line:col', () => {
  function problems(...texts: string[]): string[] {
    try {
      compileRouteMaps(texts.map((text, i) => ({ file: `r${i + 1}.yaml`, text, builtin: false })));
    } catch (err) {
      expect(err).toBeInstanceOf(HsError);
      expect((err as HsError).code).toBe('HS_ERR_ROUTES_INVALID');
      expect((err as HsError).exitCode).toBe(2);
      return ((err as HsError).details!.problems as RouteProblem[]).map(formatRouteProblem);
    }
    throw new Error('expected HS_ERR_ROUTES_INVALID');
  }
  const ROUTE = (lines: string) => `api: x\nroutes:\n  - route: POST /a/{id}\n    kind: a\n    target: "{id}"\n${lines}`;

  it('accepts a valid map', () => {
    expect(() => compileRouteMaps([{ file: 'r.yaml', text: ROUTE('    args: { id: path.id }\n'), builtin: false }])).not.toThrow();
  });

  it('YAML syntax and duplicate keys', () => {
    expect(problems('api: x\nroutes: [\n', 'api: x\napi: y\n')).toEqual([
      'r1.yaml:3:1: Flow sequence in block collection must be sufficiently indented and end with a ]',
      'r2.yaml:2:1: Map keys must be unique',
    ]);
  });

  it('the shape of the file', () => {
    expect(problems('- api: x\n', 'apii: x\nupstreams: github\nroutes: {}\n', 'api: "git hub"\nupstreams: [ok, 3]\n')).toEqual([
      'r1.yaml:1:1: a route map must be a mapping with api, upstreams and routes',
      'r2.yaml:1:1: unknown key "apii" in a route map (allowed: api, upstreams, routes)',
      'r2.yaml:1:1: missing "api" (the name of the API the routes describe, e.g. github)',
      'r2.yaml:2:12: upstreams must be a non-empty list of upstream names',
      'r2.yaml:3:9: routes must be a list of routes',
      'r3.yaml:1:6: api "git hub" is not a name (letters, digits, _ and -)',
      'r3.yaml:2:17: an upstream must be a non-empty string',
    ]);
  });

  it('unknown and missing keys in a route', () => {
    expect(problems('api: x\nroutes:\n  - route: POST /a\n    kinds: a\n  - 3\n')).toEqual([
      'r1.yaml:4:5: unknown key "kinds" in a route (allowed: route, when, kind, target, args)',
      'r1.yaml:3:5: missing "kind" in a route',
      'r1.yaml:3:5: missing "target" in a route',
      'r1.yaml:5:5: a route must be a mapping with route, kind, target and args',
    ]);
  });

  it('bad route patterns', () => {
    const route = (pattern: string) => `api: x\nroutes:\n  - { route: "${pattern}", kind: a, target: x }\n`;
    expect(problems(route('post /a'), route('POST a'), route('POST /a/v{n}'), route('POST /a/{n}/{n}'), route('POST /a?x=1'), route('POST /a//b'), route('POST /a/{1x}'))).toEqual([
      'r1.yaml:3:14: route method "post" is not one of GET, HEAD, OPTIONS, POST, PUT, PATCH, DELETE',
      'r2.yaml:3:14: route "POST a" is not METHOD /path, e.g. POST /repos/{owner}/{repo}/issues',
      'r3.yaml:3:14: route segment "v{n}" must be a literal or one whole {param}',
      'r4.yaml:3:14: route parameter {n} appears twice',
      'r5.yaml:3:14: route "POST /a?x=1" has a query string or fragment; routes match the path only (the query is ignored)',
      'r6.yaml:3:14: route segment "" must be a literal or one whole {param}',
      'r7.yaml:3:14: route parameter {1x} is not a name (letters, digits, _)',
    ]);
  });

  it('targets naming unknown parameters or with stray braces', () => {
    expect(problems(ROUTE('    args: {}\n').replace('"{id}"', '"{owner}/{id}"'), ROUTE('').replace('"{id}"', '"{id}}"'), ROUTE('').replace('"{id}"', '"{body..x}"'))).toEqual([
      'r1.yaml:5:13: target names {owner}, which is not a parameter of the route (it has {id})',
      'r2.yaml:5:13: target "{id}}" has an unmatched brace; placeholders are {param} or {body.field}',
      'r3.yaml:5:13: "body..x" is not a source: use body, body.<field>[.<field>…] or path.<param>',
    ]);
  });

  it('bad sources in args and when', () => {
    expect(
      problems(
        ROUTE('    args: { a: path.nope, b: query.x, c: body.a..b, d: path.id.x, e: 3, f: { from: body.x }, g: { from: body.x, default: 1, else: 2 } }\n'),
        ROUTE('    when: { body.state: [closed], path.number: 1, nobody.x: 1 }\n'),
        ROUTE('    args: [a]\n'),
      ),
    ).toEqual([
      'r1.yaml:6:16: "path.nope" names no parameter of the route (it has {id})',
      'r1.yaml:6:30: "query.x" is not a source: use body, body.<field>[.<field>…] or path.<param>',
      'r1.yaml:6:42: "body.a..b" is not a source: use body, body.<field>[.<field>…] or path.<param>',
      'r1.yaml:6:56: "path.id.x" is not a source: use body, body.<field>[.<field>…] or path.<param>',
      'r1.yaml:6:70: arg "e" must be a source (use body, body.<field>[.<field>…] or path.<param>, with ? when optional) or { from, default }',
      'r1.yaml:6:76: arg "f" needs both from and default',
      'r1.yaml:6:125: unknown key "else" in arg "g" (allowed: from, default)',
      'r2.yaml:6:25: a when value must be a string, number, boolean or null',
      'r2.yaml:6:35: "path.number" names no parameter of the route (it has {id})',
      'r2.yaml:6:51: "nobody.x" is not a source: use body, body.<field>[.<field>…] or path.<param>',
      'r3.yaml:6:11: args must be a mapping of arg: source, or one source whose value is the args (e.g. body)',
    ]);
  });

  it('every file’s problems in one error', () => {
    expect(problems('api: x\nroutes: [{ route: GET /a, kind: a, target: "{b}" }]\n', 'api: y\nroutes: 3\n')).toEqual([
      'r1.yaml:2:44: target names {b}, which is not a parameter of the route (it has none)',
      'r2.yaml:2:9: routes must be a list of routes',
    ]);
  });
});

describe('the built-in files', () => {
  it('are absolute paths under the package root, found from the sources and from dist/', () => {
    expect(BUILTIN_ROUTE_FILES.map((f) => f.slice(PACKAGE_ROOT.length))).toEqual(['analyzer/routes/github.yaml', 'analyzer/routes/gitea.yaml', 'analyzer/routes/agents.yaml']);
    for (const f of BUILTIN_ROUTE_FILES) expect(isAbsolute(f)).toBe(true);
  });
});

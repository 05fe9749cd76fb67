import { issueTarget } from '../../core/effects.js';
import type { ArgsSchema, OpContext, OpDefinition } from './types.js';

/**
 * Forge ops for the GitHub REST API and the Gitea/Forgejo API v1. Both use the same
 * paths relative to their base URL (`https://api.github.com`, `https://gitea/api/v1`);
 * where they differ (merge: PUT on GitHub, POST on Gitea) the op says so. The upstream
 * is the delivery's source unless `forge:` names one.
 */

export const FORGES = ['github', 'gitea', 'forgejo'] as const;

interface IssueArgs {
  repo: string;
  number: number;
  forge?: string;
}

const repo = { type: 'string', pattern: '^[^/\\s]+/[^/\\s]+$', description: 'owner/name' };
const number = { type: 'integer', minimum: 1 };
const forge = { type: 'string', description: 'upstream to call; defaults to the delivery source' };
const logins = { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 };

function schema(extra: Record<string, unknown> = {}, required: string[] = []): ArgsSchema {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['repo', 'number', ...required],
    properties: { repo, number, forge, ...extra },
  };
}

const upstreamOf = (args: { forge?: string }, ctx: OpContext) => args.forge ?? ctx.source;
const issuePath = (a: IssueArgs, tail = '') => `/repos/${a.repo}/issues/${a.number}${tail}`;

/** A mutating issue/PR op: one request, one effect; the synthetic output echoes what the forge would answer. */
function mutation<A extends IssueArgs>(def: {
  name: string;
  description: string;
  kind: string;
  args: ArgsSchema;
  method: (ctx: OpContext, args: A) => string;
  path: (a: A) => string;
  body: (a: A, ctx: OpContext) => unknown;
  effectArgs: (a: A) => Record<string, unknown>;
  synthetic?: (a: A, ctx: OpContext) => unknown;
}): OpDefinition<A> {
  return {
    name: def.name,
    description: def.description,
    effectClass: 'mutate',
    capability: 'forge',
    args: def.args,
    request: (a, ctx) => ({ upstream: upstreamOf(a, ctx), method: def.method(ctx, a), path: def.path(a), body: def.body(a, ctx) }),
    intent: (a) => ({ kind: def.kind, target: issueTarget(a.repo, a.number), args: def.effectArgs(a) }),
    synthetic: def.synthetic ?? ((a) => ({ repo: a.repo, number: a.number, ...def.effectArgs(a) })),
  };
}

const read = (name: string, description: string, tail: 'issues' | 'pulls'): OpDefinition<IssueArgs> => ({
  name,
  description,
  effectClass: 'read',
  capability: 'forge',
  args: schema(),
  request: (a, ctx) => ({ upstream: upstreamOf(a, ctx), method: 'GET', path: `/repos/${a.repo}/${tail}/${a.number}`, body: null }),
});

const post = () => 'POST';

export const forgeOps: OpDefinition[] = [
  read('forge.issue.get', 'Fetch an issue (or a pull request, as an issue).', 'issues'),
  read('forge.pr.get', 'Fetch a pull request.', 'pulls'),
  {
    name: 'forge.issue.create',
    description: 'Open a new issue.',
    effectClass: 'mutate',
    capability: 'forge',
    args: {
      type: 'object',
      additionalProperties: false,
      required: ['repo', 'title'],
      properties: { repo, forge, title: { type: 'string', minLength: 1 }, body: { type: 'string' }, labels: { type: 'array', items: { type: 'string' } } },
    },
    request: (a: { repo: string; forge?: string; title: string; body?: string; labels?: string[] }, ctx) => ({
      upstream: upstreamOf(a, ctx),
      method: 'POST',
      path: `/repos/${a.repo}/issues`,
      body: { title: a.title, ...(a.body !== undefined ? { body: a.body } : {}), ...(a.labels ? { labels: a.labels } : {}) },
    }),
    intent: (a) => ({ kind: 'issue.create', target: a.repo, args: { title: a.title, ...(a.body !== undefined ? { body: a.body } : {}), ...(a.labels ? { labels: a.labels } : {}) } }),
    synthetic: (a, ctx) => ({ repo: a.repo, number: null, title: a.title, id: ctx.syntheticId('issue') }),
  },
  mutation<IssueArgs & { body: string }>({
    name: 'forge.issue.comment',
    description: 'Comment on an issue or pull request.',
    kind: 'issue.comment',
    args: schema({ body: { type: 'string', minLength: 1 } }, ['body']),
    method: post,
    path: (a) => issuePath(a, '/comments'),
    body: (a) => ({ body: a.body }),
    effectArgs: (a) => ({ body: a.body }),
    synthetic: (a, ctx) => ({ id: ctx.syntheticId('comment'), body: a.body }),
  }),
  mutation<IssueArgs & { labels: string[] }>({
    name: 'forge.issue.labels.add',
    description: 'Add labels to an issue or pull request.',
    kind: 'issue.labels.add',
    args: schema({ labels: logins }, ['labels']),
    method: post,
    path: (a) => issuePath(a, '/labels'),
    body: (a) => ({ labels: a.labels }),
    effectArgs: (a) => ({ labels: a.labels }),
  }),
  mutation<IssueArgs & { label: string }>({
    name: 'forge.issue.labels.remove',
    description: 'Remove one label from an issue or pull request.',
    kind: 'issue.labels.remove',
    args: schema({ label: { type: 'string', minLength: 1 } }, ['label']),
    method: () => 'DELETE',
    path: (a) => issuePath(a, `/labels/${encodeURIComponent(a.label)}`),
    body: () => null,
    effectArgs: (a) => ({ label: a.label }),
  }),
  mutation<IssueArgs & { assignees: string[] }>({
    name: 'forge.issue.assign',
    description: 'Add assignees to an issue or pull request.',
    kind: 'issue.assign',
    args: schema({ assignees: logins }, ['assignees']),
    method: post,
    path: (a) => issuePath(a, '/assignees'),
    body: (a) => ({ assignees: a.assignees }),
    effectArgs: (a) => ({ assignees: a.assignees }),
  }),
  mutation<IssueArgs & { assignees: string[] }>({
    name: 'forge.issue.unassign',
    description: 'Remove assignees from an issue or pull request.',
    kind: 'issue.unassign',
    args: schema({ assignees: logins }, ['assignees']),
    method: () => 'DELETE',
    path: (a) => issuePath(a, '/assignees'),
    body: (a) => ({ assignees: a.assignees }),
    effectArgs: (a) => ({ assignees: a.assignees }),
  }),
  mutation<IssueArgs>({
    name: 'forge.issue.close',
    description: 'Close an issue or pull request.',
    kind: 'issue.close',
    args: schema(),
    method: () => 'PATCH',
    path: (a) => issuePath(a),
    body: () => ({ state: 'closed' }),
    effectArgs: () => ({}),
  }),
  mutation<IssueArgs>({
    name: 'forge.issue.reopen',
    description: 'Reopen an issue or pull request.',
    kind: 'issue.reopen',
    args: schema(),
    method: () => 'PATCH',
    path: (a) => issuePath(a),
    body: () => ({ state: 'open' }),
    effectArgs: () => ({}),
  }),
  mutation<IssueArgs & { reviewers: string[] }>({
    name: 'forge.pr.review.request',
    description: 'Request reviews on a pull request.',
    kind: 'pr.review.request',
    args: schema({ reviewers: logins }, ['reviewers']),
    method: post,
    path: (a) => `/repos/${a.repo}/pulls/${a.number}/requested_reviewers`,
    body: (a) => ({ reviewers: a.reviewers }),
    effectArgs: (a) => ({ reviewers: a.reviewers }),
  }),
  mutation<IssueArgs & { method?: 'merge' | 'squash' | 'rebase' }>({
    name: 'forge.pr.merge',
    description: 'Merge a pull request.',
    kind: 'pr.merge',
    args: schema({ method: { enum: ['merge', 'squash', 'rebase'] } }),
    // GitHub merges with PUT, Gitea/Forgejo with POST; they also name the method field differently.
    method: (ctx, a) => (upstreamOf(a, ctx) === 'github' ? 'PUT' : 'POST'),
    path: (a) => `/repos/${a.repo}/pulls/${a.number}/merge`,
    body: (a, ctx) => (upstreamOf(a, ctx) === 'github' ? { merge_method: a.method ?? 'merge' } : { Do: a.method ?? 'merge' }),
    effectArgs: (a) => ({ method: a.method ?? 'merge' }),
    synthetic: (a) => ({ merged: true, repo: a.repo, number: a.number }),
  }),
];

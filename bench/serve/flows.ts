/**
 * The serve benchmark's flow set: 20 flows, each a variant of one of the three fixture flows
 * (fixtures/flows: assign-agent, request-review, retry-agent) with its own name and trigger. The
 * nodes are the fixture's; the few variants that fire where the legacy bot reads nothing use the
 * delivery's own issue instead of reading it (else every run would end `no_recording`).
 *
 * With the generator's mix (fixtures/generator/deliveries.ts), a delivery about an issue, a comment
 * or a pull request matches 1-3 flows: two or three for what the legacy bot acts on (assigned to the
 * bot, a /retry comment, an opened pull request), one for the rest. The long tail of other events
 * (push, star, deployment, ...) matches none, as it would for a bot subscribed to everything.
 *
 *   node dist/bench/serve/flows.js [--dir DIR] [--count 512] [--seed 42]
 *
 * writes the files and prints how many flows each delivery matches.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { parsePayload } from '../../core/payload.js';
import type { GeneratedDelivery } from '../../fixtures/generator/deliveries.js';
import type { DeliveryInput } from '../../replayer/engine/delivery.js';
import { NO_RECORDINGS } from '../../replayer/engine/recordings.js';
import { runDelivery } from '../../replayer/engine/run.js';
import { loadFlowsOrThrow } from '../../replayer/flows/load.js';
import type { CompiledFlow } from '../../replayer/flows/model.js';
import { BUILTIN_OPS, createOpRegistry } from '../../replayer/ops/registry.js';
import { flag } from '../shared/args.js';

const REPO = '${{ delivery.payload.repository.full_name }}';
const ISSUE = '${{ delivery.payload.issue.number }}';
const PR = '${{ delivery.payload.pull_request.number }}';
const PEOPLE = '["alice", "bob", "carol", "dave"]';
/** The fixture's "assigned to the bot" test: GitHub names the assignee at the top level, Gitea and Forgejo on the issue. */
const TO_BOT = 'delivery.payload.?assignee.login.orValue(delivery.payload.issue.?assignee.login.orValue("")) == "hookbot"';
const RETRY = 'delivery.payload.comment.user.login != "hookbot" && delivery.payload.comment.body.re2("(?m)^/retry\\\\b")';
const NOT_REVIEWER = 'delivery.payload.pull_request.user.login != "octo-reviewer"';

/** One node of a flow file. */
interface NodeSpec {
  id: string;
  op: string;
  /** A CEL condition, written single-quoted (conditions starting with `!` need quoting). */
  if?: string;
  needs?: string[];
  with: Record<string, string>;
}

/** A flow file's `nodes:` section, a blank line between nodes. */
function nodesYaml(nodes: readonly NodeSpec[]): string {
  const node = (n: NodeSpec) =>
    [
      `  - id: ${n.id}`,
      `    op: ${n.op}`,
      n.if ? `    if: '${n.if}'` : null,
      n.needs ? `    needs: [${n.needs.join(', ')}]` : null,
      '    with:',
      ...Object.entries(n.with).map(([key, value]) => `      ${key}: ${value}`),
    ]
      .filter((line) => line !== null)
      .join('\n') + '\n';
  return `nodes:\n${nodes.map(node).join('\n')}`;
}

/**
 * The nodes of fixtures/flows/assign-agent.yaml and retry-agent.yaml, which differ only in the queue,
 * the acknowledgement, and `onlyWhenIdle`: assign-agent enqueues only when no agent run is in progress,
 * and comments and labels only when it enqueued (`needs`). `read: false` takes the issue from the
 * delivery instead of reading it.
 */
function agentNodes(o: { read: boolean; queue: string; ackBody: string; onlyWhenIdle: boolean }): string {
  const ref = o.read ? '${{ nodes.issue.output.html_url }}' : '${{ delivery.payload.issue.html_url }}';
  const target = { repo: REPO, number: ISSUE };
  // The fixture's condition; from the delivery, labels may be missing.
  const idle = o.read ? '!nodes.issue.output.labels.exists(l, l.name == "agent-running")' : '!(has(delivery.payload.issue.labels) && delivery.payload.issue.labels.exists(l, l.name == "agent-running"))';
  const afterEnqueue = o.onlyWhenIdle ? { needs: ['enqueue'] } : {};
  return nodesYaml([
    ...(o.read ? [{ id: 'issue', op: 'forge.issue.get', with: target }] : []),
    { id: 'enqueue', op: 'agent.enqueue', ...(o.onlyWhenIdle ? { if: idle } : {}), with: { queue: o.queue, ref, ...target } },
    { id: 'ack', op: 'forge.issue.comment', ...afterEnqueue, with: { ...target, body: o.ackBody } },
    { id: 'mark', op: 'forge.issue.labels.add', ...afterEnqueue, with: { ...target, labels: '[agent-running]' } },
  ]);
}

/** fixtures/flows/assign-agent.yaml's nodes. */
const assignAgentNodes = (read: boolean) => agentNodes({ read, queue: 'triage', ackBody: 'On it — queued as ${{ nodes.enqueue.output.job_id }}', onlyWhenIdle: true });

/** fixtures/flows/retry-agent.yaml's nodes. */
const retryAgentNodes = (read: boolean) => agentNodes({ read, queue: 'retry', ackBody: 'Retrying — queued as ${{ nodes.enqueue.output.job_id }}', onlyWhenIdle: false });

/** fixtures/flows/request-review.yaml's node. */
const requestReviewNodes = nodesYaml([{ id: 'request', op: 'forge.pr.review.request', with: { repo: REPO, number: PR, reviewers: '[octo-reviewer]' } }]);

interface Variant {
  name: string;
  description: string;
  sources?: string;
  event: string;
  action?: string;
  if?: string;
  nodes: string;
}

/** The 20 variants; names sort in family order so the flows' order (and output) is stable. */
export const VARIANTS: readonly Variant[] = [
  { name: 'assign-agent', description: 'The fixture flow: an issue assigned to the bot queues an agent run.', sources: '[github, gitea, forgejo]', event: 'issues', action: 'assigned', if: TO_BOT, nodes: assignAgentNodes(true) },
  { name: 'assign-agent-github', description: 'assign-agent for GitHub only (assignee at the top level).', sources: 'github', event: 'issues', action: 'assigned', if: 'has(delivery.payload.assignee) && delivery.payload.assignee.login == "hookbot"', nodes: assignAgentNodes(true) },
  { name: 'assign-agent-gitea', description: 'assign-agent for Gitea and Forgejo only (assignee on the issue).', sources: '[gitea, forgejo]', event: 'issues', action: 'assigned', if: 'delivery.payload.issue.?assignee.login.orValue("") == "hookbot"', nodes: assignAgentNodes(true) },
  { name: 'assign-agent-widgets', description: 'assign-agent, only in octo-org/widgets.', event: 'issues', action: 'assigned', if: `delivery.payload.repository.full_name == "octo-org/widgets" && ${TO_BOT}`, nodes: assignAgentNodes(true) },
  { name: 'assign-agent-acme', description: 'assign-agent, only in the acme organisation.', event: 'issues', action: 'assigned', if: `delivery.payload.repository.full_name.startsWith("acme/") && ${TO_BOT}`, nodes: assignAgentNodes(true) },
  { name: 'assign-agent-people', description: 'assign-agent for issues assigned to a person of the team.', event: 'issues', action: 'assigned', if: `delivery.payload.?assignee.login.orValue(delivery.payload.issue.?assignee.login.orValue("")) in ${PEOPLE}`, nodes: assignAgentNodes(false) },
  { name: 'assign-agent-activity', description: 'assign-agent on any other issue activity (opened, closed, labelled, ...).', event: 'issues', if: 'delivery.payload.action != "assigned" && has(delivery.payload.issue.number)', nodes: assignAgentNodes(false) },
  { name: 'request-review', description: 'The fixture flow: every newly opened pull request asks the team reviewer.', sources: '[github, gitea, forgejo]', event: 'pull_request', action: 'opened', if: NOT_REVIEWER, nodes: requestReviewNodes },
  { name: 'request-review-github', description: 'request-review for GitHub only.', sources: 'github', event: 'pull_request', action: 'opened', if: NOT_REVIEWER, nodes: requestReviewNodes },
  { name: 'request-review-gitea', description: 'request-review for Gitea and Forgejo only.', sources: '[gitea, forgejo]', event: 'pull_request', action: 'opened', if: NOT_REVIEWER, nodes: requestReviewNodes },
  { name: 'request-review-widgets', description: 'request-review, only in octo-org/widgets.', event: 'pull_request', action: 'opened', if: `delivery.payload.repository.full_name == "octo-org/widgets" && ${NOT_REVIEWER}`, nodes: requestReviewNodes },
  { name: 'request-review-alice-bob', description: 'request-review for pull requests by alice or bob outside octo-org/widgets.', event: 'pull_request', action: 'opened', if: `delivery.payload.repository.full_name != "octo-org/widgets" && delivery.payload.pull_request.user.login in ["alice", "bob"]`, nodes: requestReviewNodes },
  { name: 'request-review-updated', description: 'request-review again when a pull request changes (any action but opened).', event: 'pull_request', if: 'delivery.payload.action != "opened" && has(delivery.payload.pull_request.number)', nodes: requestReviewNodes },
  { name: 'request-review-on-review', description: 'request-review after review activity.', event: '[pull_request_review, pull_request_review_comment, pull_request_review_thread]', if: 'has(delivery.payload.pull_request.number)', nodes: requestReviewNodes },
  { name: 'retry-agent', description: 'The fixture flow: a /retry line in a comment queues the agent again.', sources: '[github, gitea, forgejo]', event: 'issue_comment', action: 'created', if: RETRY, nodes: retryAgentNodes(true) },
  { name: 'retry-agent-github', description: 'retry-agent for GitHub only.', sources: 'github', event: 'issue_comment', action: 'created', if: RETRY, nodes: retryAgentNodes(true) },
  { name: 'retry-agent-gitea', description: 'retry-agent for Gitea and Forgejo only.', sources: '[gitea, forgejo]', event: 'issue_comment', action: 'created', if: RETRY, nodes: retryAgentNodes(true) },
  { name: 'retry-agent-rerun', description: 'retry-agent that also takes /rerun.', event: 'issue_comment', action: 'created', if: 'delivery.payload.comment.user.login != "hookbot" && delivery.payload.comment.body.re2("(?m)^/(retry|rerun)\\\\b")', nodes: retryAgentNodes(true) },
  { name: 'retry-agent-thanks', description: 'retry-agent shape on a comment starting with "Thanks".', event: 'issue_comment', action: 'created', if: 'delivery.payload.comment.body.startsWith("Thanks")', nodes: retryAgentNodes(false) },
  { name: 'retry-agent-other', description: 'retry-agent shape on any other comment (no /retry, no thanks).', event: 'issue_comment', if: '!delivery.payload.comment.body.contains("/retry") && !delivery.payload.comment.body.startsWith("Thanks")', nodes: retryAgentNodes(false) },
];

function yamlOf(v: Variant): string {
  const on = [
    `  - ${v.sources ? `source: ${v.sources}\n    ` : ''}event: ${v.event}`,
    v.action ? `    action: ${v.action}` : null,
    // A folded block: conditions starting with `!` or holding quotes need no YAML quoting.
    v.if ? `    if: >-\n      ${v.if}` : null,
  ].filter((l) => l !== null);
  return `# Generated by bench/serve/flows.ts: a variant of fixtures/flows/${v.name.split('-').slice(0, 2).join('-')}.yaml.
name: ${v.name}
description: ${JSON.stringify(v.description)}
on:
${on.join('\n')}
${v.nodes}`;
}

/** Writes the 20 flow files into `dir` (emptied first) and loads them as serve will; throws on any problem. */
export async function writeBenchFlows(dir: string): Promise<CompiledFlow[]> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  for (const v of VARIANTS) await writeFile(join(dir, `${v.name}.yaml`), yamlOf(v));
  const { flows } = await loadFlowsOrThrow(dir, createOpRegistry(BUILTIN_OPS));
  if (flows.length !== VARIANTS.length) throw new Error(`expected ${VARIANTS.length} flows in ${dir}, loaded ${flows.length}`);
  return flows;
}

/** How many flows each delivery matches: a histogram (matches → deliveries) and per flow. */
export interface MatchMix {
  deliveries: number;
  /** "0", "1", "2", "3", "4+" → deliveries. */
  flowsPerDelivery: Record<string, number>;
  /** Among deliveries about an issue, a comment or a pull request (payload.issue or payload.pull_request). */
  flowsPerIssueOrPr: Record<string, number>;
  meanFlowsPerDelivery: number;
  perFlow: Record<string, number>;
}

/** Matches every flow's triggers against each delivery (the engine's own matching, dry-run, no recordings). */
export async function matchMix(flows: readonly CompiledFlow[], deliveries: readonly GeneratedDelivery[]): Promise<MatchMix> {
  const bucket = (n: number) => (n >= 4 ? '4+' : String(n));
  const flowsPerDelivery: Record<string, number> = { '0': 0, '1': 0, '2': 0, '3': 0, '4+': 0 };
  const flowsPerIssueOrPr: Record<string, number> = { '0': 0, '1': 0, '2': 0, '3': 0, '4+': 0 };
  const perFlow: Record<string, number> = Object.fromEntries(flows.map((f) => [f.name, 0]));
  const logger = pino({ level: 'silent' });
  let total = 0;
  for (const [i, d] of deliveries.entries()) {
    const payload = parsePayload(d.body, d.headers['content-type'] ?? null).payload as Record<string, unknown> | null;
    const input: DeliveryInput = {
      delivery_id: `mix-${i}`,
      source: d.source,
      event: d.event,
      action: d.action,
      received_at_us: 1_700_000_000_000_000 + i,
      headers: d.headers,
      payload,
      repository: ((payload?.repository as { full_name?: string } | undefined)?.full_name ?? null) as string | null,
    };
    const runs = await runDelivery(flows, input, { mode: 'dry-run', seed: 0, reads: NO_RECORDINGS, logger });
    const failed = runs.filter((r) => r.status === 'failed' && r.nodes.length === 0);
    if (failed.length > 0) throw new Error(`flow ${failed[0]!.flow}: trigger failed on a ${d.event}.${d.action} delivery: ${failed[0]!.error}`);
    flowsPerDelivery[bucket(runs.length)]! += 1;
    if (payload && (payload.issue || payload.pull_request)) flowsPerIssueOrPr[bucket(runs.length)]! += 1;
    for (const r of runs) perFlow[r.flow]! += 1;
    total += runs.length;
  }
  const unmatched = Object.entries(perFlow).filter(([, n]) => n === 0).map(([f]) => f);
  if (unmatched.length > 0) throw new Error(`no delivery matches flow(s) ${unmatched.join(', ')}`);
  return { deliveries: deliveries.length, flowsPerDelivery, flowsPerIssueOrPr, meanFlowsPerDelivery: total / Math.max(1, deliveries.length), perFlow };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const dir = flag(argv, 'dir') ?? join(tmpdir(), 'hookshadow-bench-serve-flows');
  const { benchDeliveries } = await import('./deliveries.js');
  const flows = await writeBenchFlows(dir);
  const mix = await matchMix(flows, benchDeliveries(Number(flag(argv, 'count') ?? 512), Number(flag(argv, 'seed') ?? 42)).deliveries);
  console.log(`${flows.length} flows in ${dir}`);
  console.log(JSON.stringify(mix, null, 2));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}

/**
 * Replay benchmark, part 2: the flow set. Writes the three fixture flows (fixtures/flows/*.yaml) and
 * 20 synthetic ones into a directory, then checks them:
 *   1. loadFlowsDir + createOpRegistry(BUILTIN_OPS): no load problem, 23 flows;
 *   2. a dry run over the first deliveries of the benchmark's data (generated, not read from a store),
 *      with the legacy bot's reads and responses as the store holds them: every flow must match at least
 *      once, no run may fail, and only flows marked `incomplete` may end incomplete (reads the legacy
 *      handler never made).
 * Any problem throws.
 *
 *   node dist/bench/replay/flows.js [--dir DIR] [--sample 20000] [--seed 42]
 *
 * The synthetic flows vary what a real flow set varies: triggers (issues, issue_comment, pull_request,
 * push, release, workflow_run, check_run, any event), sources, CEL conditions (has(), .exists(), .re2(),
 * optional fields, `in`, startsWith/endsWith/contains/lowerAscii/size), 1-4 nodes mixing pure ops (set,
 * log), reads (forge.issue.get) and mutations (forge.issue.comment, forge.issue.labels.add,
 * agent.enqueue, forge.pr.review.request), needs, node conditions, and one foreach over labels.
 */
import { copyFile, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { formatProblem, type CompiledFlow } from '../../replayer/flows/model.js';
import { loadFlowsDir } from '../../replayer/flows/load.js';
import { BUILTIN_OPS, createOpRegistry } from '../../replayer/ops/registry.js';
import { runDelivery, type FlowRun } from '../../replayer/engine/run.js';
import { recordedReads } from '../../replayer/engine/recordings.js';
import type { DeliveryInput } from '../../replayer/engine/delivery.js';
import type { RecordedExchange } from '../../replayer/engine/recordings.js';
import { generateDeliveries, type GeneratedDelivery } from '../../fixtures/generator/deliveries.js';
import { flag } from '../shared/args.js';
import { BOT_LOGIN, deliveryRecord, legacyCalls, type LegacyCall, type Payload } from './make-store.js';

/** The repository root: the nearest ancestor of this file holding package.json (works from sources and from dist/). */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
  return dir;
}

const REPO = '${{ delivery.payload.repository.full_name }}';
const ISSUE = '${{ delivery.payload.issue.number }}';
const PR = '${{ delivery.payload.pull_request.number }}';

interface SyntheticFlow {
  name: string;
  /** Runs may end `incomplete` (a read the legacy handler never made for that delivery). */
  incomplete?: boolean;
  yaml: string;
}

/** The 20 synthetic flows. Names sort after the fixtures' so file order is stable. */
export const SYNTHETIC_FLOWS: SyntheticFlow[] = [
  {
    name: 'bench-01-assigned-log',
    yaml: `description: Log every issue assigned to the bot (GitHub puts the assignee at the top level).
on:
  - source: github
    event: issues
    action: assigned
    if: has(delivery.payload.assignee) && delivery.payload.assignee.login == "${BOT_LOGIN}"
nodes:
  - id: note
    op: log
    with:
      message: assigned ${REPO}#${ISSUE} to the bot
`,
  },
  {
    name: 'bench-02-assigned-triage',
    yaml: `description: Read an issue assigned to the bot; label bugs that no agent is working on yet.
on:
  - event: issues
    action: assigned
    if: delivery.payload.?assignee.login.orValue(delivery.payload.issue.?assignee.login.orValue("")) == "${BOT_LOGIN}"
nodes:
  - id: issue
    op: forge.issue.get
    with:
      repo: ${REPO}
      number: ${ISSUE}
  - id: facts
    op: set
    with:
      title: \${{ delivery.payload.issue.title.lowerAscii() }}
      has_bug: \${{ delivery.payload.issue.labels.exists(l, l.name == "bug") }}
      running: \${{ nodes.issue.output.labels.exists(l, l.name == "agent-running") }}
  - id: label
    op: forge.issue.labels.add
    if: nodes.facts.output.has_bug && !nodes.facts.output.running
    with:
      repo: ${REPO}
      number: ${ISSUE}
      labels: [triage/bug]
`,
  },
  {
    name: 'bench-03-label-mirror',
    yaml: `description: Mirror each label of an assigned, opened or labelled issue as area/<label> (foreach, one call per label).
on:
  - event: issues
    action: [assigned, opened, labeled]
    if: has(delivery.payload.issue.labels) && size(delivery.payload.issue.labels) > 0
nodes:
  - id: mirror
    op: forge.issue.labels.add
    foreach: delivery.payload.issue.labels
    with:
      repo: ${REPO}
      number: ${ISSUE}
      labels: ["area/\${{ item.name }}"]
  - id: done
    op: log
    needs: [mirror]
    with:
      message: mirrored \${{ size(delivery.payload.issue.labels) }} label(s) on ${REPO}#${ISSUE}
`,
  },
  {
    name: 'bench-04-retry-v2',
    yaml: `description: The /retry flow, v2 - ignores bots by login suffix and passes who asked.
on:
  - event: issue_comment
    action: created
    if: >-
      !delivery.payload.comment.user.login.endsWith("[bot]") &&
      delivery.payload.comment.body.re2("(?m)^/retry\\\\b")
nodes:
  - id: issue
    op: forge.issue.get
    with:
      repo: ${REPO}
      number: ${ISSUE}
  - id: enqueue
    op: agent.enqueue
    with:
      queue: retry
      ref: \${{ nodes.issue.output.html_url }}
      repo: ${REPO}
      number: ${ISSUE}
      data:
        requested_by: \${{ delivery.payload.comment.user.login }}
  - id: ack
    op: forge.issue.comment
    needs: [enqueue]
    with:
      repo: ${REPO}
      number: ${ISSUE}
      body: Retry queued as \${{ nodes.enqueue.output.job_id }} (asked by @\${{ delivery.payload.comment.user.login }})
`,
  },
  {
    name: 'bench-05-comment-thanks',
    yaml: `description: A comment starting with "Thanks" marks the issue acknowledged.
on:
  - event: issue_comment
    action: created
    if: delivery.payload.comment.body.startsWith("Thanks")
nodes:
  - id: ack
    op: forge.issue.labels.add
    with:
      repo: ${REPO}
      number: ${ISSUE}
      labels: [acknowledged]
`,
  },
  {
    name: 'bench-06-comment-context',
    incomplete: true,
    yaml: `description: Reads the issue behind every new or edited comment - the legacy bot read it only for /retry, so most runs have no recording.
on:
  - event: issue_comment
    action: [created, edited]
nodes:
  - id: issue
    op: forge.issue.get
    with:
      repo: ${REPO}
      number: ${ISSUE}
  - id: summary
    op: log
    needs: [issue]
    with:
      message: comment on an issue with \${{ size(nodes.issue.output.labels) }} label(s)
`,
  },
  {
    name: 'bench-07-pr-review-team',
    yaml: `description: Pull requests by alice or bob also get carol as reviewer.
on:
  - event: pull_request
    action: opened
    if: has(delivery.payload.pull_request.user) && delivery.payload.pull_request.user.login in ["alice", "bob"]
nodes:
  - id: request
    op: forge.pr.review.request
    with:
      repo: ${REPO}
      number: ${PR}
      reviewers: [carol]
`,
  },
  {
    name: 'bench-08-pr-title-lint',
    yaml: `description: Remind authors to use a conventional-commit pull request title.
on:
  - event: pull_request
    action: [opened, edited, reopened]
    if: '!delivery.payload.pull_request.title.re2("^(feat|fix|docs|chore|refactor)(\\\\([a-z-]+\\\\))?: ")'
nodes:
  - id: title
    op: set
    with:
      title: \${{ delivery.payload.pull_request.title }}
      length: \${{ size(delivery.payload.pull_request.title) }}
  - id: remind
    op: forge.issue.comment
    with:
      repo: ${REPO}
      number: ${PR}
      body: 'Please use a conventional-commit title such as "fix: ..." (got "\${{ nodes.title.output.title }}", \${{ nodes.title.output.length }} characters).'
`,
  },
  {
    name: 'bench-09-pr-ready',
    yaml: `description: A non-draft pull request with a description is labelled and queued for the review agent.
on:
  - event: pull_request
    action: [opened, ready_for_review]
    if: delivery.payload.pull_request.?draft.orValue(false) == false && delivery.payload.pull_request.body != null
nodes:
  - id: label
    op: forge.issue.labels.add
    with:
      repo: ${REPO}
      number: ${PR}
      labels: [needs-review]
  - id: review
    op: agent.enqueue
    with:
      queue: review
      ref: \${{ delivery.payload.pull_request.html_url }}
      repo: ${REPO}
      number: ${PR}
`,
  },
  {
    name: 'bench-10-push-deploy',
    yaml: `description: A push to a branch (not a deletion) queues a deploy of the new head.
on:
  - event: push
    if: delivery.payload.ref.startsWith("refs/heads/") && !delivery.payload.deleted
nodes:
  - id: target
    op: set
    with:
      repo: ${REPO}
      sha: \${{ delivery.payload.after }}
      main: \${{ delivery.payload.ref in ["refs/heads/main", "refs/heads/master"] }}
  - id: deploy
    op: agent.enqueue
    with:
      queue: '\${{ nodes.target.output.main ? "deploy" : "preview" }}'
      ref: \${{ nodes.target.output.repo }}@\${{ nodes.target.output.sha }}
`,
  },
  {
    name: 'bench-11-push-tag-log',
    yaml: `description: Log tag pushes.
on:
  - event: push
    if: delivery.payload.ref.startsWith("refs/tags/")
nodes:
  - id: note
    op: log
    with:
      message: tag \${{ delivery.payload.ref }} pushed by \${{ delivery.payload.?pusher.name.orValue("unknown") }}
`,
  },
  {
    name: 'bench-12-release-notes',
    yaml: `description: A published (non-draft) release queues the release-notes agent.
on:
  - event: release
    action: [published, released, created]
    if: has(delivery.payload.release.tag_name) && !delivery.payload.release.draft
nodes:
  - id: notes
    op: agent.enqueue
    with:
      queue: release-notes
      ref: \${{ delivery.payload.release.html_url }}
      repo: ${REPO}
      data:
        tag: \${{ delivery.payload.release.tag_name }}
        prerelease: \${{ delivery.payload.release.prerelease }}
`,
  },
  {
    name: 'bench-13-workflow-not-green',
    yaml: `description: A completed workflow run that did not succeed is logged and queued for CI triage.
on:
  - event: workflow_run
    action: completed
    if: delivery.payload.workflow_run.?conclusion.orValue("") != "success"
nodes:
  - id: note
    op: log
    with:
      message: \${{ delivery.payload.workflow_run.name }} on \${{ delivery.payload.workflow_run.head_branch }} did not succeed
  - id: triage
    op: agent.enqueue
    with:
      queue: ci-triage
      ref: \${{ delivery.payload.workflow_run.html_url }}
      repo: ${REPO}
`,
  },
  {
    name: 'bench-14-check-run-log',
    yaml: `description: Log check runs as they complete.
on:
  - event: check_run
    action: [completed, created, rerequested]
    if: delivery.payload.check_run.status == "completed" && delivery.payload.check_run.?conclusion.orValue("") in ["success", "neutral", "skipped"]
nodes:
  - id: note
    op: log
    with:
      message: check \${{ delivery.payload.check_run.name }} \${{ delivery.payload.check_run.conclusion }}
`,
  },
  {
    name: 'bench-15-issue-docs',
    yaml: `description: New or edited issues about spelling or typos are labelled docs and thanked.
on:
  - event: issues
    action: [opened, edited]
    if: >-
      delivery.payload.issue.title.lowerAscii().contains("spelling") ||
      (delivery.payload.issue.body != null && delivery.payload.issue.body.contains("typo"))
nodes:
  - id: label
    op: forge.issue.labels.add
    with:
      repo: ${REPO}
      number: ${ISSUE}
      labels: [docs]
  - id: thank
    op: forge.issue.comment
    needs: [label]
    with:
      repo: ${REPO}
      number: ${ISSUE}
      body: Labelled docs - thanks for the report, @\${{ delivery.payload.issue.user.login }}.
`,
  },
  {
    name: 'bench-16-issues-activity',
    yaml: `description: Log every issues event (pure, high volume).
on:
  - event: issues
nodes:
  - id: note
    op: log
    with:
      message: issues.\${{ delivery.action }} on \${{ delivery.repository }}
`,
  },
  {
    name: 'bench-17-acme-routing',
    yaml: `description: Route GitHub issue, comment and pull request events of acme's repositories to the acme team.
on:
  - source: github
    event: [issues, issue_comment, pull_request]
    if: delivery.payload.repository.full_name.startsWith("acme/")
nodes:
  - id: team
    op: set
    with:
      team: acme
      repo: ${REPO}
      kind: \${{ delivery.event }}.\${{ delivery.action }}
  - id: note
    op: log
    with:
      message: routed to \${{ nodes.team.output.team }}
      data: \${{ nodes.team.output }}
`,
  },
  {
    name: 'bench-18-gitea-assigned',
    yaml: `description: On Gitea and Forgejo (assignee on the issue), an issue assigned to the bot queues the agent unless one is running.
on:
  - source: [gitea, forgejo]
    event: issues
    action: assigned
    if: has(delivery.payload.issue.assignee) && delivery.payload.issue.assignee != null && delivery.payload.issue.assignee.login == "${BOT_LOGIN}"
nodes:
  - id: issue
    op: forge.issue.get
    with:
      repo: ${REPO}
      number: ${ISSUE}
  - id: enqueue
    op: agent.enqueue
    if: '!nodes.issue.output.labels.exists(l, l.name == "agent-running")'
    with:
      queue: gitea-triage
      ref: \${{ nodes.issue.output.html_url }}
      repo: ${REPO}
      number: ${ISSUE}
  - id: ack
    op: forge.issue.comment
    needs: [enqueue]
    with:
      repo: ${REPO}
      number: ${ISSUE}
      body: Queued as \${{ nodes.enqueue.output.job_id }}
  - id: mark
    op: forge.issue.labels.add
    needs: [enqueue]
    with:
      repo: ${REPO}
      number: ${ISSUE}
      labels: [agent-running]
`,
  },
  {
    name: 'bench-19-sender-audit',
    yaml: `description: Audit everything dave triggers through GitHub (any event; the condition runs on every delivery).
on:
  - if: >-
      delivery.payload.?sender.login.orValue("") == "dave" &&
      "user-agent" in delivery.headers && delivery.headers["user-agent"].startsWith("GitHub-Hookshot")
nodes:
  - id: audit
    op: log
    with:
      message: dave triggered \${{ delivery.event }}
`,
  },
  {
    name: 'bench-20-comment-flaky',
    yaml: `description: A comment reporting a timeout or flakiness labels the issue flaky and says so.
on:
  - event: issue_comment
    action: created
    if: delivery.payload.comment.body.re2("(?i)\\\\b(timed out|flaky|blocked)\\\\b")
nodes:
  - id: flaky
    op: forge.issue.labels.add
    with:
      repo: ${REPO}
      number: ${ISSUE}
      labels: [flaky]
  - id: note
    op: forge.issue.comment
    with:
      repo: ${REPO}
      number: ${ISSUE}
      body: Marked flaky (@\${{ delivery.payload.comment.user.login }} reported a timeout).
`,
  },
];

/**
 * Delivery `i` of the benchmark's data as a replay reads it from the store, and the flows' dry run over
 * it, with the legacy bot's `calls` as the store holds them: its reads answer the flows' reads, its
 * mutations' responses echo the flows' mutations.
 */
export async function dryRunGenerated(
  flows: readonly CompiledFlow[],
  g: GeneratedDelivery,
  i: number,
  payload: Payload,
  calls: LegacyCall[],
): Promise<{ delivery: DeliveryInput; runs: FlowRun[] }> {
  const rec = deliveryRecord(g, i);
  const delivery: DeliveryInput = {
    delivery_id: rec.delivery_id,
    source: rec.source,
    event: rec.event,
    action: rec.action,
    received_at_us: rec.received_at_us,
    headers: rec.headers,
    payload,
    repository: rec.repository,
  };
  const asRecorded = (c: LegacyCall): RecordedExchange => ({
    upstream: c.upstream,
    method: c.method,
    path: c.path,
    response_status: c.status,
    response_body: JSON.stringify(c.responseBody),
  });
  const runs = await runDelivery(flows, delivery, {
    mode: 'dry-run',
    seed: 0,
    reads: recordedReads(calls.filter((c) => c.method === 'GET').map(asRecorded)),
    echoes: recordedReads(calls.filter((c) => c.method !== 'GET').map(asRecorded)),
    logger: { info: () => undefined },
  });
  return { delivery, runs };
}

export interface FlowCheck {
  dir: string;
  files: string[];
  flows: number;
  digest: string;
  sample: number;
  /** Per flow, over the sample: runs by status, node runs, intents. */
  perFlow: Record<string, { runs: number; ok: number; incomplete: number; failed: number; duplicate: number; nodeRuns: number; intents: number }>;
}

/** Empties `dir` and copies the fixture flows (fixtures/flows/*.yaml) into it; their file names, sorted. */
export async function copyFixtureFlows(dir: string): Promise<string[]> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const fixtures = join(repoRoot(), 'fixtures', 'flows');
  const files: string[] = [];
  for (const f of (await readdir(fixtures)).filter((n) => /\.ya?ml$/.test(n)).sort()) {
    await copyFile(join(fixtures, f), join(dir, f));
    files.push(f);
  }
  if (files.length === 0) throw new Error(`no fixture flows in ${fixtures}`);
  return files;
}

/** Writes the fixture flows and the synthetic ones into `dir` (emptied first) and checks them; throws on any problem. */
export async function writeBenchFlows(dir: string, opts: { sample?: number; seed?: number } = {}): Promise<FlowCheck> {
  const files = await copyFixtureFlows(dir);
  for (const f of SYNTHETIC_FLOWS) {
    const file = `${f.name}.yaml`;
    await writeFile(join(dir, file), `name: ${f.name}\n${f.yaml}`);
    files.push(file);
  }

  // 1. Load: every problem at once, with its position.
  const ops = createOpRegistry(BUILTIN_OPS);
  const loaded = await loadFlowsDir(dir, ops);
  if (loaded.problems.length > 0) {
    throw new Error(`bench flows: ${loaded.problems.length} load problem(s):\n${loaded.problems.map(formatProblem).join('\n')}`);
  }
  if (loaded.flows.length !== files.length) throw new Error(`bench flows: loaded ${loaded.flows.length} flows from ${files.length} files`);

  // 2. Dry run over the benchmark's first deliveries, with what the store holds for them.
  const sample = opts.sample ?? 20_000;
  const perFlow: FlowCheck['perFlow'] = Object.fromEntries(loaded.flows.map((f) => [f.name, { runs: 0, ok: 0, incomplete: 0, failed: 0, duplicate: 0, nodeRuns: 0, intents: 0 }]));
  const problems: string[] = [];
  const incompleteAllowed = new Set([...SYNTHETIC_FLOWS.filter((f) => f.incomplete).map((f) => f.name)]);
  let i = 0;
  for (const g of generateDeliveries({ count: sample, seed: opts.seed ?? 42, slim: true, botLogin: BOT_LOGIN })) {
    const payload = JSON.parse(g.body) as Payload;
    const { delivery: d, runs } = await dryRunGenerated(loaded.flows, g, i++, payload, legacyCalls(g, payload));
    for (const run of runs) {
      const s = perFlow[run.flow]!;
      s.runs += 1;
      s[run.status] += 1;
      s.nodeRuns += run.nodes.length;
      s.intents += run.nodes.filter((n) => n.intent !== null).length;
      if (problems.length < 20) {
        if (run.status === 'failed') {
          const node = run.nodes.find((n) => n.status === 'failed');
          problems.push(`${run.flow}: run failed on ${d.event}.${d.action} ${d.delivery_id}: ${run.error ?? ''} ${node?.error ?? ''}`);
        } else if (run.status === 'incomplete' && !incompleteAllowed.has(run.flow)) {
          problems.push(`${run.flow}: run incomplete on ${d.event}.${d.action} ${d.delivery_id}: ${run.nodes.map((n) => `${n.node_id}=${n.status}${n.error ? ` (${n.error})` : ''}`).join(', ')}`);
        }
      }
    }
  }
  for (const [name, s] of Object.entries(perFlow)) if (s.runs === 0) problems.push(`${name}: no run in the first ${sample} deliveries (its trigger never matches)`);
  if (problems.length > 0) throw new Error(`bench flows: ${problems.length}${problems.length === 20 ? '+' : ''} problem(s) in a dry run over ${sample} deliveries:\n  ${problems.join('\n  ')}`);
  return { dir, files, flows: loaded.flows.length, digest: loaded.digest, sample, perFlow };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const arg = (name: string) => flag(argv, name);
  const dir = arg('dir') ?? join(tmpdir(), 'hookshadow-replay-bench', 'flows');
  const check = await writeBenchFlows(dir, { sample: Number(arg('sample') ?? 20_000), seed: Number(arg('seed') ?? 42) });
  console.log(`${check.flows} flows in ${check.dir} (digest ${check.digest.slice(0, 12)}); dry run over ${check.sample} deliveries:`);
  console.log(`  ${'flow'.padEnd(28)} ${'runs'.padStart(6)} ${'ok'.padStart(6)} ${'incompl'.padStart(7)} ${'nodes'.padStart(6)} ${'intents'.padStart(7)}`);
  for (const [name, s] of Object.entries(check.perFlow)) {
    console.log(`  ${name.padEnd(28)} ${String(s.runs).padStart(6)} ${String(s.ok).padStart(6)} ${String(s.incomplete).padStart(7)} ${String(s.nodeRuns).padStart(6)} ${String(s.intents).padStart(7)}`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href && basename(process.argv[1]).startsWith('flows.')) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}

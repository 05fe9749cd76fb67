/**
 * Analyze benchmark, part 1: the data. A capture store of N deliveries (default 1,000,000) with about two
 * legacy effects per delivery, the flows, and a real dry-run replay of the flows over the store.
 *
 *   node dist/bench/analyze/data.js [--count 1000000] [--seed 42] [--data-dir DIR] [--check-only]
 *
 * The store is bench/replay's (bench/replay/make-store.ts: the same generated deliveries, recorded the way
 * a tee-mode recorder does, through openCaptureWriter), with a busier legacy bot. On top of what
 * fixtures/legacy-bot does (legacyCalls: triage job, comment and label for issues assigned to the bot; job
 * and comment for /retry; a review request for opened pull requests) it:
 *   - records every delivery about a repository in an `activity` agent queue (POST /jobs), last;
 *   - labels opened pull requests `needs-review`, and "Thanks" comments `acknowledged`;
 * and, for fixed few-percent shares of deliveries (by a hash of the delivery id), behaves differently from the
 * flows on purpose, so the analyzer has every class of divergence to write:
 *   - 3.0 %: the activity job's `ref` is the old `<repo>@<event>` form         → args_differ
 *   - 1.5 %: no activity job (the legacy bot's queue was rate limited)         → extra_in_flow
 *   - 2.0 %: an extra `legacy-metrics` job no flow makes                       → missing_in_flow
 *   - 3.0 % of issues assigned to the bot: label before comment                → order_differs
 *   - every /retry: the flow re-adds agent-running, the legacy bot forgets it  → extra_in_flow (fixture flow)
 * The flows are the three fixture flows (fixtures/flows) plus three that mirror the extra behaviour
 * (FLOWS below). Before anything is written, a dry run over the first deliveries checks that the mix comes
 * out as designed (checkFlows).
 *
 * The replay is `replay()` (replayer/replay.ts) in dry-run with 2 workers, id `bench-analyze`.
 * Everything lives under the data directory (--data-dir, else $HOOKSHADOW_BENCH_ANALYZE_DIR, else
 * /tmp/hookshadow-bench-analyze): `store/` (with `replays/bench-analyze/`) and `flows/`. A directory that
 * already holds this count and seed (data.json, checked against the store and the replay) is reused.
 */
import { createHash } from 'node:crypto';
import { readFile, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import type { ReplayManifest } from '../../core/replay-schema.js';
import { REPLAY_FORMAT_VERSION } from '../../core/replay-schema.js';
import { sqlString } from '../../core/sql.js';
import { storePaths } from '../../core/store/layout.js';
import { compareDelivery, type FlowIntent, type LegacyEffect } from '../../analyzer/match.js';
import { NO_RULES } from '../../analyzer/rules.js';
import { loadRouteMaps } from '../../analyzer/routes.js';
import { generateDeliveries, type GeneratedDelivery } from '../../fixtures/generator/deliveries.js';
import { formatProblem } from '../../replayer/flows/model.js';
import { loadFlowsDir } from '../../replayer/flows/load.js';
import { BUILTIN_OPS, createOpRegistry } from '../../replayer/ops/registry.js';
import { readReplayManifest } from '../../replayer/replays.js';
import { replay } from '../../replayer/replay.js';
import { copyFixtureFlows, dryRunGenerated } from '../replay/flows.js';
import { flag } from '../shared/args.js';
import { BOT_LOGIN, REVIEWER, countRows, legacyCalls, parquetStats, parseCount, writeBenchStore, type LegacyCall, type Payload } from '../replay/make-store.js';

export const REPLAY_ID = 'bench-analyze';
/** The same replay as if the activity-feed flow were off (ensureDriftReplay). */
export const DRIFT_REPLAY_ID = 'bench-analyze-drift';
const INSTANCE = 'bench-analyze';
const SECRET = 'bench-analyze-secret';
const MARKER = 'data.json';
/** Bump when the store, the flows or the replay change shape, so old data directories are regenerated. */
const MARKER_VERSION = 1;

export function defaultDataDir(): string {
  return process.env.HOOKSHADOW_BENCH_ANALYZE_DIR || '/tmp/hookshadow-bench-analyze';
}

export const dataPaths = (dir: string) => ({ store: join(dir, 'store'), flows: join(dir, 'flows'), marker: join(dir, MARKER) });

// ---------------------------------------------------------------------------------------------
// The busier legacy bot.

/** 0-999 from the delivery id: which deliberate difference, if any, a delivery gets. */
export const bucket = (deliveryId: string) => parseInt(createHash('sha256').update(`analyze\0${deliveryId}`).digest('hex').slice(0, 8), 16) % 1000;
const jobId = (deliveryId: string, what: string) => `job-${createHash('sha256').update(`${what}\0${deliveryId}`).digest('hex').slice(0, 12)}`;

const agentJob = (deliveryId: string, what: string, body: Record<string, unknown>): LegacyCall => ({
  upstream: 'agents',
  method: 'POST',
  path: '/jobs',
  requestBody: body,
  status: 201,
  responseBody: { job_id: jobId(deliveryId, what), queue: body.queue, status: 'queued' },
});

const labelCall = (forge: string, repo: string, n: number, label: string): LegacyCall => ({
  upstream: forge,
  method: 'POST',
  path: `/repos/${repo}/issues/${n}/labels`,
  requestBody: { labels: [label] },
  status: 200,
  responseBody: [{ name: label }],
});

/** Every call the benchmark's legacy bot makes for a delivery, in order (see the file comment). */
export function analyzeLegacyCalls(g: Pick<GeneratedDelivery, 'source' | 'event' | 'deliveryId'>, payload: Payload): LegacyCall[] {
  const calls = legacyCalls(g, payload);
  const repo = payload?.repository?.full_name as string | undefined;
  if (!repo) return calls;
  const forge = g.source === 'gitea' ? 'gitea' : 'github';
  const b = bucket(g.deliveryId);
  const assignedToBot = g.event === 'issues' && payload.action === 'assigned' && calls.length === 4;
  if (assignedToBot && b >= 900 && b < 930) {
    // [read, job, comment, label] → [read, job, label, comment]
    const [read, job, comment, label] = calls as [LegacyCall, LegacyCall, LegacyCall, LegacyCall];
    calls.splice(0, 4, read, job, label, comment);
  }
  if (g.event === 'pull_request' && payload.action === 'opened' && payload.pull_request?.user?.login !== REVIEWER) {
    calls.push(labelCall(forge, repo, (payload.pull_request?.number ?? payload.number) as number, 'needs-review'));
  }
  if (g.event === 'issue_comment' && payload.action === 'created' && payload.comment?.user?.login !== BOT_LOGIN && String(payload.comment?.body ?? '').startsWith('Thanks')) {
    calls.push(labelCall(forge, repo, payload.issue.number as number, 'acknowledged'));
  }
  if (!(b >= 30 && b < 45)) {
    const ref = b < 30 ? `${repo}@${g.event}` : `https://github.com/${repo}`;
    calls.push(agentJob(g.deliveryId, 'activity', { queue: 'activity', ref, repo, event: g.event }));
  }
  if (b >= 45 && b < 65) calls.push(agentJob(g.deliveryId, 'metrics', { queue: 'legacy-metrics', ref: `https://github.com/${repo}`, repo, event: g.event }));
  return calls;
}

/** The flows that mirror the extra behaviour; the fixture flows are copied next to them. */
export const FLOWS: Record<string, string> = {
  'activity-feed.yaml': `name: activity-feed
description: Every delivery about a repository goes to the activity queue.
on:
  - if: delivery.repository != null
nodes:
  - id: record
    op: agent.enqueue
    with:
      queue: activity
      ref: https://github.com/\${{ delivery.repository }}
      repo: \${{ delivery.repository }}
      data:
        event: \${{ delivery.event }}
`,
  'pr-needs-review.yaml': `name: pr-needs-review
description: Label every pull request the reviewer did not open needs-review.
on:
  - event: pull_request
    action: opened
    if: delivery.payload.pull_request.user.login != "${REVIEWER}"
nodes:
  - id: label
    op: forge.issue.labels.add
    with:
      repo: \${{ delivery.payload.repository.full_name }}
      number: \${{ delivery.payload.pull_request.number }}
      labels: [needs-review]
`,
  'comment-ack.yaml': `name: comment-ack
description: A comment starting with "Thanks" (not the bot's) marks the issue acknowledged.
on:
  - event: issue_comment
    action: created
    if: delivery.payload.comment.user.login != "${BOT_LOGIN}" && delivery.payload.comment.body.startsWith("Thanks")
nodes:
  - id: ack
    op: forge.issue.labels.add
    with:
      repo: \${{ delivery.payload.repository.full_name }}
      number: \${{ delivery.payload.issue.number }}
      labels: [acknowledged]
`,
};

/** Writes the fixture flows and FLOWS into `dir` (emptied first). */
export async function writeFlows(dir: string): Promise<string[]> {
  const files = await copyFixtureFlows(dir);
  for (const [f, text] of Object.entries(FLOWS)) {
    await writeFile(join(dir, f), text);
    files.push(f);
  }
  return files;
}

export interface FlowCheck {
  sample: number;
  legacyEffects: number;
  intents: number;
  /** Divergence rows by class, as the analyzer's matcher gives them over the sample. */
  classes: Record<string, number>;
  runsByStatus: Record<string, number>;
}

/**
 * Dry-runs the flows over the first `sample` deliveries, with the legacy bot's calls as the store will
 * hold them, and matches intents against effects with the analyzer's own matcher: the divergence mix,
 * before hours go into writing and replaying the store. Throws when it is not the designed one.
 */
export async function checkFlows(flowsDir: string, opts: { sample: number; seed: number }): Promise<FlowCheck> {
  const ops = createOpRegistry(BUILTIN_OPS);
  const loaded = await loadFlowsDir(flowsDir, ops);
  if (loaded.problems.length > 0) throw new Error(`bench flows: ${loaded.problems.map(formatProblem).join('\n')}`);
  const routes = await loadRouteMaps([]);
  const rules = NO_RULES();
  const check: FlowCheck = { sample: opts.sample, legacyEffects: 0, intents: 0, classes: {}, runsByStatus: {} };
  const flowOrder = new Map(loaded.flows.map((f, i) => [f.name, i]));
  let i = 0;
  for (const g of generateDeliveries({ count: opts.sample, seed: opts.seed, slim: true, botLogin: BOT_LOGIN })) {
    const payload = JSON.parse(g.body) as Payload;
    const calls = analyzeLegacyCalls(g, payload);
    const { delivery: d, runs } = await dryRunGenerated(loaded.flows, g, i++, payload, calls);
    const legacy: LegacyEffect[] = calls
      .filter((c) => c.method !== 'GET')
      .map((c, k) => ({ effect_id: `e${k}`, ...routes.map({ upstream: c.upstream, method: c.method, path: c.path, body: c.requestBody }) }));
    const intents: FlowIntent[] = runs
      .flatMap((r) => r.nodes.filter((n) => n.intent).map((n) => ({ run_id: r.run_id, flow: r.flow, node_id: n.node_id, iteration: n.iteration ?? 0, kind: n.intent!.kind, target: n.intent!.target, args: n.intent!.args })))
      .sort((x, y) => flowOrder.get(x.flow)! - flowOrder.get(y.flow)!);
    for (const r of runs) check.runsByStatus[r.status] = (check.runsByStatus[r.status] ?? 0) + 1;
    const meta = { delivery_id: d.delivery_id, received_at_us: d.received_at_us, source: d.source, event: d.event, action: d.action };
    for (const row of compareDelivery(meta, legacy, intents, runs.map((r) => ({ run_id: r.run_id, flow: r.flow, status: r.status, error: r.error, node_id: null })), rules)) {
      check.classes[row.class] = (check.classes[row.class] ?? 0) + 1;
    }
    check.legacyEffects += legacy.length;
    check.intents += intents.length;
  }
  const c = check.classes;
  const share = (k: string) => (c[k] ?? 0) / check.legacyEffects;
  const problems: string[] = [];
  if (check.legacyEffects / opts.sample < 1.8) problems.push(`only ${(check.legacyEffects / opts.sample).toFixed(2)} legacy effects per delivery (want ~2)`);
  if (share('match') < 0.85) problems.push(`only ${(100 * share('match')).toFixed(1)} % of legacy effects match`);
  for (const k of ['args_differ', 'extra_in_flow', 'missing_in_flow', 'order_differs']) if (!c[k]) problems.push(`no ${k} rows`);
  if ((check.runsByStatus.failed ?? 0) + (check.runsByStatus.incomplete ?? 0) > 0) problems.push(`runs not ok: ${JSON.stringify(check.runsByStatus)}`);
  if (problems.length > 0) throw new Error(`bench flows do not give the designed mix over ${opts.sample} deliveries: ${problems.join('; ')} (${JSON.stringify(check)})`);
  return check;
}

// ---------------------------------------------------------------------------------------------
// The store and the replay.

export interface DataInfo {
  version: number;
  count: number;
  seed: number;
  rows: { deliveries: number; exchanges: number; effects: number };
  parquetFiles: number;
  parquetBytes: number;
  storeSeconds: number;
  replay: { id: string; seconds: number; runs: number; nodeRuns: number; intents: number; runsByStatus: Record<string, number>; flowRunsBytes: number; nodeRunsBytes: number };
  check: FlowCheck;
  createdAt: string;
  reused?: boolean;
}

const fileSize = (path: string) => stat(path).then((s) => s.size, () => 0);

/** Reuses the data directory when it holds this count and seed, whole; otherwise (re)generates everything. */
export async function ensureAnalyzeData(opts: { dir: string; count: number; seed: number; log?: (line: string) => void }): Promise<DataInfo> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const paths = dataPaths(opts.dir);
  const marker = await readFile(paths.marker, 'utf8').then((t) => JSON.parse(t) as DataInfo, () => null);
  if (marker && marker.version === MARKER_VERSION && marker.count === opts.count && marker.seed === opts.seed) {
    const rows = await countRows(paths.store).catch(() => null);
    const manifest = await readReplayManifest(paths.store, REPLAY_ID);
    if (rows && rows.deliveries === marker.rows.deliveries && rows.effects === marker.rows.effects && manifest?.counts.runs === marker.replay.runs) {
      log(
        `data: reusing ${opts.dir} (${rows.deliveries.toLocaleString('en')} deliveries, ${rows.effects.toLocaleString('en')} effects, ${rows.exchanges.toLocaleString('en')} exchanges; ` +
          `replay ${REPLAY_ID}: ${marker.replay.runs.toLocaleString('en')} flow runs, ${marker.replay.nodeRuns.toLocaleString('en')} node runs; generated ${marker.createdAt})`,
      );
      return { ...marker, reused: true };
    }
    log(`data: ${opts.dir} has a marker for this data set but the store or replay does not match it; regenerating`);
  } else if (marker) {
    log(`data: ${opts.dir} holds another data set (version ${marker.version}, count ${marker.count}, seed ${marker.seed}); regenerating`);
  }
  await rm(paths.marker, { force: true });

  await writeFlows(paths.flows);
  const t0 = performance.now();
  const check = await checkFlows(paths.flows, { sample: Math.min(opts.count, 20_000), seed: opts.seed });
  log(
    `flows: ${Object.keys(FLOWS).length + 3} flows; over the first ${check.sample.toLocaleString('en')} deliveries: ${(check.legacyEffects / check.sample).toFixed(2)} legacy effects and ` +
      `${(check.intents / check.sample).toFixed(2)} intents per delivery; rows by class ${JSON.stringify(check.classes)} (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
  );

  const tStore = performance.now();
  // Through the recorder's writer (WAL segments rolled into Parquet), as bench/replay writes its store.
  const { rows } = await writeBenchStore({ store: paths.store, count: opts.count, seed: opts.seed, instance: INSTANCE, secret: SECRET, calls: analyzeLegacyCalls, effects: true, durable: false, log });
  const storeSeconds = (performance.now() - tStore) / 1000;
  const pq = await parquetStats(paths.store);
  log(`store: ${rows.deliveries.toLocaleString('en')} deliveries, ${rows.effects.toLocaleString('en')} effects, ${rows.exchanges.toLocaleString('en')} exchanges in ${pq.files} Parquet files (${(pq.bytes / 2 ** 20).toFixed(0)} MiB), ${storeSeconds.toFixed(0)} s`);

  await rm(storePaths.replay(paths.store, REPLAY_ID), { recursive: true, force: true });
  await rm(storePaths.replayStaging(paths.store, REPLAY_ID), { recursive: true, force: true });
  let done = 0;
  let every = 0;
  let next = 0;
  const summary = await replay({
    store: paths.store,
    flowsDir: paths.flows,
    id: REPLAY_ID,
    mode: 'dry-run',
    concurrency: 2,
    timings: true,
    onStart: (n) => {
      every = Math.max(1, Math.round(n / 10));
      next = every;
      log(`replay: ${n.toLocaleString('en')} deliveries through the flows (dry-run, 2 workers)`);
    },
    onProgress: (k) => {
      done += k;
      if (done >= next) {
        log(`replay: ${done.toLocaleString('en')} deliveries`);
        next += every;
      }
    },
  });
  log(`replay: ${summary.runs.toLocaleString('en')} flow runs, ${summary.node_runs.toLocaleString('en')} node runs, ${summary.intents.toLocaleString('en')} intents in ${summary.seconds.toFixed(0)} s (${JSON.stringify(summary.runs_by_status)})`);

  const info: DataInfo = {
    version: MARKER_VERSION,
    count: opts.count,
    seed: opts.seed,
    rows,
    parquetFiles: pq.files,
    parquetBytes: pq.bytes,
    storeSeconds,
    replay: {
      id: REPLAY_ID,
      seconds: summary.seconds,
      runs: summary.runs,
      nodeRuns: summary.node_runs,
      intents: summary.intents,
      runsByStatus: summary.runs_by_status,
      flowRunsBytes: await fileSize(join(summary.dir, 'flow_runs.parquet')),
      nodeRunsBytes: await fileSize(join(summary.dir, 'node_runs.parquet')),
    },
    check,
    createdAt: new Date().toISOString(),
  };
  await writeFile(paths.marker, JSON.stringify(info, null, 2) + '\n');
  return { ...info, reused: false };
}

/**
 * A second replay of the store, as if the activity-feed flow had been switched off: derived from
 * bench-analyze by dropping that flow's runs (no second replay needed), so the legacy bot's activity
 * jobs, about one per delivery, all become missing_in_flow: about a million divergence rows, where
 * bench-analyze has about 145,000. Rewritten on every call (a few seconds; the runner removes it after
 * use). Returns its intents and runs.
 */
export async function ensureDriftReplay(store: string): Promise<{ id: string; intents: number; runs: number }> {
  const from = storePaths.replay(store, REPLAY_ID);
  const to = storePaths.replay(store, DRIFT_REPLAY_ID);
  await rm(to, { recursive: true, force: true });
  await mkdir(to, { recursive: true });
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  try {
    for (const file of ['flow_runs.parquet', 'node_runs.parquet']) {
      await conn.run(
        `COPY (SELECT * FROM read_parquet(${sqlString(join(from, file))}) WHERE flow <> 'activity-feed') TO ${sqlString(join(to, file))}
         (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 2048, KV_METADATA {hookshadow_replay_format_version: '${REPLAY_FORMAT_VERSION}'})`,
      );
    }
    const [row] = (
      await conn.runAndReadAll(
        `SELECT (SELECT count(*) FROM read_parquet(${sqlString(join(to, 'node_runs.parquet'))}) WHERE intent IS NOT NULL)::DOUBLE AS intents,
                (SELECT count(*) FROM read_parquet(${sqlString(join(to, 'node_runs.parquet'))}))::DOUBLE AS node_runs,
                (SELECT count(*) FROM read_parquet(${sqlString(join(to, 'flow_runs.parquet'))}))::DOUBLE AS runs`,
      )
    ).getRowObjectsJson() as { intents: number; node_runs: number; runs: number }[];
    const manifest = JSON.parse(await readFile(join(from, 'manifest.json'), 'utf8')) as ReplayManifest;
    const drift: ReplayManifest = {
      ...manifest,
      replay_id: DRIFT_REPLAY_ID,
      flow_modes: { ...manifest.flow_modes, 'activity-feed': 'off' },
      counts: { ...manifest.counts, runs: row!.runs, node_runs: row!.node_runs, intents: row!.intents },
    };
    await writeFile(join(to, 'manifest.json'), JSON.stringify(drift, null, 2) + '\n');
    return { id: DRIFT_REPLAY_ID, intents: row!.intents, runs: row!.runs };
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const arg = (name: string) => flag(argv, name);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(`Writes (or reuses) the analyze benchmark's store, flows and replay.
  --count N        deliveries (default 1000000)
  --seed N         generator seed (default 42)
  --data-dir DIR   default $HOOKSHADOW_BENCH_ANALYZE_DIR or /tmp/hookshadow-bench-analyze
  --check-only     only write the flows and check the divergence mix over the first 20,000 deliveries`);
    return;
  }
  const count = parseCount(arg('count'), 1_000_000);
  const seed = parseCount(arg('seed'), 42);
  const dir = arg('data-dir') ?? defaultDataDir();
  if (argv.includes('--check-only')) {
    const flows = join(dir, 'flows-check');
    await writeFlows(flows);
    const check = await checkFlows(flows, { sample: Math.min(count, 20_000), seed });
    console.log(JSON.stringify(check, null, 2));
    await rm(flows, { recursive: true, force: true });
    return;
  }
  await ensureAnalyzeData({ dir, count, seed });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}

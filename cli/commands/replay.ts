import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import cliProgress from 'cli-progress';
import { DuckDBInstance } from '@duckdb/node-api';
import { parseIsoUs } from '../../core/clock.js';
import { HsError } from '../../core/errors.js';
import { sqlString } from '../../core/sql.js';
import { DEFAULT_CONFIG, configFromEnv, parsePairs } from '../../recorder/config.js';
import type { UpstreamConfig } from '../../replayer/engine/capabilities.js';
import { replay, type ReplaySummary } from '../../replayer/replay.js';

interface ReplayFlags {
  store: string;
  flows: string;
  ops: string[];
  id?: string;
  since?: string;
  until?: string;
  mode: 'dry-run' | 'live';
  concurrency?: string;
  shard?: string;
  seed: string;
  upstream: string[];
  redeliverTo?: string;
  timings: boolean;
  format: 'text' | 'json';
}

/** Per flow: runs by status and intents by kind, read back from the replay's Parquet. */
interface Breakdown {
  flow: string;
  runs: number;
  ok: number;
  incomplete: number;
  failed: number;
  intents: number;
  kinds: string | null;
}

async function breakdown(dir: string): Promise<Breakdown[]> {
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  try {
    const reader = await conn.runAndReadAll(
      `WITH f AS (SELECT flow, count(*)::INTEGER AS runs, count(*) FILTER (status = 'ok')::INTEGER AS ok,
                         count(*) FILTER (status = 'incomplete')::INTEGER AS incomplete, count(*) FILTER (status = 'failed')::INTEGER AS failed
                  FROM read_parquet(${sqlString(join(dir, 'flow_runs.parquet'))}) GROUP BY flow),
            k AS (SELECT flow, intent->>'kind' AS kind, count(*) AS n FROM read_parquet(${sqlString(join(dir, 'node_runs.parquet'))})
                  WHERE intent IS NOT NULL GROUP BY ALL),
            i AS (SELECT flow, sum(n)::INTEGER AS intents, string_agg(kind || ' ' || n, ', ' ORDER BY n DESC, kind) AS kinds FROM k GROUP BY flow)
       SELECT f.*, coalesce(i.intents, 0) AS intents, i.kinds FROM f LEFT JOIN i USING (flow) ORDER BY runs DESC, flow`,
    );
    return reader.getRowObjectsJson() as unknown as Breakdown[];
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

function printText(s: ReplaySummary, flows: Breakdown[]): void {
  const out = [
    `replay ${s.replay_id} (${s.manifest.mode}, seed ${s.manifest.seed}, ${s.manifest.workers} worker${s.manifest.workers === 1 ? '' : 's'}) in ${s.seconds.toFixed(1)} s`,
    `  deliveries ${s.deliveries}   flow runs ${s.runs}   node runs ${s.node_runs}   intents ${s.intents}   failed runs ${s.errors}`,
    `  runs by status: ${Object.entries(s.runs_by_status).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`,
    '',
    `  ${'flow'.padEnd(24)} ${'runs'.padStart(6)} ${'ok'.padStart(6)} ${'incompl'.padStart(7)} ${'failed'.padStart(6)} ${'intents'.padStart(7)}  kinds`,
    ...flows.map((f) => `  ${f.flow.padEnd(24)} ${String(f.runs).padStart(6)} ${String(f.ok).padStart(6)} ${String(f.incomplete).padStart(7)} ${String(f.failed).padStart(6)} ${String(f.intents).padStart(7)}  ${f.kinds ?? '-'}`),
    '',
    `  output ${s.dir}/{flow_runs,node_runs}.parquet, manifest.json`,
    `  e.g. SELECT flow, node_id, intent FROM read_parquet('${s.dir}/node_runs.parquet') WHERE intent IS NOT NULL LIMIT 10;`,
  ];
  process.stdout.write(out.join('\n') + '\n');
}

function parseTime(flag: string, value: string | undefined): number | null {
  if (value === undefined) return null;
  const us = parseIsoUs(value) ?? parseIsoUs(`${value}T00:00:00Z`);
  if (us === null) throw new HsError('HS_ERR_USAGE', `${flag} expects an ISO time such as 2026-11-21T00:00:00Z or a date such as 2026-11-21, got ${JSON.stringify(value)}.`);
  return us;
}

function positiveInt(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new HsError('HS_ERR_USAGE', `${flag} must be a positive integer, got ${JSON.stringify(value)}.`);
  return n;
}

/** `--upstream NAME=URL`; tokens come from HOOKSHADOW_TOKEN_<NAME> so they never sit in shell history. */
export function upstreamsFrom(pairs: string[], env: NodeJS.ProcessEnv): Record<string, UpstreamConfig> {
  const out: Record<string, UpstreamConfig> = {};
  for (const [name, urls] of Object.entries(parsePairs(pairs, '--upstream'))) {
    const url = urls[urls.length - 1]!;
    if (!URL.canParse(url)) throw new HsError('HS_ERR_USAGE', `--upstream ${name}=... is not a URL.`);
    const token = env[`HOOKSHADOW_TOKEN_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`];
    out[name] = { url, ...(token ? { token } : {}) };
  }
  return out;
}

const collect = (value: string, previous: string[]) => [...previous, value];

/** Re-delivery signs with the recorder's secrets, from the same HOOKSHADOW_SECRET_<SOURCE> variables (first one of a comma list). */
function redeliverFrom(url: string, env: NodeJS.ProcessEnv): { url: string; secrets: Record<string, string> } {
  if (!URL.canParse(url)) throw new HsError('HS_ERR_USAGE', `--redeliver-to expects a URL, got ${JSON.stringify(url)}.`);
  const secrets = Object.fromEntries(Object.entries(configFromEnv(env).secrets ?? {}).map(([source, list]) => [source, list[0]!]));
  return { url, secrets };
}

export function replayCommand(): Command {
  return new Command('replay')
    .description('Run the flows over every captured delivery (dry-run: mutating nodes record their intent instead of acting) and write the runs into the store.')
    .requiredOption('--flows <dir>', 'directory of flow YAML files')
    .option('--store <dir>', 'capture store directory', DEFAULT_CONFIG.store)
    .option('--id <name>', 'replay id (default: a sortable generated id)')
    .option('--since <iso>', 'only deliveries received at or after this time')
    .option('--until <iso>', 'only deliveries received before this time')
    .addOption(new Option('--mode <mode>', 'dry-run records intents; live calls the upstreams').choices(['dry-run', 'live']).default('dry-run'))
    .option('--concurrency <n>', `worker threads (default: one per core, ${availableParallelism()} here; fewer for small stores)`)
    .option('--shard <k/n>', 'replay only shard K of N (by a hash of delivery_id), for parallel CI jobs')
    .option('--seed <n>', 'seed for synthetic ids (the same seed gives byte-identical output)', '0')
    .option('--upstream <name=url>', 'live mode: an upstream the ops may call (repeatable); token from HOOKSHADOW_TOKEN_<NAME>', collect, [])
    .option('--redeliver-to <url>', 're-send every delivery to this webhook URL, re-signed with HOOKSHADOW_SECRET_<SOURCE> (e.g. a staging legacy handler)')
    .option('--ops <module>', 'a JavaScript or TypeScript module exporting extra ops (repeatable)', collect, [])
    .option('--no-timings', 'write 0 for durations, so two replays of the same input give byte-identical files')
    .addOption(new Option('--format <format>', 'summary format').choices(['text', 'json']).default('text'))
    .addHelpText(
      'after',
      `
Exit codes: 0 when the replay completed (node failures are data, in the output); 1 when it
could not run (invalid flows, unreadable store, missing capabilities); 2 for usage errors.

Examples:
  hookshadow replay --flows fixtures/flows
  hookshadow replay --flows flows/ --since 2026-11-01 --shard 2/4 --format json`,
    )
    .action(async (flags: ReplayFlags) => {
      const seed = Number(flags.seed);
      if (!Number.isInteger(seed)) throw new HsError('HS_ERR_USAGE', `--seed must be an integer.`);
      let shard: { k: number; n: number } | null = null;
      if (flags.shard !== undefined) {
        const m = /^(\d+)\/(\d+)$/.exec(flags.shard);
        if (!m) throw new HsError('HS_ERR_USAGE', `--shard must be K/N, e.g. 2/4.`);
        shard = { k: Number(m[1]), n: Number(m[2]) };
      }
      const bar =
        process.stderr.isTTY && flags.format === 'text'
          ? new cliProgress.SingleBar({ format: 'replaying {bar} {value}/{total} deliveries | {speed}/s | ETA {eta_formatted}', stream: process.stderr }, cliProgress.Presets.shades_classic)
          : null;
      const t0 = performance.now();
      let done = 0;
      const summary = await replay({
        store: flags.store,
        flowsDir: flags.flows,
        opsModules: flags.ops,
        ...(flags.id !== undefined ? { id: flags.id } : {}),
        sinceUs: parseTime('--since', flags.since),
        untilUs: parseTime('--until', flags.until),
        mode: flags.mode,
        ...(flags.concurrency !== undefined ? { concurrency: positiveInt('--concurrency', flags.concurrency) } : {}),
        shard,
        seed,
        timings: flags.timings,
        upstreams: upstreamsFrom(flags.upstream, process.env),
        redeliver: flags.redeliverTo ? redeliverFrom(flags.redeliverTo, process.env) : null,
        onStart: (total) => bar?.start(total, 0, { speed: '0' }),
        onProgress: (n) => {
          done += n;
          bar?.update(done, { speed: Math.round(done / ((performance.now() - t0) / 1000)).toString() });
        },
      }).finally(() => bar?.stop());
      if (flags.format === 'json') {
        const { manifest, ...rest } = summary;
        process.stdout.write(JSON.stringify({ ...rest, flows_digest: manifest.flows_digest }) + '\n');
      } else {
        printText(summary, await breakdown(summary.dir));
      }
    });
}

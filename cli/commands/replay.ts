import { availableParallelism } from 'node:os';
import { Command, Option } from 'commander';
import cliProgress from 'cli-progress';
import { parseIsoUs } from '../../core/clock.js';
import { HsError } from '../../core/errors.js';
import { DEFAULT_CONFIG, configFromEnv, parsePairs } from '../../recorder/config.js';
import type { UpstreamConfig } from '../../replayer/engine/capabilities.js';
import { MODES, type Mode } from '../../replayer/flows/model.js';
import { replay } from '../../replayer/replay.js';
import { printReplayText, replayBreakdown } from '../replay-report.js';
import { collect } from '../options.js';

interface ReplayFlags {
  store: string;
  flows: string;
  ops: string[];
  id?: string;
  since?: string;
  until?: string;
  mode: Mode;
  flowMode: string[];
  concurrency?: string;
  shard?: string;
  seed: string;
  upstream: string[];
  redeliverTo?: string;
  liveReads?: boolean;
  timings: boolean;
  format: 'text' | 'json';
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

function flowModesFrom(pairs: string[]): Record<string, Mode> {
  const out: Record<string, Mode> = {};
  for (const [name, values] of Object.entries(parsePairs(pairs, '--flow-mode'))) {
    const mode = values[values.length - 1]!;
    if (!(MODES as readonly string[]).includes(mode)) throw new HsError('HS_ERR_USAGE', `--flow-mode ${name}=${mode}: the mode must be one of ${MODES.join(', ')}.`);
    out[name] = mode as Mode;
  }
  return out;
}

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
    .addOption(new Option('--mode <mode>', 'every flow\'s mode: dry-run records intents, live calls the upstreams, off skips').choices([...MODES]).default('dry-run'))
    .option('--flow-mode <name=mode>', 'one flow\'s mode, overriding --mode (repeatable)', collect, [])
    .option('--concurrency <n>', `worker threads (default: one per core, ${availableParallelism()} here; fewer for small stores)`)
    .option('--shard <k/n>', 'replay only shard K of N (by a hash of delivery_id), for parallel CI jobs')
    .option('--seed <n>', 'seed for synthetic ids (the same seed gives byte-identical output)', '0')
    .option('--upstream <name=url>', 'an upstream live flows and --live-reads may call (repeatable); token from HOOKSHADOW_TOKEN_<NAME>', collect, [])
    .option('--live-reads', 'dry-run reads call the --upstreams instead of replaying what the legacy handler read (mutations still only record intents)')
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
        flowModes: flowModesFrom(flags.flowMode),
        ...(flags.concurrency !== undefined ? { concurrency: positiveInt('--concurrency', flags.concurrency) } : {}),
        shard,
        seed,
        timings: flags.timings,
        upstreams: upstreamsFrom(flags.upstream, process.env),
        liveReads: flags.liveReads ?? false,
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
        printReplayText(summary, await replayBreakdown(summary.dir));
      }
    });
}

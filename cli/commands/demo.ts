import { join } from 'node:path';
import { Command, Option } from 'commander';
import cliProgress from 'cli-progress';
import { systemClock } from '../../core/clock.js';
import { HsError } from '../../core/errors.js';
import { openStoreReader } from '../../core/store/reader.js';
import { DEFAULT_CONFIG } from '../../recorder/config.js';
import { generateDeliveries } from '../../fixtures/generator/deliveries.js';
import { sendDeliveries } from '../../fixtures/generator/send.js';
import { DEMO_SECRETS, startDemoStack } from '../../fixtures/stack.js';
import { PACKAGE_ROOT } from '../../core/version.js';
import { analyze } from '../../analyzer/analyze.js';
import { renderText } from '../../analyzer/report/text.js';
import { replay } from '../../replayer/replay.js';
import { printReplayText, replayBreakdown } from '../replay-report.js';

interface DemoFlags {
  store: string;
  count: string;
  seed: string;
  concurrency: string;
  format: 'text' | 'json';
}

/** What one demo run captured, read back from the store's Parquet with DuckDB. */
export interface DemoSummary {
  store: string;
  sent: number;
  acknowledged: number;
  seconds: number;
  deliveries: { source: string; event: string | null; action: string | null; count: number }[];
  signatures: { valid: number; invalid: number };
  effects: { method: string; route: string; correlation: string; count: number }[];
  exchanges: number;
}

async function summarize(store: string, sinceUs: number): Promise<Omit<DemoSummary, 'sent' | 'acknowledged' | 'seconds'>> {
  const reader = await openStoreReader(store);
  try {
    const since = [sinceUs];
    const deliveries = await reader.query<DemoSummary['deliveries'][number]>(
      `SELECT source, event, action, count(*)::INTEGER AS count FROM deliveries
       WHERE received_at >= make_timestamp($1) GROUP BY ALL ORDER BY count DESC, source, event, action`,
      since,
    );
    const [sig] = await reader.query<{ valid: number; invalid: number }>(
      `SELECT count(*) FILTER (signature_valid)::INTEGER AS valid, count(*) FILTER (NOT signature_valid)::INTEGER AS invalid
       FROM deliveries WHERE received_at >= make_timestamp($1)`,
      since,
    );
    // Route templates: owner/repo and numbers abstracted, so the same call on different issues groups together.
    const effects = await reader.query<DemoSummary['effects'][number]>(
      `SELECT method,
              regexp_replace(regexp_replace(split_part(path, '?', 1), '/repos/[^/]+/[^/]+', '/repos/{owner}/{repo}'), '/[0-9]+', '/{n}', 'g') AS route,
              correlation, count(*)::INTEGER AS count
       FROM effects WHERE observed_at >= make_timestamp($1) GROUP BY ALL ORDER BY count DESC, route`,
      since,
    );
    const [ex] = await reader.query<{ n: number }>(`SELECT count(*)::INTEGER AS n FROM exchanges WHERE observed_at >= make_timestamp($1)`, since);
    return { store, deliveries, signatures: sig ?? { valid: 0, invalid: 0 }, effects, exchanges: ex?.n ?? 0 };
  } finally {
    reader.close();
  }
}

function printText(s: DemoSummary): void {
  const out: string[] = [];
  const total = s.deliveries.reduce((n, d) => n + d.count, 0);
  const effects = s.effects.reduce((n, e) => n + e.count, 0);
  const byCorrelation = new Map<string, number>();
  for (const e of s.effects) byCorrelation.set(e.correlation, (byCorrelation.get(e.correlation) ?? 0) + e.count);
  out.push(`hookshadow demo: recorder in tee mode in front of the demo legacy bot (fixtures/legacy-bot)`);
  out.push(`  sent ${s.sent} signed deliveries, ${s.acknowledged} acknowledged, in ${s.seconds.toFixed(1)} s`);
  out.push(`  store ${s.store}`);
  out.push('');
  out.push(`Captured this run (read back from Parquet with DuckDB):`);
  out.push(`  deliveries ${total}  (signature valid ${s.signatures.valid}, invalid ${s.signatures.invalid})`);
  for (const d of s.deliveries.slice(0, 12)) {
    out.push(`    ${d.source.padEnd(8)} ${(d.event ?? '-').padEnd(28)} ${(d.action ?? '-').padEnd(14)} ${String(d.count).padStart(5)}`);
  }
  if (s.deliveries.length > 12) out.push(`    ... ${s.deliveries.length - 12} more event/action groups`);
  out.push(`  effects ${effects}  (${[...byCorrelation].map(([c, n]) => `${c} ${n}`).join(', ') || 'none'})`);
  for (const e of s.effects) out.push(`    ${e.method.padEnd(6)} ${e.route.padEnd(54)} ${e.correlation.padEnd(8)} ${String(e.count).padStart(5)}`);
  out.push(`  exchanges ${s.exchanges}  (the bot's reads, kept for hermetic replay)`);
  out.push('');
  out.push(`Query it yourself:  hookshadow's views are plain Parquet, e.g. in the DuckDB CLI:`);
  out.push(`  SELECT event, action, count(*) FROM read_parquet('${s.store}/deliveries/*/*.parquet', hive_partitioning=true) GROUP BY ALL;`);
  process.stdout.write(out.join('\n') + '\n');
}

export function demoCommand(): Command {
  return new Command('demo')
    .description('Start the recorder in tee mode in front of the bundled demo legacy bot and forge stub, drive example deliveries through it, print what was captured, then replay the bundled flows over it in dry-run.')
    .option('--store <dir>', 'capture store directory', DEFAULT_CONFIG.store)
    .option('--count <n>', 'number of deliveries to send', '200')
    .option('--seed <n>', 'generator seed (same seed, same deliveries)', '1')
    .option('--concurrency <n>', 'deliveries in flight at once', '8')
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
    .action(async (flags: DemoFlags) => {
      const [count, seed, concurrency] = [flags.count, flags.seed, flags.concurrency].map(Number) as [number, number, number];
      if (!Number.isInteger(count) || count < 1) throw new HsError('HS_ERR_USAGE', '--count must be a positive integer.');
      if (!Number.isInteger(concurrency) || concurrency < 1) throw new HsError('HS_ERR_USAGE', '--concurrency must be a positive integer.');
      if (!Number.isInteger(seed)) throw new HsError('HS_ERR_USAGE', '--seed must be an integer.');
      const startedUs = systemClock.nowUs();
      const stack = await startDemoStack({ store: flags.store });
      const bar =
        process.stderr.isTTY && flags.format === 'text'
          ? new cliProgress.SingleBar({ format: 'deliveries {bar} {value}/{total} | {eta_formatted} left', stream: process.stderr }, cliProgress.Presets.shades_classic)
          : null;
      bar?.start(count, 0);
      const started = performance.now();
      let results;
      try {
        results = await sendDeliveries(stack.recorder.url, generateDeliveries({ count, seed, secrets: DEMO_SECRETS }), {
          concurrency,
          onResult: () => bar?.increment(),
        });
      } finally {
        bar?.stop();
        await stack.stop();
      }
      const seconds = (performance.now() - started) / 1000;
      const acknowledged = results.filter((r) => r.status !== null && r.status < 300).length;
      const summary: DemoSummary = { ...(await summarize(flags.store, startedUs)), sent: count, acknowledged, seconds };
      if (flags.format === 'text') printText(summary);
      // Then what the flows would have done with the same deliveries: a dry-run replay of the bundled flows.
      const flowsDir = join(PACKAGE_ROOT, 'fixtures', 'flows');
      const replayed = await replay({ store: flags.store, flowsDir, sinceUs: startedUs });
      // And the audit: the replay's intents against what the legacy bot actually did.
      const analysis = await analyze({ store: flags.store, replay: replayed.replay_id, limit: 5 });
      if (flags.format === 'json') {
        const { manifest: _manifest, ...rest } = replayed;
        process.stdout.write(JSON.stringify({ ...summary, replay: rest, analysis: { totals: analysis.totals, counts_by_class: analysis.counts_by_class, by_flow: analysis.by_flow } }, null, 2) + '\n');
      } else {
        process.stdout.write(`\nReplayed the flows in ${flowsDir} over these deliveries (dry-run: intents recorded, nothing sent):\n`);
        printReplayText(replayed, await replayBreakdown(replayed.dir));
        process.stdout.write(`\nCompared with what the legacy bot did (hookshadow analyze):\n`);
        process.stdout.write(renderText(analysis));
        process.stdout.write(
          `\nThe divergence is deliberate (fixtures/flows/retry-agent.yaml): the flow re-adds agent-running on /retry; the legacy bot does not.\n` +
            `Explore it: npx hookshadow sql${flags.store === DEFAULT_CONFIG.store ? '' : ` --store ${flags.store}`} "SELECT flow, node_id, kind, target, class FROM divergences"\n`,
        );
      }
    });
}

import { writeFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import cliProgress from 'cli-progress';
import { HsError } from '../../core/errors.js';
import { DEFAULT_CONFIG } from '../../recorder/config.js';
import { analyze, DEFAULT_MEMORY_MB } from '../../analyzer/analyze.js';
import { detectNoiseReplay } from '../../analyzer/noise-replay.js';
import { renderHtml } from '../../analyzer/report/html.js';
import { renderJUnit } from '../../analyzer/report/junit.js';
import { renderMarkdown } from '../../analyzer/report/markdown.js';
import { renderText } from '../../analyzer/report/text.js';
import type { AnalysisResult } from '../../analyzer/result.js';
import { readReplayManifest, resolveReplayId } from '../../replayer/replays.js';
import { collect } from '../options.js';

export const FORMATS = ['text', 'json', 'md', 'junit', 'html'] as const;
export const FAIL_ON = ['any', 'new', 'none'] as const;

interface AnalyzeFlags {
  store: string;
  replay: string;
  rules?: string;
  routes: string[];
  baseline?: string;
  noiseReplay?: string;
  detectNoise?: boolean;
  excludeNoise?: boolean;
  flows?: string;
  ops: string[];
  limit: string;
  memoryLimit: string;
  format: (typeof FORMATS)[number];
  out?: string;
  failOn: (typeof FAIL_ON)[number];
}

/** Whether the result fails the build under `--fail-on` (stale rules fail it too: a rule nobody maintains hides nothing honestly). */
export function failsOn(result: AnalysisResult, failOn: (typeof FAIL_ON)[number]): boolean {
  if (failOn === 'none') return false;
  const stale = result.rules.expired.length + result.rules.unused.length > 0;
  if (failOn === 'new') return stale || (result.baseline?.introduced_total ?? 0) > 0;
  return stale || result.totals.unexpected > 0;
}

export async function render(result: AnalysisResult, format: (typeof FORMATS)[number]): Promise<string> {
  switch (format) {
    case 'json':
      return JSON.stringify(result, null, 2) + '\n';
    case 'md':
      return renderMarkdown(result);
    case 'junit':
      return renderJUnit(result);
    case 'html':
      return renderHtml(result);
    default:
      return renderText(result);
  }
}

export function analyzeCommand(): Command {
  return new Command('analyze')
    .description(
      "Compare a replay's intents with what the legacy handler actually did, delivery by delivery; write replays/<id>/divergences.parquet and analysis.json and report.",
    )
    .option('--store <dir>', 'capture store directory', DEFAULT_CONFIG.store)
    .option('--replay <id>', 'the replay to analyze: an id or "latest"', 'latest')
    .option('--rules <file>', 'normalize and expect rules (YAML; see specs/divergence.md)')
    .option('--routes <file>', 'an extra route map for legacy calls (repeatable; tried before the built-in GitHub, Gitea and agent maps)', collect, [])
    .option('--baseline <id>', 'an earlier replay of the same deliveries: report divergences introduced and resolved since')
    .option('--noise-replay <id>', 'a replay of the same deliveries with another seed and clock, to measure nondeterministic paths')
    .option('--detect-noise', 'run that second replay now (seed + 1, clock + 1h01m01s) into <id>.noise; needs --flows')
    .option('--exclude-noise', 'mark args differences at noisy paths as expected (noise:<kind>:<path>) instead of only reporting them')
    .option('--flows <dir>', 'flow directory, for --detect-noise')
    .option('--ops <module>', 'extra ops module, for --detect-noise (repeatable)', collect, [])
    .option('--limit <n>', 'divergent deliveries listed in full in the report', '1000')
    .option('--memory-limit <mb>', "DuckDB's memory for the matching, in MB; beyond it, it spills to disk in the replay's directory", String(DEFAULT_MEMORY_MB))
    .addOption(new Option('--format <format>', 'report format').choices(FORMATS).default('text'))
    .option('--out <file>', 'write the report to FILE instead of stdout')
    .addOption(new Option('--fail-on <when>', 'exit 1 on: any unexpected divergence, new ones against --baseline, or none').choices(FAIL_ON).default('any'))
    .addHelpText(
      'after',
      `
Exit codes: 0 when nothing fails under --fail-on; 1 when it does (unexpected or, with "new", introduced
divergences; expired or unused rules under "any" and "new"), or the analysis could not run; 2 for usage errors.

Examples:
  hookshadow analyze --store ./.hookshadow/store
  hookshadow analyze --rules rules.yaml --format junit --out divergences.xml
  hookshadow analyze --replay branch-42 --baseline main-42 --fail-on new --format md --out comment.md
  hookshadow analyze --detect-noise --flows ./flows --exclude-noise`,
    )
    .action(async (flags: AnalyzeFlags) => {
      const limit = Number(flags.limit);
      if (!Number.isInteger(limit) || limit < 0) throw new HsError('HS_ERR_USAGE', `--limit must be a non-negative integer, got ${JSON.stringify(flags.limit)}.`);
      const memoryMb = Number(flags.memoryLimit);
      if (!Number.isInteger(memoryMb) || memoryMb < 1) throw new HsError('HS_ERR_USAGE', `--memory-limit must be a whole number of MB, at least 1, got ${JSON.stringify(flags.memoryLimit)}.`);
      if (flags.failOn === 'new' && !flags.baseline) throw new HsError('HS_ERR_USAGE', '--fail-on new needs --baseline ID: "new" means introduced since that replay.');
      if (flags.detectNoise && flags.noiseReplay) throw new HsError('HS_ERR_USAGE', 'Give --detect-noise or --noise-replay, not both.');
      if (flags.detectNoise && !flags.flows) throw new HsError('HS_ERR_USAGE', '--detect-noise replays the flows again: give --flows DIR (the same flows as the replay).');
      if (flags.excludeNoise && !flags.detectNoise && !flags.noiseReplay) throw new HsError('HS_ERR_USAGE', '--exclude-noise needs --detect-noise or --noise-replay.');

      const replayId = await resolveReplayId(flags.store, flags.replay);
      let noiseReplay = flags.noiseReplay;
      if (flags.detectNoise) {
        const manifest = (await readReplayManifest(flags.store, replayId))!;
        noiseReplay = await detectNoiseReplay({ store: flags.store, flowsDir: flags.flows!, opsModules: flags.ops, manifest });
      }
      const bar = process.stderr.isTTY ? new cliProgress.SingleBar({ format: 'analyzing: {value} deliveries compared', stream: process.stderr }, cliProgress.Presets.shades_classic) : null;
      bar?.start(0, 0);
      const result = await analyze({
        store: flags.store,
        replay: replayId,
        rulesFile: flags.rules ?? null,
        routeFiles: flags.routes,
        baseline: flags.baseline ?? null,
        noise: noiseReplay ? { replay: noiseReplay, exclude: flags.excludeNoise ?? false } : null,
        limit,
        memoryMb,
        ...(bar ? { onProgress: (n: number) => bar.update(n) } : {}),
      }).finally(() => bar?.stop());

      const text = await render(result, flags.format);
      if (flags.out) await writeFile(flags.out, text);
      else process.stdout.write(text);
      if (failsOn(result, flags.failOn)) process.exitCode = 1;
    });
}

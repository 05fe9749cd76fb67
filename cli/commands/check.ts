import { randomInt } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import cliProgress from 'cli-progress';
import { defaultChecks, loadChecks } from '../../analyzer/checks/checks-file.js';
import { renderCheckJUnit, renderCheckText } from '../../analyzer/checks/report.js';
import { runChecks, type CheckReport } from '../../analyzer/checks/run.js';
import { HsError } from '../../core/errors.js';
import { configFromEnv, DEFAULT_CONFIG } from '../../recorder/config.js';
import { collect } from '../options.js';

export const CHECK_FORMATS = ['text', 'json', 'junit'] as const;

interface CheckFlags {
  store: string;
  flows: string;
  checks?: string;
  seed?: string;
  runs: string;
  timeBudget?: string;
  save: string | false;
  regressions: string[];
  property: string[];
  path?: string;
  perShape: string;
  ops: string[];
  format: (typeof CHECK_FORMATS)[number];
  out?: string;
}

function integer(flag: string, value: string, min: number): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) throw new HsError('HS_ERR_USAGE', `${flag} must be an integer of at least ${min}, got ${JSON.stringify(value)}.`);
  return n;
}

const quote = (s: string) => (/^[\w./:=@-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`);

export function render(report: CheckReport, format: (typeof CHECK_FORMATS)[number]): string {
  if (format === 'json') return `${JSON.stringify(report, null, 2)}\n`;
  if (format === 'junit') return renderCheckJUnit(report);
  return renderCheckText(report);
}

export function checkCommand(): Command {
  return new Command('check')
    .description('Search for deliveries that break a flow: property-based checks (fast-check) over cases made from the captures, shrunk, saved as replayable fixtures.')
    .requiredOption('--flows <dir>', 'directory of flow YAML files')
    .option('--store <dir>', 'capture store to sample deliveries from', DEFAULT_CONFIG.store)
    .option('--checks <file>', 'which properties apply to which flows, SQL invariants, the legacy oracle (YAML; see specs/checks.md)')
    .option('--seed <n>', 'fast-check seed (default: random, always printed; fix it in CI)')
    .option('--runs <n>', 'cases per property (0: only the --regressions)', '100')
    .option('--time-budget <seconds>', 'bound the whole run; properties share what is left')
    .option('--save <dir>', 'where new counterexamples are saved as fixtures', 'fixtures/regressions')
    .option('--no-save', 'do not save counterexamples')
    .option('--regressions <dir>', 'replay the saved counterexamples in DIR (or the one fixture DIR is) first (repeatable)', collect, [])
    .option('--property <name>', 'check only this property, or invariant:<name> (repeatable)', collect, [])
    .option('--path <path>', "replay one case: fast-check's counterexample path, with --seed and one --property")
    .option('--per-shape <n>', 'deliveries sampled per (source, event, action)', '20')
    .option('--ops <module>', 'a JavaScript or TypeScript module exporting extra ops (repeatable)', collect, [])
    .addOption(new Option('--format <format>', 'report format').choices(CHECK_FORMATS).default('text'))
    .option('--out <file>', 'write the report to FILE instead of stdout')
    .addHelpText(
      'after',
      `
Properties: deterministic, dry-run-is-inert, redelivery-idempotent, trigger-consistent,
irrelevant-fields-inert, legacy-parity (with a legacy oracle), and the checks file's SQL invariants.

Exit codes: 0 when every property and regression holds; 1 when one fails (the report shows the
shrunk delivery, the differing intents and the command that reproduces it) or the check could
not run; 2 for usage errors and invalid checks files.

Examples:
  hookshadow check --flows fixtures/flows --seed 42
  hookshadow check --flows ./flows --checks checks.yaml --regressions fixtures/regressions --time-budget 120 --format junit --out check.xml
  hookshadow check --flows ./flows --regressions fixtures/regressions/deterministic-0a1b2c3d4e5f --runs 0`,
    )
    .action(async (flags: CheckFlags) => {
      const seed = flags.seed === undefined ? randomInt(2 ** 31) : integer('--seed', flags.seed, -(2 ** 31));
      const runs = integer('--runs', flags.runs, 0);
      const perShape = integer('--per-shape', flags.perShape, 1);
      const timeBudgetMs = flags.timeBudget === undefined ? null : integer('--time-budget', flags.timeBudget, 1) * 1000;
      if (flags.path && flags.property.length !== 1) throw new HsError('HS_ERR_USAGE', '--path replays one case of one property: give exactly one --property.');
      const checks = flags.checks ? await loadChecks(flags.checks) : defaultChecks();
      // The seed goes to stderr first, so even a run that dies can be reproduced.
      process.stderr.write(`hookshadow check: seed ${seed}\n`);

      const common = ['hookshadow check', `--flows ${quote(flags.flows)}`, ...(flags.checks ? [`--checks ${quote(flags.checks)}`] : []), ...flags.ops.map((m) => `--ops ${quote(m)}`)];
      const reproduce = (fixture: string | null, property: string, path: string | null) =>
        fixture
          ? [...common, `--regressions ${quote(fixture)}`, '--runs 0'].join(' ')
          : [...common, `--store ${quote(flags.store)}`, `--seed ${seed}`, `--property ${quote(property)}`, ...(path ? [`--path ${quote(path)}`] : []), `--per-shape ${perShape}`].join(' ');

      const bar = process.stderr.isTTY ? new cliProgress.SingleBar({ format: '{property} [{bar}] {value}/{total} cases', stream: process.stderr }, cliProgress.Presets.shades_classic) : null;
      const report = await runChecks({
        store: runs > 0 ? flags.store : null,
        flowsDir: flags.flows,
        opsModules: flags.ops,
        opsBaseDir: process.cwd(),
        checks,
        seed,
        runs,
        timeBudgetMs,
        save: flags.save === false ? null : flags.save,
        regressions: flags.regressions,
        only: flags.property,
        path: flags.path ?? null,
        perShape,
        // The oracle re-signs what it sends with the recorder's secrets (HOOKSHADOW_SECRET_<SOURCE>, the first of a list).
        secrets: Object.fromEntries(Object.entries(configFromEnv(process.env).secrets ?? {}).map(([source, list]) => [source, list[0]!])),
        reproduce,
        onProgress: (e) => {
          if (!bar) return;
          if (e.type === 'property') bar.start(e.total, 0, { property: e.name });
          else if (e.type === 'run') bar.increment();
          else bar.stop();
        },
      }).finally(() => bar?.stop());

      const text = render(report, flags.format);
      if (flags.out) await writeFile(flags.out, text);
      else process.stdout.write(text);
      if (report.failed) process.exitCode = 1;
    });
}

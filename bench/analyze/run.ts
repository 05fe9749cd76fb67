/**
 * Analyze benchmark: how long `hookshadow analyze` takes over a large replay, against the floor of
 * reading the same Parquet files once, side by side in one run; and how long the `daily_summary` view
 * takes over 10,000,000 deliveries.
 *
 *   npm run bench:analyze -- [--count 1000000] [--repeats 3] [--daily-count 10000000] ...
 *
 * 1. Data (cached under --data-dir, default $HOOKSHADOW_BENCH_ANALYZE_DIR or /tmp/hookshadow-bench-analyze):
 *    bench/analyze/data.ts writes a store of --count deliveries with ~2 legacy effects each through the
 *    recorder's writer and replays flows over it with the real replayer (dry-run); daily-store.ts writes
 *    the 10M-delivery store and its replay files directly with DuckDB SQL.
 * 2. Phases, interleaved --repeats times (floor, analyze, analyze-timed, floor, ...), each in its own
 *    process under /usr/bin/time (wall from spawn to exit; peak RSS = max resident set, every thread):
 *      floor          child.ts floor: a bare DuckDB scan of every column analyze reads, once;
 *      analyze        the built CLI as shipped: `node <build>/cli/main.js analyze --store S --replay bench-analyze
 *                     --format json --out /dev/null --fail-on none`. A run that fails (exit ≠ 0) is reported as
 *                     such; one that succeeds is checked against the replay: did it compare every legacy
 *                     effect and intent?
 *      analyze-timed  instrumented.ts: analyze() in-process with every statement timed (and, as a what-if,
 *                     --timed-settings): gives where the time goes.
 *    The page cache is warmed first (every Parquet file read once), so every phase reads from memory.
 * 3. Daily summary: child.ts daily, in its own process: openAnalysisReader on the 10M store, the first
 *    `SELECT * FROM daily_summary` (cold: a fresh process and DuckDB, warm page cache), then
 *    --daily-repeats more (the figure is their median), then one under DuckDB's profiler.
 * 4. --profile: one more analyze-timed run under `node --cpu-prof`, summarised (JS thread only; DuckDB's
 *    own threads do not show in a V8 profile).
 *
 * The CLI and children run from the same build as this file, so a private copy of dist/ measures one
 * commit even while dist/ is rebuilt (BENCH_GIT_REV then names the commit).
 *
 * Prints markdown tables and writes the raw figures to --out (default bench/out/analyze.json).
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { storePaths } from '../../core/store/layout.js';
import type { AnalysisResult } from '../../analyzer/result.js';
import { repoRoot } from '../replay/flows.js';
import { parseCount } from '../replay/make-store.js';
import { parseFlags } from '../shared/args.js';
import { gitDirty, gitHead, hostInfo, machineBusySeconds, packageVersion } from '../shared/machine.js';
import { warmPageCache } from '../shared/page-cache.js';
import { mdTable, num, round } from '../shared/report.js';
import type { PhaseSpec } from './child.js';
import type { InstrumentedSpec, StatementTiming } from './instrumented.js';
import { DAILY_REPLAY_ID, ensureDailyStore } from './daily-store.js';
import { REPLAY_ID, dataPaths, defaultDataDir, ensureAnalyzeData, ensureDriftReplay, type DataInfo } from './data.js';

const HELP = `Analyze benchmark.
  --count N           deliveries in the analyze store             (default 1000000)
  --seed N            generator seed                              (default 42)
  --data-dir DIR      cached stores and replays (default $HOOKSHADOW_BENCH_ANALYZE_DIR or /tmp/hookshadow-bench-analyze)
  --repeats N         floor / analyze pairs, interleaved          (default 3)
  --daily-count N     deliveries in the daily-summary store       (default 10000000)
  --daily-days N      UTC days they spread over                   (default 30)
  --daily-repeats N   daily_summary queries after the first       (default 5)
  --phases LIST       run in this order each repeat: floor, analyze, analyze-timed (default all three)
  --timed-settings S  SQL run after analyze sets its memory limit, in analyze-timed: a what-if
                      such as "SET threads = 1"                   (default none: as shipped)
  --skip-analyze      only the daily summary
  --skip-daily        only analyze vs floor
  --drift             also analyze a replay with ~1M divergence rows (activity-feed off; see data.ts
                      ensureDriftReplay): the CLI once, and analyze-timed once with its appender on a
                      second connection
  --profile           one more analyze-timed run under --cpu-prof, summarised (bench/out/analyze-prof/)
  --out FILE          JSON output                                 (default bench/out/analyze.json)`;

function parseArgs(argv: string[]) {
  const flags = parseFlags(argv, HELP, ['skip-analyze', 'skip-daily', 'profile', 'drift']);
  const phases = (flags.get('phases') ?? PHASES.join(',')).split(',').map((x) => x.trim()).filter(Boolean);
  for (const p of phases) if (!(PHASES as readonly string[]).includes(p)) throw new Error(`unknown phase ${p}; use ${PHASES.join(',')}`);
  if (!phases.includes('floor')) throw new Error('--phases must include floor: the ratios are against it');
  return {
    phases: phases as PhaseName[],
    timedSettings: flags.get('timed-settings') ?? '',
    count: parseCount(flags.get('count'), 1_000_000),
    seed: parseCount(flags.get('seed'), 42),
    dataDir: flags.get('data-dir') ?? defaultDataDir(),
    repeats: parseCount(flags.get('repeats'), 3),
    dailyCount: parseCount(flags.get('daily-count'), 10_000_000),
    dailyDays: parseCount(flags.get('daily-days'), 30),
    dailyRepeats: parseCount(flags.get('daily-repeats'), 5),
    analyze: flags.get('skip-analyze') !== 'true',
    daily: flags.get('skip-daily') !== 'true',
    profile: flags.get('profile') === 'true',
    drift: flags.get('drift') === 'true',
    out: flags.get('out') ?? join(repoRoot(), 'bench', 'out', 'analyze.json'),
  };
}

const MiB = 2 ** 20;
const CHILD_JS = fileURLToPath(new URL('./child.js', import.meta.url));
const INSTRUMENTED_JS = fileURLToPath(new URL('./instrumented.js', import.meta.url));

const PHASES = ['floor', 'analyze', 'analyze-timed'] as const;
type PhaseName = (typeof PHASES)[number];
const LABELS: Record<PhaseName, string> = {
  floor: 'floor: bare DuckDB scan',
  analyze: 'hookshadow analyze (CLI, as shipped)',
  'analyze-timed': 'analyze() in-process, statements timed (+ --timed-settings, if any)',
};
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function machine() {
  const root = repoRoot();
  return {
    ...hostInfo(),
    duckdbNodeApi: packageVersion(root, '@duckdb/node-api'),
    /** BENCH_GIT_REV names the commit when running from a copy of dist/ built earlier (the checkout may have moved on). */
    git: process.env.BENCH_GIT_REV ?? gitHead(root),
    gitDirty: process.env.BENCH_GIT_REV ? null : gitDirty(root),
    build: fileURLToPath(new URL('../..', import.meta.url)),
  };
}

interface Timed {
  name: string;
  /** Spawn to exit, measured here. */
  wallSeconds: number;
  /** /usr/bin/time: maximum resident set size of the process (KiB), user and system CPU seconds. */
  maxRssKiB: number;
  userSeconds: number;
  systemSeconds: number;
  /** Cores other processes kept busy meanwhile (machine busy CPU minus this process's, over wall); ~0 when undisturbed. */
  otherCores: number;
  loadAvgAtStart: number;
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node <args>` under /usr/bin/time in the repository root; resolves when it exits. */
async function timed(name: string, nodeArgs: string[]): Promise<Timed> {
  const timeFile = join(tmpdir(), `hookshadow-bench-analyze-time-${process.pid}`);
  const loadAvgAtStart = loadavg()[0]!;
  const busy0 = machineBusySeconds();
  const t0 = performance.now();
  const child = spawn('/usr/bin/time', ['-f', '%e %M %U %S', '-o', timeFile, process.execPath, ...nodeArgs], { cwd: repoRoot(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const exitCode = await new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const wallSeconds = (performance.now() - t0) / 1000;
  const busy = machineBusySeconds() - busy0;
  const [, rss, user, sys] = readFileSync(timeFile, 'utf8').trim().split('\n').at(-1)!.split(' ').map(Number) as [number, number, number, number];
  rmSync(timeFile, { force: true });
  return { name, wallSeconds, maxRssKiB: rss, userSeconds: user, systemSeconds: sys, otherCores: (busy - user - sys) / wallSeconds, loadAvgAtStart, exitCode, stdout, stderr };
}

function resultOf(t: Timed): Record<string, any> {
  if (t.exitCode !== 0) throw new Error(`${t.name} exited with ${t.exitCode}:\n${t.stderr.slice(-3000)}`);
  const line = t.stdout.split('\n').find((l) => l.startsWith('{"event":"result"'));
  if (!line) throw new Error(`${t.name} printed no result:\n${t.stdout.slice(-2000)}\n${t.stderr.slice(-2000)}`);
  return JSON.parse(line) as Record<string, any>;
}

const summary = (t: Timed) => ({
  wallSeconds: round(t.wallSeconds, 3),
  peakRssMiB: round(t.maxRssKiB / 1024, 1),
  cpuSeconds: round(t.userSeconds + t.systemSeconds, 2),
  cpuCores: round((t.userSeconds + t.systemSeconds) / t.wallSeconds, 2),
  otherCores: round(t.otherCores, 2),
  loadAvgAtStart: round(t.loadAvgAtStart, 2),
});


/** What instrumented.ts prints. */
interface InstrumentedResult {
  error?: string;
  failedStatement?: StatementTiming | null;
  seconds: number;
  totals: AnalysisResult['totals'];
  countsByClass: AnalysisResult['counts_by_class'];
  statements: StatementTiming[];
}

interface PhaseRun {
  name: PhaseName;
  timed: Timed;
  ok: boolean;
  status: string;
  figures: Record<string, unknown> | InstrumentedResult | null;
  /** The analysis's totals (CLI: its analysis.json) and the share of the replay it compared. */
  totals: { totals: AnalysisResult['totals']; counts_by_class: AnalysisResult['counts_by_class'] } | null;
  completeness: string | null;
}

function lastJsonLine(stdout: string): Record<string, any> | null {
  const line = stdout.split('\n').reverse().find((l) => l.startsWith('{"event":"result"'));
  return line ? (JSON.parse(line) as Record<string, any>) : null;
}

/** Turns a finished process into a phase result: ok or failed (and why), and how much of the replay an analysis covered. */
function phaseRun(name: PhaseName, t: Timed, replayDir: string, data: DataInfo): PhaseRun {
  const firstError = () => (t.stderr.split('\n').find((l) => /Error: /.test(l)) ?? t.stderr.split('\n').find((l) => l.trim()) ?? `exit ${t.exitCode}`).trim().slice(0, 160);
  const coverage = (totals: AnalysisResult['totals']) => {
    const complete = totals.legacy_effects === data.rows.effects && totals.intents === data.replay.intents;
    return {
      complete,
      text: `${num(totals.legacy_effects)} / ${num(totals.intents)} of ${num(data.rows.effects)} / ${num(data.replay.intents)}${complete ? '' : ` (${((100 * totals.legacy_effects) / data.rows.effects).toFixed(1)} % of effects)`}`,
    };
  };
  if (name === 'floor') {
    const r = t.exitCode === 0 ? lastJsonLine(t.stdout) : null;
    return { name, timed: t, ok: !!r, status: r ? 'ok' : `FAILED: ${firstError()}`, figures: r?.figures ?? null, totals: null, completeness: null };
  }
  if (name === 'analyze') {
    if (t.exitCode !== 0) return { name, timed: t, ok: false, status: `FAILED (exit ${t.exitCode}): ${firstError()}`, figures: null, totals: null, completeness: null };
    const result = JSON.parse(readFileSync(join(replayDir, 'analysis.json'), 'utf8')) as AnalysisResult;
    const c = coverage(result.totals);
    return { name, timed: t, ok: true, status: c.complete ? 'ok' : 'INCOMPLETE: exit 0, but not every effect and intent was compared', figures: null, totals: { totals: result.totals, counts_by_class: result.counts_by_class }, completeness: c.text };
  }
  const r = lastJsonLine(t.stdout) as InstrumentedResult | null;
  if (!r || r.error) {
    const where = r?.failedStatement ? ` in "${r.failedStatement.sql.slice(0, 50)}..."` : '';
    return { name, timed: t, ok: false, status: `FAILED${where}: ${r?.error ?? firstError()}`, figures: r, totals: null, completeness: null };
  }
  const c = coverage(r.totals);
  return { name, timed: t, ok: c.complete, status: c.complete ? 'ok' : 'INCOMPLETE', figures: r, totals: { totals: r.totals, counts_by_class: r.countsByClass }, completeness: c.text };
}

/** Where an instrumented analysis spent its time, from its statement timings; medians over the runs. */
function analyzePhases(results: InstrumentedResult[]): { part: string; seconds: number }[] {
  const per = results.map((r) => {
    const st = r.statements;
    // The matching query: the stream that yielded the most rows, streamed directly, or (core/store/stream.ts
    // streamVerified) run into a temp table first and streamed from it.
    const s = st.filter((x) => x.method === 'stream').sort((a, b) => (b.rows ?? 0) - (a.rows ?? 0))[0];
    const table = s ? /^SELECT \* FROM (hookshadow_stream_\w+)/.exec(s.sql)?.[1] : undefined;
    const q = table ? st.find((x) => x.sql.startsWith(`CREATE TEMP TABLE ${table} `)) : s;
    const matchAt = q?.startedAt ?? 0;
    // conn.stream() returns once the query has run up to its first chunk; the iterator's time after
    // that is DuckDB handing over chunks, converted to JS rows.
    const first = (q && q !== s ? q.seconds + ((s?.startedAt ?? 0) - (q.startedAt + q.seconds)) : 0) + (s?.firstChunkSeconds ?? 0);
    const streamed = (s?.streamSeconds ?? 0) - (s?.firstChunkSeconds ?? 0);
    const toJs = Math.max(0, (s?.fetchSeconds ?? 0) - ((s?.firstChunkSeconds ?? 0) - (s?.seconds ?? 0)));
    const consumer = s?.consumerSeconds ?? 0;
    const unattributed = st.filter((s) => s.sql.startsWith('SELECT effect_id')).reduce((n, s) => n + s.seconds, 0);
    const copy = st.filter((s) => s.sql.startsWith('COPY')).reduce((n, s) => n + s.seconds, 0);
    const copyAt = st.find((s) => s.sql.startsWith('COPY'))?.startedAt ?? Infinity;
    const reports = st.filter((s) => s.startedAt > copyAt && s.method !== 'stream' && !s.sql.startsWith('CREATE')).reduce((n, s) => n + s.seconds, 0);
    const parts: [string, number][] = [
      ['open the store and replay (views, file checks), rules, routes', matchAt],
      ['matching query until its first row (scan, window, joins, sort; into a temp table and counted, if so)', first],
      ['then: next chunks, converted to JS rows (node-api yieldRowsJs)', toJs],
      ['then: match each delivery, append divergence rows (analyzer JS)', consumer],
      ['then: unaccounted while streaming', streamed - toJs - consumer],
      ['unattributed effects', unattributed],
      ['write divergences.parquet (COPY)', copy],
      ['report queries (totals, by class, by flow, worst, deliveries, daily)', reports],
    ];
    const known = parts.reduce((n, [, x]) => n + x, 0);
    return [...parts, ['the rest (JSON result, analysis.json, renames)', r.seconds - known], ['total', r.seconds]] as [string, number][];
  });
  return per[0]!.map(([part], i) => ({ part, seconds: round(median(per.map((p) => p[i]![1])), 2)! }));
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  const info = machine();
  // The CLI of the same build as this file (dist/, or a private copy of it: see the README).
  const cli = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first (npm run bench:analyze does)`);
  if (!existsSync('/usr/bin/time')) throw new Error('/usr/bin/time is needed for peak RSS (apt-get install time)');
  console.log(`hookshadow analyze benchmark — ${info.nproc} CPUs (${info.cpuModel}), ${info.memGiB} GiB, node ${info.node}, @duckdb/node-api ${info.duckdbNodeApi}, HEAD ${info.git}${info.gitDirty ? ' (dirty)' : ''}`);
  console.log(`data: ${opts.dataDir}`);
  const report: Record<string, unknown> = { benchmark: 'analyze', startedAt: new Date().toISOString(), command: `node dist/bench/analyze/run.js ${process.argv.slice(2).join(' ')}`.trim(), machine: info, options: opts };
  const log = (l: string) => console.log(`  ${l}`);

  if (opts.analyze) {
    const data = await ensureAnalyzeData({ dir: opts.dataDir, count: opts.count, seed: opts.seed, log });
    const { store } = dataPaths(opts.dataDir);
    const replayDir = storePaths.replay(store, REPLAY_ID);
    const warm = await warmPageCache([store]);
    log(`page cache: read ${warm.files} Parquet files (${(warm.bytes / MiB).toFixed(0)} MiB) in ${warm.seconds.toFixed(1)} s`);
    const analyzeArgs = [cli, 'analyze', '--store', store, '--replay', REPLAY_ID, '--format', 'json', '--out', '/dev/null', '--fail-on', 'none'];
    const specs: Record<PhaseName, string[]> = {
      floor: [CHILD_JS, JSON.stringify({ kind: 'floor', store, replayDir } satisfies PhaseSpec)],
      analyze: analyzeArgs,
      'analyze-timed': [INSTRUMENTED_JS, JSON.stringify({ store, replay: REPLAY_ID, settings: opts.timedSettings || null } satisfies InstrumentedSpec)],
    };
    const runs: PhaseRun[] = [];
    for (let r = 1; r <= opts.repeats; r++) {
      for (const name of opts.phases) {
        await rm(join(replayDir, 'analysis.json'), { force: true });
        const t = await timed(name, specs[name]);
        const run = phaseRun(name, t, replayDir, data);
        runs.push(run);
        log(`run ${r}: ${name.padEnd(13)} ${t.wallSeconds.toFixed(2).padStart(7)} s, ${(t.maxRssKiB / 1024).toFixed(0).padStart(5)} MiB, other processes ${t.otherCores.toFixed(2)} cores: ${run.status}`);
      }
    }
    const of = (name: PhaseName) => runs.filter((r) => r.name === name);
    const ok = (name: PhaseName) => of(name).filter((r) => r.ok);
    const med = (name: PhaseName) => median(ok(name).map((r) => r.timed.wallSeconds));
    const floorMedian = med('floor');
    const rows = opts.phases.map((name) => {
      const all = of(name);
      const m = med(name);
      return {
        name,
        medianSeconds: round(m, 3),
        ratio: round(m / floorMedian, 2),
        okRuns: ok(name).length,
        runs: all.length,
        peakRssMiB: round(Math.max(...all.map((r) => r.timed.maxRssKiB)) / 1024, 0),
        cpuCores: round(median(all.map((r) => (r.timed.userSeconds + r.timed.systemSeconds) / r.timed.wallSeconds)), 2),
        runsSeconds: all.map((r) => (r.ok ? r.timed.wallSeconds.toFixed(2) : `FAILED ${r.timed.wallSeconds.toFixed(1)}`)).join(' / '),
        otherCores: all.map((r) => r.timed.otherCores.toFixed(2)).join(' / '),
        compared: all.find((r) => r.totals)?.completeness ?? null,
      };
    });
    console.log('');
    console.log(
      mdTable(
        ['phase', 'median s (ok runs)', 'runs s', 'ratio to floor', 'peak RSS MiB (max)', 'CPU cores', 'effects / intents compared', 'other processes, cores'],
        rows.map((r) => [LABELS[r.name], num(r.medianSeconds, 2), r.runsSeconds, r.name === 'floor' ? '1.00' : num(r.ratio, 2), num(r.peakRssMiB), num(r.cpuCores, 2), r.compared, r.otherCores]),
      ),
    );
    const floorFigures = ok('floor').map((r) => r.figures as { tables: Record<string, { seconds: number; rows: number }> });
    const tablesMedian = floorFigures.length
      ? Object.fromEntries(Object.keys(floorFigures[0]!.tables).map((k) => [k, { rows: floorFigures[0]!.tables[k]!.rows, seconds: round(median(floorFigures.map((f) => f.tables[k]!.seconds)), 3) }]))
      : {};
    console.log(`\nfloor by file set (median s): ${Object.entries(tablesMedian).map(([k, v]) => `${k} ${v.seconds} (${num(v.rows)} rows)`).join(', ')}`);
    for (const r of runs.filter((x) => !x.ok)) console.log(`${r.name} failed after ${r.timed.wallSeconds.toFixed(1)} s: ${r.status}`);
    const timedOk = ok('analyze-timed');
    const phases = timedOk.length ? analyzePhases(timedOk.map((r) => r.figures as InstrumentedResult)) : null;
    if (phases) {
      console.log(`\nanalyze-timed (${opts.timedSettings || 'as shipped'}), where the time goes (median of ${timedOk.length} runs, seconds):`);
      console.log(mdTable(['part', 'seconds'], phases.map((p) => [p.part, num(p.seconds, 2)])));
    }
    const result = timedOk.at(-1)?.totals ?? ok('analyze').at(-1)?.totals ?? null;
    if (result) {
      const t = result.totals;
      console.log(
        `\nanalysis (${timedOk.length ? 'analyze-timed' : 'analyze'}): ${num(t.deliveries)} deliveries, ${num(t.flow_runs)} flow runs, ${num(t.legacy_effects)} legacy effects, ${num(t.intents)} intents; ${num(t.matches)} matches, ` +
          `${num(t.unexpected)} unexpected divergences on ${num(t.divergent_deliveries)} deliveries (${Object.entries(result.counts_by_class)
            .filter(([, v]) => v.unexpected + v.expected > 0)
            .map(([k, v]) => `${k} ${num(v.unexpected + v.expected)}`)
            .join(', ')})`,
      );
    }
    for (const r of rows.filter((x) => x.name !== 'floor')) {
      console.log(`target: ${r.name} within 5× the floor: ${r.okRuns === 0 ? 'NOT MET (no run completed)' : `${r.ratio! <= 5 ? 'MET' : 'NOT MET'} (${r.ratio}×${r.okRuns < r.runs ? `; ${r.runs - r.okRuns} of ${r.runs} runs failed` : ''})`}`);
    }
    report.analyze = {
      data: { ...data, dir: opts.dataDir },
      pageCache: warm,
      command: `node dist/cli/main.js ${analyzeArgs.slice(1).join(' ')}`,
      summary: rows,
      floorTables: tablesMedian,
      analyzeTimedPhases: phases,
      runs: runs.map((r) => ({ name: r.name, ok: r.ok, status: r.status, completeness: r.completeness, ...summary(r.timed), totals: r.totals?.totals ?? null, statements: (r.figures as InstrumentedResult | null)?.statements ?? null })),
    };

    if (opts.drift) {
      // More than 204,800 divergence rows: the appender on the matching query's connection flushes while the query streams.
      const drift = await ensureDriftReplay(store);
      const driftData: DataInfo = { ...data, replay: { ...data.replay, intents: drift.intents } };
      const driftArgs = analyzeArgs.map((a) => (a === REPLAY_ID ? drift.id : a));
      const variants: [string, PhaseName, string[]][] = [
        ['CLI, as shipped', 'analyze', driftArgs],
        [`analyze() instrumented, ${opts.timedSettings || 'as shipped'}`, 'analyze-timed', [INSTRUMENTED_JS, JSON.stringify({ store, replay: drift.id, settings: opts.timedSettings || null } satisfies InstrumentedSpec)]],
        [
          `analyze() instrumented, ${opts.timedSettings || 'as shipped'}, appender on a second connection`,
          'analyze-timed',
          [INSTRUMENTED_JS, JSON.stringify({ store, replay: drift.id, settings: opts.timedSettings || null, appenderOwnConnection: true } satisfies InstrumentedSpec)],
        ],
      ];
      const driftRuns: { variant: string; run: PhaseRun }[] = [];
      for (const [variant, name, args] of variants) {
        await rm(join(storePaths.replay(store, drift.id), 'analysis.json'), { force: true });
        const t = await timed(name, args);
        const run = phaseRun(name, t, storePaths.replay(store, drift.id), driftData);
        driftRuns.push({ variant, run });
        log(`drift: ${variant}: ${t.wallSeconds.toFixed(2)} s, ${(t.maxRssKiB / 1024).toFixed(0)} MiB: ${run.status}`);
      }
      console.log(`\nreplay ${drift.id} (${num(drift.runs)} flow runs, ${num(drift.intents)} intents; ~1M divergence rows):`);
      console.log(
        mdTable(
          ['variant', 'seconds', 'peak RSS MiB', 'effects / intents compared', 'unexpected divergences', 'status'],
          driftRuns.map(({ variant, run }) => [variant, num(run.timed.wallSeconds, 2), num(run.timed.maxRssKiB / 1024), run.completeness, num(run.totals?.totals.unexpected ?? null), run.status.slice(0, 140)]),
        ),
      );
      // The derived replay would otherwise be the store's `latest` (same finished_at, later id).
      await rm(storePaths.replay(store, drift.id), { recursive: true, force: true });
      (report.analyze as Record<string, unknown>).drift = { replay: drift, runs: driftRuns.map(({ variant, run }) => ({ variant, ok: run.ok, status: run.status, completeness: run.completeness, ...summary(run.timed), totals: run.totals?.totals ?? null })) };
    }

    if (opts.profile) {
      const dir = join(repoRoot(), 'bench', 'out', 'analyze-prof');
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      const p = await timed('analyze-timed --cpu-prof', ['--cpu-prof', '--cpu-prof-dir', dir, ...specs['analyze-timed']]);
      const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
      console.log(`\nprofiled analyze-timed run: ${p.wallSeconds.toFixed(2)} s (profiling adds overhead); ${file ? join(dir, file) : 'no profile written'}`);
      if (file) console.log(execFileSync(process.execPath, [fileURLToPath(new URL('../recorder/profile-summary.js', import.meta.url)), join(dir, file), '25'], { encoding: 'utf8' }));
    }
  }

  if (opts.daily) {
    const daily = await ensureDailyStore({ dir: opts.dataDir, count: opts.dailyCount, days: opts.dailyDays, log });
    const warm = await warmPageCache([daily.store]);
    log(`page cache: read ${warm.files} Parquet files (${(warm.bytes / MiB).toFixed(0)} MiB) in ${warm.seconds.toFixed(1)} s`);
    const d = await timed('daily', [CHILD_JS, JSON.stringify({ kind: 'daily', store: daily.store, replayId: DAILY_REPLAY_ID, repeats: opts.dailyRepeats } satisfies PhaseSpec)]);
    const f = resultOf(d).figures as {
      openSeconds: number;
      firstSeconds: number;
      repeatSeconds: number[];
      days: number;
      deliveries: number;
      flowRuns: number;
      profile: { latency: number; operators: { operator: string; depth: number; seconds: number; rows: number; detail: string }[] } | null;
    };
    const med = median(f.repeatSeconds);
    console.log('');
    console.log(
      mdTable(
        ['daily_summary over', 'open (views, file checks) s', 'first query (cold) s', `median of ${f.repeatSeconds.length} s`, 'runs s', 'rows', 'peak RSS MiB', 'other processes, cores'],
        [[`${num(daily.rows.deliveries)} deliveries, ${num(daily.rows.flowRuns)} flow runs, ${num(daily.rows.divergences)} divergence rows, ${daily.files} files`, num(f.openSeconds, 2), num(f.firstSeconds, 3), num(med, 3), f.repeatSeconds.map((s) => s.toFixed(3)).join(' / '), f.days, num(d.maxRssKiB / 1024, 0), num(d.otherCores, 2)]],
      ),
    );
    if (f.profile) {
      const cpu = f.profile.operators.reduce((n, o) => n + o.seconds, 0);
      console.log(`\nprofiled run: ${f.profile.latency.toFixed(3)} s; operators by CPU time (summed over threads, ${cpu.toFixed(2)} s in all):`);
      console.log(mdTable(['operator', 'CPU s', 'rows', 'detail'], f.profile.operators.filter((o) => o.seconds >= 0.01).map((o) => [`${'  '.repeat(o.depth)}${o.operator}`, num(o.seconds, 3), num(o.rows), o.detail.slice(0, 110)])));
    }
    console.log(`target: daily summary over ${num(daily.rows.deliveries)} deliveries under 2 s: ${med < 2 ? 'MET' : 'NOT MET'} (median ${med.toFixed(3)} s, cold ${f.firstSeconds.toFixed(3)} s)`);
    if (f.deliveries !== daily.rows.deliveries - daily.rows.rejected || f.flowRuns !== daily.rows.flowRuns) throw new Error(`daily_summary sums (${f.deliveries} deliveries, ${f.flowRuns} runs) do not match the store (${JSON.stringify(daily.rows)})`);
    report.daily = { store: daily, pageCache: warm, ...f, medianSeconds: round(med, 4), targetMet: med < 2, process: summary(d) };
  }

  report.totalSeconds = round((performance.now() - t0) / 1000, 1);
  mkdirSync(dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, JSON.stringify(report, null, 2) + '\n');
  console.log(`\nraw figures: ${opts.out} (${report.totalSeconds} s in all)`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

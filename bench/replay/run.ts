/**
 * Replay benchmark (issue #3): how fast `hookshadow replay` runs flows over a large store, against
 * the floor of just reading the same deliveries, side by side in one run:
 *
 *   floor        streamDeliveries() over openStoreReader(): the replay's own read (deliveries in
 *                received_at order with the calls the legacy handler made for them; every payload parsed
 *                as a replay worker parses it), with openStoreReader's DuckDB defaults (all cores,
 *                memory_limit 80 % of RAM), and nothing else. Its query is whatever replayer/source.ts does
 *                at the commit measured.
 *   floor-worker the same under a replay worker's DuckDB settings up to 9377d93 (1 thread, 192MB, spill
 *                dir): the read cost inside replay-1 (diagnostic, opt-in)
 *   replay-2     replay({ store, flowsDir, concurrency: 2, timings: true })
 *   replay-1     the same with concurrency 1
 *
 * Each phase runs alone in its own child process (bench/replay/child.ts), so its peak RSS
 * (getrusage maxRSS, which counts every thread: DuckDB's and the replay's worker threads) and its CPU
 * time (user + sys over wall: 2.0 = both cores busy) are its own. While it runs, this process samples the
 * child's VmRSS, the size of the replay's staging directory (NDJSON parts, DuckDB spill files) and the
 * machine's busy CPU every --sample-ms: the peak memory of each part of a phase, and how many cores other
 * processes took meanwhile (anything but ~0 means the figures are disturbed).
 *
 *   npm run build && node dist/bench/replay/run.js [--count 1000000] [--phases floor,replay-2,replay-1] ...
 *
 * The store (bench/replay/make-store.ts) is reused when it already holds the same count and seed.
 * The flows (bench/replay/flows.ts): fixtures/flows/*.yaml plus 20 synthetic ones, checked first.
 * Prints markdown tables and writes the raw figures to bench/out/replay.json. No assertions.
 * bench/replay/diagnose.ts takes the replay's query and final COPY apart (see there).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, type Dirent, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { storePaths } from '../../core/store/layout.js';
import type { PhaseSpec } from './child.js';
import { writeBenchFlows, repoRoot } from './flows.js';
import { defaultStorePath, ensureBenchStore, parseCount } from './make-store.js';
import { parseFlags } from '../shared/args.js';
import { CLK_TCK, gitDirty, gitHead, hostInfo, machineBusySeconds, packageVersion, sh } from '../shared/machine.js';
import { warmPageCache } from '../shared/page-cache.js';
import { mdTable, num, round } from '../shared/report.js';

const HELP = `Replay benchmark.
  --count N         deliveries in the store                    (default 1000000)
  --seed N          generator seed                             (default 42)
  --store DIR       store directory (default ${join(tmpdir(), 'hookshadow-replay-bench')}/store-<count>-seed<seed>)
  --flows-dir DIR   where the flows are written                (default <store>/../flows)
  --phases LIST     comma-separated, in order: floor, floor-worker, replay-2, replay-1
                                                               (default floor,replay-2,replay-1)
  --sample-ms N     RSS / staging-size sampling interval       (default 250)
  --no-effects      store without the legacy bot's effects (only deliveries and reads)
  --durable-store   write the store's WAL with O_DSYNC, as the recorder does
  --keep-replays    keep the replay directories in the store (default: removed once measured)
  --out FILE        JSON output                                (default bench/out/replay.json)`;

const PHASES = ['floor', 'floor-worker', 'replay-2', 'replay-1'] as const;
type PhaseName = (typeof PHASES)[number];

function parseArgs(argv: string[]) {
  const flags = parseFlags(argv, HELP, ['no-effects', 'durable-store', 'keep-replays']);
  const count = parseCount(flags.get('count'), 1_000_000);
  const seed = parseCount(flags.get('seed'), 42);
  const store = flags.get('store') ?? defaultStorePath(count, seed);
  const phases = (flags.get('phases') ?? 'floor,replay-2,replay-1').split(',').map((s) => s.trim()).filter(Boolean);
  for (const p of phases) if (!(PHASES as readonly string[]).includes(p)) throw new Error(`unknown phase ${p}; use ${PHASES.join(',')}`);
  const sampleMs = Number(flags.get('sample-ms') ?? 250);
  if (!Number.isFinite(sampleMs) || sampleMs < 10) throw new Error('--sample-ms expects a number ≥ 10');
  return {
    count,
    seed,
    store,
    flowsDir: flags.get('flows-dir') ?? join(dirname(store), 'flows'),
    phases: phases as PhaseName[],
    sampleMs,
    effects: flags.get('effects') !== 'false',
    durableStore: flags.get('durable-store') === 'true',
    keepReplays: flags.get('keep-replays') === 'true',
    out: flags.get('out') ?? join(repoRoot(), 'bench', 'out', 'replay.json'),
  };
}
type Options = ReturnType<typeof parseArgs>;

const MiB = 2 ** 20;
const CHILD_JS = fileURLToPath(new URL('./child.js', import.meta.url));

function machine() {
  const root = repoRoot();
  return {
    ...hostInfo(),
    duckdbNodeApi: packageVersion(root, '@duckdb/node-api'),
    celJs: packageVersion(root, '@marcbachmann/cel-js'),
    /** BENCH_GIT_REV names the commit when running from a copy of dist/ outside the repository. */
    git: gitHead(root) ?? process.env.BENCH_GIT_REV ?? null,
    gitDirty: gitDirty(root),
    storeFilesystem: null as string | null,
  };
}

/** Total bytes of the files under `dir` (0 when it does not exist). */
function dirBytes(dir: string): number {
  let total = 0;
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { recursive: true, withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    if (!e.isFile()) continue;
    try {
      total += statSync(join(e.parentPath, e.name)).size;
    } catch {
      // removed between readdir and stat
    }
  }
  return total;
}

/** CPU seconds (user + system, every thread) of a process so far (/proc/<pid>/stat). */
function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

function procRssKiB(pid: number): { rss: number; threads: number } | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return {
      rss: Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN),
      threads: Number(/^Threads:\s+(\d+)/m.exec(status)?.[1] ?? NaN),
    };
  } catch {
    return null;
  }
}

interface Sample {
  t: number;
  rssMiB: number;
  threads: number;
  /** Replay staging: the partitions' NDJSON, DuckDB spill of the workers (tmp-N) and of the final COPY (tmp-copy). */
  partsMiB: number;
  spillMiB: number;
  copySpillMiB: number;
  outputMiB: number;
  /** Machine-wide busy CPU seconds and the child's CPU seconds, cumulative (for other processes' share). */
  machineBusy: number;
  childCpu: number;
}

interface ChildEvent {
  event: string;
  t: number;
  [k: string]: unknown;
}

interface PhaseRun {
  name: PhaseName;
  /** 1-minute load average when the phase started (other work on the machine shows up here). */
  loadAvgAtStart: number;
  spec: PhaseSpec;
  exitCode: number | null;
  signal: string | null;
  result: Record<string, any> | null;
  events: ChildEvent[];
  samples: Sample[];
  stderrTail: string[];
}

async function runChild(name: PhaseName, spec: PhaseSpec, opts: Options, watch: { staging: string | null; spill: string | null; cwd: string }): Promise<PhaseRun> {
  mkdirSync(watch.cwd, { recursive: true });
  const child = spawn(process.execPath, [CHILD_JS, JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'pipe'], cwd: watch.cwd });
  const events: ChildEvent[] = [];
  const samples: Sample[] = [];
  const stderrTail: string[] = [];
  const t0 = performance.now();
  const loadAvgAtStart = loadavg()[0]!;
  let childT0: number | null = null;
  const progress = (e: ChildEvent) => {
    const elapsed = ((performance.now() - t0) / 1000).toFixed(1);
    const last = samples.at(-1);
    const mem = last ? `  RSS ${last.rssMiB.toFixed(0)} MiB` + (last.spillMiB || last.partsMiB || last.copySpillMiB ? `, parts ${last.partsMiB.toFixed(0)} MiB, spill ${(last.spillMiB + last.copySpillMiB).toFixed(0)} MiB` : '') : '';
    if (e.event === 'progress') process.stdout.write(`    ${name}: ${String(e.done).padStart(9)} deliveries  ${elapsed} s${mem}\n`);
    else if (e.event !== 'result') process.stdout.write(`    ${name}: ${e.event}${e.total !== undefined ? ` (${e.total})` : ''}  ${elapsed} s${mem}\n`);
  };
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let e: ChildEvent;
    try {
      e = JSON.parse(line) as ChildEvent;
    } catch {
      process.stdout.write(`    [${name}] ${line}\n`);
      return;
    }
    if (e.event === 'start') childT0 = e.t;
    // Child times are relative to its own start.
    e.t = e.t - (childT0 ?? e.t);
    events.push(e);
    progress(e);
  });
  createInterface({ input: child.stderr! }).on('line', (line) => {
    process.stderr.write(`    [${name} stderr] ${line}\n`);
    stderrTail.push(line);
    if (stderrTail.length > 50) stderrTail.shift();
  });
  const sampler = setInterval(() => {
    const p = procRssKiB(child.pid!);
    if (!p) return;
    const staging = watch.staging;
    const spillOf = (dir: string) => {
      let bytes = 0;
      try {
        for (const e of readdirSync(dir)) if (/^tmp-\d+$/.test(e)) bytes += dirBytes(join(dir, e));
      } catch {
        // not there yet
      }
      return bytes;
    };
    samples.push({
      t: (performance.now() - t0) / 1000,
      rssMiB: p.rss / 1024,
      threads: p.threads,
      partsMiB: staging ? dirBytes(join(staging, 'parts')) / MiB : 0,
      spillMiB: (staging ? spillOf(staging) : 0) / MiB + (watch.spill ? dirBytes(watch.spill) / MiB : 0) + dirBytes(join(watch.cwd, '.tmp')) / MiB,
      copySpillMiB: staging ? dirBytes(join(staging, 'tmp-copy')) / MiB : 0,
      outputMiB: staging ? (fileSize(join(staging, 'flow_runs.parquet')) + fileSize(join(staging, 'node_runs.parquet'))) / MiB : 0,
      machineBusy: machineBusySeconds(),
      childCpu: processCpuSeconds(child.pid!),
    });
  }, opts.sampleMs);
  const [exitCode, signal] = await new Promise<[number | null, string | null]>((resolve) => child.once('exit', (code, sig) => resolve([code, sig])));
  clearInterval(sampler);
  const result = (events.find((e) => e.event === 'result') as Record<string, any> | undefined) ?? null;
  return { name, loadAvgAtStart, spec, exitCode, signal, result, events, samples, stderrTail };
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** Figures of one phase: throughput, CPU, memory, and its sub-phases from the child's events. */
function summarize(run: PhaseRun, nproc: number) {
  const r = run.result;
  const at = (event: string) => run.events.find((e) => e.event === event)?.t ?? null;
  const end = at('result');
  const f = (r?.figures ?? {}) as Record<string, any>;
  // A replay that failed after streaming every delivery (in its final COPY) still tells how many it streamed.
  const streamedAll = run.events.some((e) => e.event === 'streamed');
  const countedTotal = run.events.find((e) => e.event === 'counted')?.total;
  const deliveries = Number(f.deliveries ?? (streamedAll ? countedTotal : NaN) ?? NaN);
  const cpuSeconds = r ? Number(r.userSeconds) + Number(r.systemSeconds) : NaN;
  const wall = r ? Number(r.wallSeconds) : NaN;
  // Sub-phases, in seconds since the child started.
  const marks: { name: string; from: number | null; to: number | null }[] =
    run.spec.kind === 'floor'
      ? [
          { name: 'open store (views, file checks)', from: 0, to: at('opened') },
          { name: 'query until the first delivery (scan, join, sort)', from: at('opened'), to: at('first') },
          { name: 'stream and JSON.parse every delivery', from: at('first'), to: end },
        ]
      : [
          { name: 'load flows, count deliveries', from: 0, to: at('counted') },
          { name: 'until the first 256 deliveries ran (workers start, scan, join, sort)', from: at('counted'), to: at('first') },
          { name: 'stream deliveries through the flows, write NDJSON', from: at('first'), to: at('streamed') },
          { name: run.spec.kind === 'replay' ? 'final COPY to Parquet, manifest, rename' : 'final COPY to Parquet (256MB, then the retry)', from: at('streamed'), to: end },
        ];
  // Map the parent's samples (parent clock, from spawn) onto the child's clock: the child's start is
  // a few tens of ms after spawn; the offset is small next to the sampling interval and is ignored.
  // A failed phase: its last started part ran until the child ended.
  const failing = r?.error || run.exitCode !== 0 ? marks.map((m) => m.from !== null).lastIndexOf(true) : -1;
  const sub = marks.map((m, i) => {
    const to = i === failing ? end : m.to;
    const inside = run.samples.filter((s) => m.from !== null && to !== null && s.t >= m.from && s.t <= to);
    const max = (k: keyof Sample) => (inside.length ? Math.max(...inside.map((s) => s[k])) : null);
    return {
      name: m.name,
      seconds: m.from !== null && to !== null ? round(to - m.from, 2) : null,
      maxRssMiB: round(max('rssMiB') ?? NaN, 1),
      maxSpillMiB: round(max('spillMiB') ?? NaN, 1),
      maxCopySpillMiB: round(max('copySpillMiB') ?? NaN, 1),
      maxPartsMiB: round(max('partsMiB') ?? NaN, 1),
      maxThreads: max('threads'),
    };
  });
  // Throughput: floor = deliveries over open + query + stream; replay = deliveries over replay()'s own seconds
  // (flows, count, workers, streaming, final COPY and rename: the whole command minus process start-up).
  const seconds = run.spec.kind === 'floor' ? (end ?? NaN) : Number(f.replaySeconds ?? NaN);
  const failedDuring = failing >= 0 ? sub[failing]!.name : null;
  const failedAfter = failedDuring ? round((end ?? NaN) - (marks.find((m) => m.name === failedDuring)?.from ?? NaN), 1) : null;
  const streamSeconds = run.spec.kind === 'floor' ? (end ?? NaN) - (at('first') ?? NaN) : (at('streamed') ?? NaN) - (at('first') ?? NaN);
  // CPU other processes used meanwhile (this process's sampling included, a few ms a second): machine busy
  // time minus the child's, between the first and last samples. Shows another job competing for the cores.
  const first = run.samples[0];
  const last = run.samples.at(-1);
  const otherCores = first && last && last.t > first.t ? (last.machineBusy - first.machineBusy - (last.childCpu - first.childCpu)) / (last.t - first.t) : NaN;
  const peakSampled = run.samples.length ? Math.max(...run.samples.map((s) => s.rssMiB)) : NaN;
  return {
    name: run.name,
    loadAvgAtStart: round(run.loadAvgAtStart, 2),
    ok: run.exitCode === 0 && !!r && !r.error,
    exitCode: run.exitCode,
    signal: run.signal,
    error: r?.error ?? (run.exitCode !== 0 ? `exit ${run.exitCode ?? run.signal}: ${run.stderrTail.slice(-5).join(' | ')}` : null),
    /** The part of the phase that was running when it failed, and how long it had run. */
    failedDuring,
    failedAfterSeconds: failedAfter,
    secondsBasis: run.spec.kind === 'floor' ? 'open to last delivery' : 'replay() seconds',
    copyAttempts: (f.copyAttempts ?? null) as { memoryLimit: string; seconds: number; error: string | null; flowRunsWritten: boolean }[] | null,
    deliveries,
    seconds: round(seconds, 2),
    deliveriesPerSec: round(deliveries / seconds, 0),
    /** Deliveries over the streaming part only (first delivery → last). */
    streamingDeliveriesPerSec: round(deliveries / streamSeconds, 0),
    wallSeconds: round(wall, 2),
    cpuSeconds: round(cpuSeconds, 2),
    userSeconds: round(Number(r?.userSeconds ?? NaN), 2),
    systemSeconds: round(Number(r?.systemSeconds ?? NaN), 2),
    /** (user + sys) / wall, in cores: 2.0 = both cores busy the whole time. */
    cpuCores: round(cpuSeconds / wall, 2),
    cpuPercentOfAllCores: round((100 * cpuSeconds) / wall / nproc, 1),
    cpuUsPerDelivery: round((cpuSeconds * 1e6) / deliveries, 1),
    /** Cores other processes kept busy meanwhile (should be ~0; more means the figures are disturbed). */
    otherProcessesCores: round(otherCores, 2),
    peakRssMiB: round(Number(r?.maxRssKiB ?? NaN) / 1024, 1),
    peakRssSampledMiB: round(peakSampled, 1),
    heapUsedAtEndMiB: round(Number(r?.heapUsedMiB ?? NaN), 1),
    maxSpillMiB: round(Math.max(0, ...run.samples.map((s) => s.spillMiB)), 1),
    maxCopySpillMiB: round(Math.max(0, ...run.samples.map((s) => s.copySpillMiB)), 1),
    maxPartsMiB: round(Math.max(0, ...run.samples.map((s) => s.partsMiB)), 1),
    figures: f,
    subPhases: sub,
  };
}
type PhaseSummary = ReturnType<typeof summarize>;

function status(p: PhaseSummary): string {
  if (!p.ok) return `FAILED${p.failedDuring ? ` in "${p.failedDuring}" after ${p.failedAfterSeconds} s` : ''}: ${(p.error ?? '').split('\n')[0]!.replace(/^Error: /, '').slice(0, 110)}`;
  const copies = p.copyAttempts ?? [];
  if (copies.length === 0) return 'ok';
  return copies
    .map((c) => `COPY @${c.memoryLimit}: ${c.error ? `FAILED after ${c.seconds.toFixed(1)} s in ${c.flowRunsWritten ? 'node_runs' : 'flow_runs'} (${c.error.replace(/^Out of Memory Error: /, 'OOM: ').slice(0, 60)})` : `ok, ${c.seconds.toFixed(1)} s`}`)
    .join('; ');
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  const startedAt = new Date().toISOString();
  const info = machine();
  mkdirSync(dirname(opts.store), { recursive: true });
  info.storeFilesystem = sh(`df -T ${dirname(opts.store)} | tail -1 | awk '{print $1" "$2" "$5" free"}'`);
  console.log(`hookshadow replay benchmark — ${info.nproc} CPUs (${info.cpuModel}), ${info.memGiB} GiB, node ${info.node}, @duckdb/node-api ${info.duckdbNodeApi}, HEAD ${info.git}${info.gitDirty ? ' (dirty)' : ''}`);
  console.log(`${opts.count.toLocaleString('en')} deliveries, seed ${opts.seed}; phases ${opts.phases.join(', ')}; store ${opts.store} (${info.storeFilesystem})`);

  // 1. The store.
  const tStore = performance.now();
  const store = await ensureBenchStore({ store: opts.store, count: opts.count, seed: opts.seed, effects: opts.effects, durable: opts.durableStore, log: (l) => console.log(`  ${l}`) });
  const storeSeconds = (performance.now() - tStore) / 1000;

  // 2. The flows.
  const tFlows = performance.now();
  const flows = await writeBenchFlows(opts.flowsDir, { seed: opts.seed });
  const flowsSeconds = (performance.now() - tFlows) / 1000;
  console.log(`  flows: ${flows.flows} in ${opts.flowsDir}, all checked (load + dry run over ${flows.sample.toLocaleString('en')} deliveries) in ${flowsSeconds.toFixed(1)} s`);

  // 3. Leftovers of an earlier interrupted run, then a warm page cache.
  for (const dir of [storePaths.replays(opts.store), join(opts.store, '_staging', 'replays')]) {
    for (const e of await readdir(dir).catch(() => [] as string[])) if (e.startsWith('bench-')) await rm(join(dir, e), { recursive: true, force: true });
  }
  const warm = await warmPageCache(['deliveries', 'exchanges', 'effects'].map((table) => join(opts.store, table)));
  console.log(`  page cache: read ${warm.files} Parquet files (${(warm.bytes / MiB).toFixed(0)} MiB) in ${warm.seconds.toFixed(1)} s`);

  // 4. The phases, one child process each, one after the other.
  const scratch = join(dirname(opts.store), 'scratch');
  await rm(scratch, { recursive: true, force: true });
  const runs: PhaseRun[] = [];
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  for (const name of opts.phases) {
    const cwd = join(scratch, name);
    let spec: PhaseSpec;
    let staging: string | null = null;
    let spill: string | null = null;
    if (name === 'floor') spec = { kind: 'floor', name, store: opts.store, settings: null };
    else if (name === 'floor-worker') {
      spill = join(scratch, name, 'spill');
      spec = { kind: 'floor', name, store: opts.store, settings: { threads: 1, memoryLimit: '192MB', tempDir: spill } };
    } else {
      const id = `bench-${name}-${stamp}`;
      const concurrency = name.startsWith('replay-2') ? 2 : 1;
      staging = storePaths.replayStaging(opts.store, id);
      spec = { kind: 'replay', name, store: opts.store, flowsDir: opts.flowsDir, concurrency, id, cleanup: !opts.keepReplays };
    }
    console.log(`  ${name} ... (load average ${loadavg().map((x) => x.toFixed(2)).join(' ')})`);
    const run = await runChild(name, spec, opts, { staging, spill, cwd });
    runs.push(run);
    const s = summarize(run, info.nproc);
    console.log(
      s.ok
        ? `  ${name}: ${num(s.deliveries)} deliveries in ${s.seconds} s = ${num(s.deliveriesPerSec)}/s; peak RSS ${s.peakRssMiB} MiB; CPU ${s.cpuCores} cores`
        : `  ${name}: FAILED (${s.error?.split('\n')[0]})`,
    );
  }
  await rm(scratch, { recursive: true, force: true });

  // 5. Tables.
  const phases = runs.map((r) => summarize(r, info.nproc));
  const floor = phases.find((p) => p.name === 'floor' && p.ok) ?? null;
  const floorWorker = phases.find((p) => p.name === 'floor-worker' && p.ok) ?? null;
  const ratio = (p: PhaseSummary, base: PhaseSummary | null) => (base && p.ok && base.deliveriesPerSec && p.deliveriesPerSec ? p.deliveriesPerSec / base.deliveriesPerSec : null);
  console.log('');
  console.log(
    mdTable(
      ['phase', 'deliveries', 'seconds', 'deliveries/s', 'ratio to floor', 'streaming d/s', 'peak RSS MiB', 'CPU s (user+sys)', 'CPU cores (of ' + info.nproc + ')', 'CPU µs/delivery', 'other processes, cores', 'max spill MiB', 'status'],
      phases.map((p) => [
        p.name,
        num(p.deliveries),
        num(p.seconds, 1),
        num(p.deliveriesPerSec),
        p.name === 'floor' ? '1.00' : num(ratio(p, floor), 3),
        num(p.streamingDeliveriesPerSec),
        num(p.peakRssMiB, 1),
        num(p.cpuSeconds, 1),
        `${num(p.cpuCores, 2)} (${num(p.cpuPercentOfAllCores, 0)} %)`,
        num(p.cpuUsPerDelivery, 0),
        num(p.otherProcessesCores, 2),
        num(Math.max(p.maxSpillMiB ?? 0, p.maxCopySpillMiB ?? 0), 0),
        status(p),
      ]),
    ),
  );
  console.log('');
  console.log(
    mdTable(
      ['phase', 'part', 'seconds', 'max RSS MiB (sampled)', 'max NDJSON parts MiB', 'max spill MiB (workers / COPY)', 'threads'],
      phases.flatMap((p) =>
        p.subPhases.map((s, i) => [
          i === 0 ? p.name : '',
          s.name,
          num(s.seconds, 2),
          num(s.maxRssMiB, 0),
          num(s.maxPartsMiB, 0),
          `${num(s.maxSpillMiB, 0) ?? '—'} / ${num(s.maxCopySpillMiB, 0) ?? '—'}`,
          s.maxThreads,
        ]),
      ),
    ),
  );
  for (const p of phases) {
    if (p.name.startsWith('replay') && p.ok) {
      const f = p.figures;
      console.log(
        `${p.name}: ${f.workers} worker(s)${f.workerMemory ? ` at memory_limit ${f.workerMemory} each` : ''}; ${num(f.runs)} flow runs (${Object.entries(f.runsByStatus ?? {})
          .map(([k, v]) => `${k} ${num(v as number)}`)
          .join(', ')}), ${num(f.nodeRuns)} node runs, ${num(f.intents)} intents, ${num(f.errors)} failed runs; ` +
          `output flow_runs ${num(f.output.flowRunsBytes / MiB, 1)} MiB + node_runs ${num(f.output.nodeRunsBytes / MiB, 1)} MiB` +
          (f.output.ndjsonPartsBytes ? ` (from ${num(f.output.ndjsonPartsBytes / MiB, 0)} MiB of NDJSON parts; final COPY ${num(f.copySeconds, 1)} s)` : ''),
      );
    }
  }

  const byName = (n: PhaseName) => phases.find((x) => x.name === n && x.ok) ?? null;
  const over = (a: PhaseSummary | null, b: PhaseSummary | null) => (a && b && a.deliveriesPerSec && b.deliveriesPerSec ? round(a.deliveriesPerSec / b.deliveriesPerSec, 3) : null);
  const comparisons = {
    /** Each phase's deliveries/s over the floor's (null when either failed). */
    overFloor: Object.fromEntries(phases.filter((p) => p.name !== 'floor').map((p) => [p.name, over(p.ok ? p : null, floor)])),
    replay2OverReplay1: over(byName('replay-2'), byName('replay-1')),
  };
  console.log('');
  for (const [name, r] of Object.entries(comparisons.overFloor)) console.log(`${name.padEnd(14)} / floor        ${r ?? `— (${name} failed)`}`);
  if (comparisons.replay2OverReplay1 !== null) console.log(`replay-2 / replay-1            ${comparisons.replay2OverReplay1}`);

  const report = {
    benchmark: 'replay',
    startedAt,
    totalSeconds: round((performance.now() - t0) / 1000, 1),
    command: `node dist/bench/replay/run.js${process.argv.length > 2 ? ` ${process.argv.slice(2).join(' ')}` : ''}`,
    machine: info,
    options: opts,
    store: { ...store, path: opts.store, seconds: round(storeSeconds, 1) },
    flows: { dir: opts.flowsDir, count: flows.flows, files: flows.files, digest: flows.digest, checkSample: flows.sample, checkSeconds: round(flowsSeconds, 1), perFlowInSample: flows.perFlow },
    pageCache: warm,
    phases,
    comparisons,
    samples: Object.fromEntries(runs.map((r) => [r.name, r.samples.map((s) => [round(s.t, 2), round(s.rssMiB, 1), s.threads, round(s.partsMiB, 1), round(s.spillMiB, 1), round(s.copySpillMiB, 1), round(s.outputMiB, 1), round(s.machineBusy, 2), round(s.childCpu, 2)])])),
    samplesColumns: ['t (s since spawn)', 'RSS MiB', 'threads', 'NDJSON parts MiB', 'worker/floor spill MiB', 'COPY spill MiB', 'output Parquet MiB', 'machine busy CPU s', 'child CPU s'],
    events: Object.fromEntries(runs.map((r) => [r.name, r.events.filter((e) => e.event !== 'result')])),
  };
  mkdirSync(dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, JSON.stringify(report, null, 2) + '\n');
  console.log(`\nraw figures: ${opts.out} (${report.totalSeconds} s in all; store ${round(storeSeconds, 1)} s${store.reused ? ', reused' : ''})`);
  if (phases.some((p) => !p.ok)) process.exitCode = 1;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

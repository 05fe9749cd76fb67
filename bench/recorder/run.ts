/**
 * Recorder benchmark (issue #2): deliveries/s and p50/p99 latency, side by side, for
 *
 *   bare        a bare Fastify endpoint (same raw-buffer body parser) answering 202
 *   passive     the recorder in passive mode, durable capture (WAL group commit, O_DSYNC writes)
 *   direct      the legacy bot called directly; the bot calls the forge stub
 *   tee         the recorder in tee mode in front of that same bot (bot still calls the stub)
 *   tee-egress  tee mode, and the bot's API calls go through the recorder's /egress proxy
 *
 * After each scenario's saturation run (N connections, unthrottled) and its light run (1 connection),
 * direct, tee and tee-egress also get fixed-rate runs on the same servers: the same N connections
 * with autocannon's `overallRate` (default 1000/s and 3000/s), where the tee's added latency is
 * measured at a rate both setups sustain rather than as queueing at saturation.
 *
 * plus the passive recorder's RSS under steady load. Every server runs in a child
 * process (bench/recorder/server.ts); autocannon runs here, in the parent. The bot and
 * the forge stub share one "backend" child, separate from the recorder's.
 *
 *   npm run bench:recorder [-- --duration 10 --connections 32 ...]   (see --help)
 *
 * Prints a table and writes the raw figures to bench/out/recorder.json. No assertions:
 * the targets are evaluated and reported, never enforced.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { startRecorderBenchChild } from './child.js';
import { numberOption, parseFlags } from '../shared/args.js';
import type { BenchChild, Msg } from '../shared/child-protocol.js';
import { bodyFigures, selectDeliveries, tally } from '../shared/deliveries.js';
import { autocannonRun, LatencySamples, latencyPercentiles, pacedRun, type LoadRequest } from '../shared/load.js';
import { hostInfo, packageVersion, sh } from '../shared/machine.js';
import { cpuSeconds, cpuSplit, rssBytes } from '../shared/proc.js';
import { reportHeader, round } from '../shared/report.js';

// ---------------------------------------------------------------------------------------------
// Options: flags override environment variables override defaults.

const HELP = `Recorder benchmark.
  --duration S          measured seconds per scenario          (BENCH_DURATION, default 10)
  --warmup S            warm-up seconds before each scenario   (BENCH_WARMUP, default 2)
  --connections N       autocannon connections                 (BENCH_CONNECTIONS, default 32)
  --light-duration S    light-load run per scenario, 0 = skip  (BENCH_LIGHT_DURATION, default 4)
  --light-connections N connections of the light-load run      (BENCH_LIGHT_CONNECTIONS, default 1)
  --rates LIST          fixed overall rates (req/s) for direct, tee, tee-egress, same connections;
                        '' = skip                              (BENCH_RATES, default 1000,3000)
  --rate-duration S     seconds per fixed-rate run             (BENCH_RATE_DURATION, default 6)
  --no-paced            skip the evenly paced run that follows each overallRate run (BENCH_PACED=0)
  --rss-duration S      passive recorder RSS run, 0 = skip     (BENCH_RSS_DURATION, default 60)
  --rss-config JSON     diagnostic: recorder config layered over the RSS run's (e.g. '{"attribution":{"window_ms":1000}}')
  --rss-duckdb JSON     diagnostic: DuckDB options merged over the recorder's in the RSS run (e.g. '{"memory_limit":"128MB"}')
  --count N             distinct pre-generated deliveries      (BENCH_COUNT, default 512)
  --seed N              generator seed                         (BENCH_SEED, default 42)
  --scenarios LIST      comma-separated subset of bare,passive,direct,tee,tee-egress (BENCH_SCENARIOS);
                        passive-nosync, tee-nosync (diagnostics: WAL writes not synced) run only when named
  --prof                run server children with --cpu-prof (profiles in bench/out/prof/<scenario>/)
  --out FILE            JSON output                            (BENCH_OUT, default bench/out/recorder.json)`;

const ALL_SCENARIOS = ['bare', 'passive', 'direct', 'tee', 'tee-egress'] as const;
/** Diagnostics, run only when named in --scenarios: the recorder with its WAL writes not synced (no O_DSYNC, no fdatasync). */
const EXTRA_SCENARIOS = ['passive-nosync', 'tee-nosync'] as const;
type ScenarioName = (typeof ALL_SCENARIOS)[number] | (typeof EXTRA_SCENARIOS)[number];
/** Scenarios that also get the fixed-rate runs (--rates). */
const RATE_SCENARIOS: readonly ScenarioName[] = ['direct', 'tee', 'tee-egress', 'tee-nosync'];

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function parseArgs(argv: string[]) {
  const flags = parseFlags(argv, HELP, ['prof', 'paced', 'no-paced']);
  const env = process.env;
  const num = (flag: string, envName: string, dflt: number) => numberOption(flags, flag, envName, dflt);
  const ratesRaw = flags.get('rates') ?? env.BENCH_RATES ?? '1000,3000';
  const rates = ratesRaw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const n = Number(s);
      if (!Number.isFinite(n) || n < 1) throw new Error(`--rates expects comma-separated rates ≥ 1 per second, got ${JSON.stringify(ratesRaw)}`);
      return Math.round(n);
    });
  const list = (flags.get('scenarios') ?? env.BENCH_SCENARIOS ?? ALL_SCENARIOS.join(',')).split(',').map((s) => s.trim()).filter(Boolean);
  const known: readonly string[] = [...ALL_SCENARIOS, ...EXTRA_SCENARIOS];
  for (const s of list) if (!known.includes(s)) throw new Error(`unknown scenario ${s}; use ${known.join(',')}`);
  return {
    duration: num('duration', 'BENCH_DURATION', 10),
    warmup: num('warmup', 'BENCH_WARMUP', 2),
    connections: Math.max(1, Math.round(num('connections', 'BENCH_CONNECTIONS', 32))),
    lightDuration: num('light-duration', 'BENCH_LIGHT_DURATION', 4),
    lightConnections: Math.max(1, Math.round(num('light-connections', 'BENCH_LIGHT_CONNECTIONS', 1))),
    rates,
    rateDuration: num('rate-duration', 'BENCH_RATE_DURATION', 6),
    rssDuration: num('rss-duration', 'BENCH_RSS_DURATION', 60),
    count: Math.max(1, Math.round(num('count', 'BENCH_COUNT', 512))),
    seed: Math.round(num('seed', 'BENCH_SEED', 42)),
    scenarios: list as ScenarioName[],
    prof: flags.get('prof') === 'true' || env.BENCH_PROF === '1',
    paced: (flags.get('paced') ?? (env.BENCH_PACED === '0' ? 'false' : 'true')) === 'true',
    rssDuckdb: (flags.get('rss-duckdb') ?? env.BENCH_RSS_DUCKDB) ? (JSON.parse((flags.get('rss-duckdb') ?? env.BENCH_RSS_DUCKDB)!) as Record<string, string>) : null,
    rssConfig: (flags.get('rss-config') ?? env.BENCH_RSS_CONFIG) ? (JSON.parse((flags.get('rss-config') ?? env.BENCH_RSS_CONFIG)!) as Record<string, unknown>) : null,
    out: flags.get('out') ?? env.BENCH_OUT ?? join(REPO_ROOT, 'bench', 'out', 'recorder.json'),
  };
}
type Options = ReturnType<typeof parseArgs>;

// ---------------------------------------------------------------------------------------------
// Statistics.

function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Least-squares slope of y over x. */
function slope(points: { x: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  return den === 0 ? NaN : num / den;
}

const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Load.

interface LoadFigures {
  /** autocannon unthrottled; autocannon with overallRate; or the paced generator (bench/shared/paced.ts). */
  generator: 'autocannon' | 'autocannon overallRate' | 'paced';
  connections: number;
  /** Target overall rate (requests/s from all connections), or null when unthrottled. */
  targetRate: number | null;
  seconds: number;
  responses: number;
  ok: number;
  deliveriesPerSec: number;
  /**
   * Fixed-rate runs: 2xx responses that completed between 1 s and the last whole second of the
   * run, per second (skips the start-up second and the tail of the last one).
   */
  achievedPerSec: number;
  /**
   * How the load arrived: the share of the run's wall time with at least one request in flight, and
   * the mean number in flight during that time (Σ latency / busy time). 1 connection ⇒ ≤ 1; evenly
   * paced load ⇒ about rate × latency; the unthrottled N-connection run ⇒ N.
   */
  busyShare: number;
  meanInFlightWhileBusy: number;
  /** 2xx responses in the latency figures (autocannon: all but each connection's first; paced: all sent after 0.5 s). */
  latencySamples: number;
  latencyMs: { p50: number; p90: number; p99: number; p999: number; max: number; mean: number };
  /** Responses slower than 100 ms, and when (seconds into the run) the slowest one completed. */
  slowOver100ms: number;
  maxAtSecond: number;
  statusCodes: Record<string, number>;
  errors: number;
  timeouts: number;
  /** autocannon's own figures (latency in whole milliseconds), for cross-checking. */
  autocannon: { p50: number; p99: number; reqPerSecAvg: number; total: number } | null;
  /** Paced generator only: requests sent, and how late (ms) the latest one left against its schedule. */
  pacing?: { sent: number; maxLagMs: number; p99LagMs: number };
}

/** Latency samples (ms) and when each response arrived; also the slow ones, and how the load arrived. */
class Samples extends LatencySamples {
  maxSeen = 0;
  maxAt = 0;
  slow = 0;
  override add(latencyMs: number, endMs: number): void {
    super.add(latencyMs, endMs);
    if (latencyMs > 100) this.slow += 1;
    if (latencyMs > this.maxSeen) {
      this.maxSeen = latencyMs;
      this.maxAt = endMs / 1000;
    }
  }
  summary(seconds: number) {
    const { lat, ends, n } = this;
    const sorted = this.sorted();
    const latencySum = sorted.reduce((s, x) => s + x, 0);
    // Union of the requests' in-flight intervals [end − latency, end].
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => ends[a]! - lat[a]! - (ends[b]! - lat[b]!));
    let busy = 0;
    let curStart = -Infinity;
    let curEnd = -Infinity;
    for (const i of order) {
      const s0 = ends[i]! - lat[i]!;
      if (s0 > curEnd) {
        if (curEnd > curStart) busy += curEnd - curStart;
        curStart = s0;
        curEnd = ends[i]!;
      } else if (ends[i]! > curEnd) curEnd = ends[i]!;
    }
    if (curEnd > curStart) busy += curEnd - curStart;
    let lastEnd = -Infinity;
    for (let i = 0; i < n; i++) if (ends[i]! > lastEnd) lastEnd = ends[i]!;
    const span = n ? lastEnd - (ends[order[0]!]! - lat[order[0]!]!) : NaN;
    return {
      achievedPerSec: this.achievedPerSec(seconds),
      busyShare: busy / span,
      meanInFlightWhileBusy: latencySum / busy,
      latencySamples: n,
      latencyMs: { ...latencyPercentiles(sorted), mean: latencySum / Math.max(1, n) },
      slowOver100ms: this.slow,
      maxAtSecond: this.maxAt,
    };
  }
}

/**
 * One autocannon run over the fixed request set (bench/shared/load.ts): unthrottled, or with `rate`
 * at autocannon's overallRate (a per-second budget, not pacing). Latencies are taken from every
 * response's own (sub-millisecond) duration; autocannon's histogram keeps whole ms.
 */
async function load(url: string, requests: LoadRequest[], connections: number, seconds: number, rate: number | null = null): Promise<LoadFigures> {
  const samples = new Samples();
  const run = await autocannonRun({ url, requests, connections, seconds, rate }, samples);
  const { result } = run;
  return {
    generator: rate === null ? 'autocannon' : 'autocannon overallRate',
    connections,
    targetRate: rate,
    seconds: run.seconds,
    responses: run.responses,
    ok: run.ok,
    deliveriesPerSec: run.steadyOkPerSec,
    ...samples.summary(seconds),
    statusCodes: run.statusCodes,
    errors: result.errors,
    timeouts: result.timeouts,
    autocannon: { p50: result.latency.p50, p99: result.latency.p99, reqPerSecAvg: result.requests.average, total: result.requests.total },
  };
}

/**
 * The same request set at an evenly paced overall rate (bench/shared/paced.ts, through
 * bench/shared/load.ts). Deliveries/s here is every 2xx over the whole run's wall time.
 */
async function pacedLoad(url: string, requests: LoadRequest[], connections: number, seconds: number, rate: number): Promise<LoadFigures> {
  const samples = new Samples();
  const { run, ok } = await pacedRun({ url, requests, connections, seconds, rate }, samples);
  return {
    generator: 'paced',
    connections,
    targetRate: rate,
    seconds: run.seconds,
    responses: run.responses,
    ok,
    deliveriesPerSec: ok / run.seconds,
    ...samples.summary(seconds),
    statusCodes: run.statusCodes,
    errors: run.errors,
    timeouts: 0,
    autocannon: null,
    pacing: { sent: run.sent, maxLagMs: run.maxLagMs, p99LagMs: run.p99LagMs },
  };
}

// ---------------------------------------------------------------------------------------------
// The recorder's /metrics, for WAL group-commit figures.

async function scrape(url: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  try {
    const res = await fetch(`${url}/metrics`);
    for (const line of (await res.text()).split('\n')) {
      if (!line || line.startsWith('#')) continue;
      const sp = line.lastIndexOf(' ');
      out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
    }
  } catch {
    // A failed scrape only loses the WAL figures.
  }
  return out;
}

function sumOf(m: Map<string, number>, prefix: string): number {
  let s = 0;
  for (const [k, v] of m) if (k === prefix || k.startsWith(`${prefix}{`)) s += v;
  return s;
}

function walFigures(before: Map<string, number>, after: Map<string, number>) {
  const d = (name: string) => sumOf(after, name) - sumOf(before, name);
  const flushes = d('hookshadow_wal_flush_records_count');
  const records = d('hookshadow_wal_flush_records_sum');
  const flushSeconds = d('hookshadow_wal_flush_seconds_sum');
  const buckets: Record<string, number> = {};
  for (const [k, v] of after) {
    const m = /^hookshadow_wal_flush_records_bucket\{le="([^"]+)"\}$/.exec(k);
    if (m) buckets[m[1]!] = v - (before.get(k) ?? 0);
  }
  return {
    flushes,
    records,
    meanRecordsPerFlush: flushes ? records / flushes : NaN,
    meanFlushMs: flushes ? (flushSeconds / flushes) * 1000 : NaN,
    /** Cumulative: flushes with at most `le` records. */
    recordsPerFlushBuckets: buckets,
    rolls: d('hookshadow_roll_seconds_count'),
    rollSeconds: d('hookshadow_roll_seconds_sum'),
    deliveries: d('hookshadow_deliveries_total'),
    effects: d('hookshadow_effects_total'),
    exchanges: d('hookshadow_exchanges_total'),
    captureFailures: d('hookshadow_capture_failures_total'),
    forwardFailures: d('hookshadow_forward_failures_total'),
  };
}

// ---------------------------------------------------------------------------------------------
// Scenarios.

interface Setup {
  /** Where autocannon sends the deliveries. */
  target: string;
  requests: LoadRequest[];
  /** The recorder child, when the scenario has one. */
  recorder?: BenchChild;
  backend?: BenchChild;
  /** Every child, server under test first. */
  children: BenchChild[];
}

const LABELS: Record<ScenarioName, string> = {
  bare: 'bare Fastify endpoint (202)',
  passive: 'recorder passive, durable capture',
  direct: 'legacy bot direct (→ stub)',
  tee: 'recorder tee → bot (→ stub)',
  'tee-egress': 'recorder tee → bot → recorder egress → stub',
  'passive-nosync': 'DIAGNOSTIC passive, WAL not synced',
  'tee-nosync': 'DIAGNOSTIC tee, WAL not synced',
};

async function setUp(name: ScenarioName, hooks: LoadRequest[], webhook: LoadRequest[], nodeArgs: (who: string) => string[]): Promise<Setup> {
  switch (name) {
    case 'bare': {
      const c = await startRecorderBenchChild('bare', {}, nodeArgs('bare'));
      return { target: c.url, requests: hooks, children: [c] };
    }
    case 'passive':
    case 'passive-nosync': {
      const c = await startRecorderBenchChild('recorder', name === 'passive' ? {} : { nosync: true }, nodeArgs('recorder'));
      return { target: c.url, requests: hooks, recorder: c, children: [c] };
    }
    case 'direct': {
      const b = await startRecorderBenchChild('backend', {}, nodeArgs('backend'));
      return { target: String(b.ready.botUrl), requests: webhook, backend: b, children: [b] };
    }
    case 'tee':
    case 'tee-nosync': {
      const b = await startRecorderBenchChild('backend', {}, nodeArgs('backend'));
      const r = await startRecorderBenchChild('recorder', { legacy: `${String(b.ready.botUrl)}/webhook`, nosync: name === 'tee-nosync' }, nodeArgs('recorder'));
      return { target: r.url, requests: hooks, recorder: r, backend: b, children: [r, b] };
    }
    case 'tee-egress': {
      const b = await startRecorderBenchChild('backend', {}, nodeArgs('backend'));
      const stub = String(b.ready.stubUrl);
      const r = await startRecorderBenchChild(
        'recorder',
        { legacy: `${String(b.ready.botUrl)}/webhook`, upstreams: { github: stub, gitea: `${stub}/api/v1`, agents: stub } },
        nodeArgs('recorder'),
      );
      const ack = await b.request({ cmd: 'api', github: `${r.url}/egress/github`, gitea: `${r.url}/egress/gitea`, agents: `${r.url}/egress/agents` });
      if (ack.event !== 'ok') throw new Error(`backend refused the egress API bases: ${JSON.stringify(ack)}`);
      return { target: r.url, requests: hooks, recorder: r, backend: b, children: [r, b] };
    }
  }
}

async function runScenario(name: ScenarioName, opts: Options, hooks: LoadRequest[], webhook: LoadRequest[]) {
  const nodeArgs = (who: string) => (opts.prof ? ['--cpu-prof', `--cpu-prof-dir=${join(REPO_ROOT, 'bench', 'out', 'prof', name)}`, `--cpu-prof-name=${who}.cpuprofile`] : []);
  const setup = await setUp(name, hooks, webhook, nodeArgs);
  const stopAll = async () => {
    // The recorder first: it drains in-flight deliveries, which may still need the bot.
    const stops: Record<string, Msg | null> = {};
    for (const c of setup.children) stops[c.role] = await c.stop();
    return stops;
  };
  let measured;
  try {
    if (opts.warmup > 0) await load(setup.target, setup.requests, opts.connections, opts.warmup);
    const mBefore = setup.recorder ? await scrape(setup.recorder.url) : null;
    const backendBefore = setup.backend ? await setup.backend.request({ cmd: 'stats' }) : null;
    const statsBefore = await Promise.all(setup.children.map((c) => c.request({ cmd: 'stats' })));
    const splitBefore = setup.children.map((c) => cpuSplit(c.pid));
    const cpuBefore = setup.children.map((c) => cpuSeconds(c.pid));
    const parentBefore = process.cpuUsage();
    const main = await load(setup.target, setup.requests, opts.connections, opts.duration);
    const parentCpu = process.cpuUsage(parentBefore);
    const cpu: Record<string, number | null> = {};
    setup.children.forEach((c, i) => {
      cpu[c === setup.recorder ? 'recorder' : c.role === 'backend' ? 'bot+stub' : c.role] = round(((cpuSeconds(c.pid) - cpuBefore[i]!) / main.seconds) * 100, 0);
    });
    cpu['autocannon (parent)'] = round(((parentCpu.user + parentCpu.system) / 1e6 / main.seconds) * 100, 0);
    // CPU time per delivery of each server process (all its threads: main, libuv pool, GC, DuckDB).
    const cpuUsPerDelivery: Record<string, number | null> = {};
    setup.children.forEach((c, i) => {
      cpuUsPerDelivery[c === setup.recorder ? 'recorder' : c.role === 'backend' ? 'bot+stub' : c.role] = round(((cpuSeconds(c.pid) - cpuBefore[i]!) * 1e6) / Math.max(1, main.ok), 1);
    });
    const splitAfter = setup.children.map((c) => cpuSplit(c.pid));
    const statsAfter = await Promise.all(setup.children.map((c) => c.request({ cmd: 'stats' })));
    // Per server process: event-loop utilisation (share of wall time the JS thread was busy),
    // CPU of the main thread and of its other threads (libuv pool: WAL O_DSYNC writev; DuckDB: Parquet rolls; V8 GC/JIT).
    const threads: Record<string, { eventLoopUtilization: number | null; mainThreadCpuPercent: number | null; otherThreadsCpuPercent: number | null }> = {};
    setup.children.forEach((c, i) => {
      const active = Number(statsAfter[i]!.eluActiveMs) - Number(statsBefore[i]!.eluActiveMs);
      const idle = Number(statsAfter[i]!.eluIdleMs) - Number(statsBefore[i]!.eluIdleMs);
      threads[c === setup.recorder ? 'recorder' : c.role === 'backend' ? 'bot+stub' : c.role] = {
        eventLoopUtilization: round(active / (active + idle), 3),
        mainThreadCpuPercent: round(((splitAfter[i]!.main - splitBefore[i]!.main) / main.seconds) * 100, 0),
        otherThreadsCpuPercent: round(((splitAfter[i]!.other - splitBefore[i]!.other) / main.seconds) * 100, 0),
      };
    });
    const mAfter = setup.recorder ? await scrape(setup.recorder.url) : null;
    const backendAfter = setup.backend ? await setup.backend.request({ cmd: 'stats' }) : null;
    const rssAfterLoad = Object.fromEntries(setup.children.map((c) => [c.role, rssBytes(c.pid)]));
    const light = opts.lightDuration > 0 ? await load(setup.target, setup.requests, opts.lightConnections, opts.lightDuration) : null;
    // Fixed-rate runs, on the same (warm) servers: same connections, autocannon's overallRate.
    // Then, with --paced, the same rate from the evenly paced generator (bench/shared/paced.ts).
    const fixedRun = async (run: () => Promise<LoadFigures>) => {
      const before = setup.recorder ? await scrape(setup.recorder.url) : null;
      const cpu0 = setup.children.map((c) => cpuSeconds(c.pid));
      const p0 = process.cpuUsage();
      const figures = await run();
      const pc = process.cpuUsage(p0);
      const after = setup.recorder ? await scrape(setup.recorder.url) : null;
      const cpuPct: Record<string, number | null> = {};
      setup.children.forEach((c, i) => {
        cpuPct[c === setup.recorder ? 'recorder' : c.role === 'backend' ? 'bot+stub' : c.role] = round(((cpuSeconds(c.pid) - cpu0[i]!) / figures.seconds) * 100, 0);
      });
      cpuPct['load generator (parent)'] = round(((pc.user + pc.system) / 1e6 / figures.seconds) * 100, 0);
      return { load: figures, cpuPercentOfOneCore: cpuPct, wal: before && after ? walFigures(before, after) : null };
    };
    const fixedRate: { rate: number; overallRate: Awaited<ReturnType<typeof fixedRun>>; paced: Awaited<ReturnType<typeof fixedRun>> | null }[] = [];
    if (RATE_SCENARIOS.includes(name) && opts.rateDuration > 0) {
      for (const rate of opts.rates) {
        const overallRate = await fixedRun(() => load(setup.target, setup.requests, opts.connections, opts.rateDuration, rate));
        const paced = opts.paced ? await fixedRun(() => pacedLoad(setup.target, setup.requests, opts.connections, opts.rateDuration, rate)) : null;
        fixedRate.push({ rate, overallRate, paced });
      }
    }
    const recorderStats = setup.recorder ? await setup.recorder.request({ cmd: 'stats' }) : null;
    const stubCalls = backendBefore && backendAfter ? Number(backendAfter.stubCalls) - Number(backendBefore.stubCalls) : null;
    measured = {
      name,
      label: LABELS[name],
      main,
      light,
      fixedRate,
      cpuPercentOfOneCore: cpu,
      cpuUsPerDelivery,
      threads,
      rssAfterLoadBytes: rssAfterLoad,
      wal: mBefore && mAfter ? walFigures(mBefore, mAfter) : null,
      stubCallsPerDelivery: stubCalls !== null ? stubCalls / Math.max(1, main.ok) : null,
      stubCallsByKind: backendAfter?.byKind ?? null,
      recorderAfterLoad: recorderStats ? { walBytes: recorderStats.walBytes, pendingSegments: recorderStats.pendingSegments } : null,
    };
  } catch (err) {
    await stopAll().catch(() => undefined);
    throw err;
  }
  return { ...measured, stop: await stopAll() };
}

// ---------------------------------------------------------------------------------------------
// RSS flatness: the passive recorder under steady load, RSS sampled every second from /proc.

async function runRss(opts: Options, hooks: LoadRequest[]) {
  const c = await startRecorderBenchChild('recorder', { ...(opts.rssConfig ? { config: opts.rssConfig } : {}), ...(opts.rssDuckdb ? { duckdb: opts.rssDuckdb } : {}) });
  const samples: { t: number; rss: number; heapUsed: number | null; external: number | null; arrayBuffers: number | null; walBytes: number | null; pendingSegments: number | null }[] = [];
  const started = performance.now();
  const sample = async () => {
    const t = (performance.now() - started) / 1000;
    const rss = rssBytes(c.pid);
    let m: Msg | null = null;
    try {
      m = await c.request({ cmd: 'stats' }, 2_000);
    } catch {
      // keep the /proc figure alone
    }
    samples.push({
      t: round(t, 2)!,
      rss,
      heapUsed: m ? Number(m.heapUsed) : null,
      external: m ? Number(m.external) : null,
      arrayBuffers: m ? Number(m.arrayBuffers) : null,
      walBytes: m ? Number(m.walBytes) : null,
      pendingSegments: m ? Number(m.pendingSegments) : null,
    });
  };
  await sample(); // idle, t ≈ 0
  const timer = setInterval(() => void sample(), 1000);
  let figures: LoadFigures;
  try {
    figures = await load(c.url, hooks, opts.connections, opts.rssDuration);
  } finally {
    clearInterval(timer);
  }
  await sample();
  const metrics = await scrape(c.url);
  const stopped = await c.stop();

  const at = (sec: number) => {
    // The last sample taken at or before `sec` seconds into the load.
    let best = samples[0]!;
    for (const s of samples) if (s.t <= sec + 0.5) best = s;
    return best;
  };
  const mib = (b: number) => b / MiB;
  const fit = (from: number, to: number) => slope(samples.filter((s) => s.t >= from && s.t <= to + 0.5).map((s) => ({ x: s.t / 60, y: mib(s.rss) })));
  const end = opts.rssDuration;
  const r5 = at(5).rss;
  const r30 = at(Math.min(30, end / 2)).rss;
  const rEnd = at(end).rss;
  const maxRss = Math.max(...samples.map((s) => s.rss));
  const r10 = at(10).rss;
  const slopeFrom10 = fit(10, end);
  // Flat (decided before the final run): the least-squares slope of RSS from 10 s to the end is at
  // most 5 MiB/min, and no sample exceeds 1.5 × the RSS at 10 s (so a transient spike also counts).
  const flat = Number.isFinite(slopeFrom10) && slopeFrom10 <= 5 && maxRss <= 1.5 * r10;
  const heapAt = (sec: number) => round(mib(at(sec).heapUsed ?? NaN), 1);
  return {
    seconds: end,
    load: figures,
    rssMiB: {
      idle: round(mib(samples[0]!.rss), 1),
      at5s: round(mib(r5), 1),
      atHalf: round(mib(r30), 1),
      halfSeconds: Math.min(30, end / 2),
      atEnd: round(mib(rEnd), 1),
      max: round(mib(maxRss), 1),
    },
    slopeMiBPerMin: { from10s: round(slopeFrom10, 2), secondHalf: round(fit(end / 2, end), 2) },
    rssAt10sMiB: round(mib(r10), 1),
    /** Median RSS over the first and the second half of the run (robust to roll spikes). */
    medianMiB: { firstHalf: round(median(samples.filter((s) => s.t >= 1 && s.t < end / 2).map((s) => mib(s.rss))), 1), secondHalf: round(median(samples.filter((s) => s.t >= end / 2).map((s) => mib(s.rss))), 1) },
    heapUsedMiB: { at5s: heapAt(5), atHalf: heapAt(Math.min(30, end / 2)), atEnd: heapAt(end), max: round(mib(Math.max(...samples.map((s) => s.heapUsed ?? 0))), 1) },
    flat,
    rolls: sumOf(metrics, 'hookshadow_roll_seconds_count'),
    rollSecondsTotal: round(sumOf(metrics, 'hookshadow_roll_seconds_sum'), 2),
    rollFailures: sumOf(metrics, 'hookshadow_roll_failures_total'),
    meanRecordsPerFlush: round(sumOf(metrics, 'hookshadow_wal_flush_records_sum') / sumOf(metrics, 'hookshadow_wal_flush_records_count'), 1),
    stop: stopped,
    samples: samples.map((s) => ({ ...s, rssMiB: round(mib(s.rss), 1) })),
  };
}

// ---------------------------------------------------------------------------------------------
// Output.

function table(header: string[], rows: (string | number | null)[][]): string {
  const cells = [header, ...rows.map((r) => r.map((c) => (c === null ? '—' : String(c))))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(cells[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

function machine() {
  return {
    ...hostInfo(),
    platform: `${process.platform} ${process.arch}`,
    tmpdir: tmpdir(),
    tmpdirFilesystem: sh(`df -T ${tmpdir()} | tail -1 | awk '{print $1" "$2}'`),
    autocannon: packageVersion(REPO_ROOT, 'autocannon'),
    fastify: packageVersion(REPO_ROOT, 'fastify'),
  };
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const startedAt = new Date().toISOString();
  const t0 = performance.now();

  // Realistic bodies: the generator's slim deliveries, kept when 1-8 KiB.
  const selected = selectDeliveries(opts.count, opts.seed);
  const generated = selected.deliveries;
  const dropped = selected.droppedOutside1to8KiB;
  const bodies = {
    ...bodyFigures(selected),
    meanBytes: Math.round(selected.sizes.reduce((s, x) => s + x, 0) / selected.sizes.length),
    bySource: tally(generated, (d) => d.source),
  };
  // Each delivery with its own headers; to the recorder (and the bare endpoint) at /hooks/<its source>, to the bot at /webhook.
  const hooks: LoadRequest[] = generated.map((d) => ({ method: 'POST', path: `/hooks/${d.source}`, headers: { ...d.headers }, body: d.body }));
  const webhook: LoadRequest[] = generated.map((d) => ({ method: 'POST', path: '/webhook', headers: { ...d.headers }, body: d.body }));

  const info = machine();
  console.log(`hookshadow recorder benchmark — ${info.nproc} CPUs (${info.cpuModel}), node ${info.node}, autocannon ${info.autocannon}`);
  console.log(
    `${opts.connections} connections, ${opts.warmup} s warm-up + ${opts.duration} s per scenario` +
      (opts.lightDuration > 0 ? `, then ${opts.lightDuration} s at ${opts.lightConnections} connection(s)` : '') +
      `; ${bodies.count} distinct deliveries (${bodies.bySource.github ?? 0} github, ${bodies.bySource.gitea ?? 0} gitea), ` +
      `bodies ${bodies.minBytes}/${bodies.medianBytes}/${bodies.maxBytes} B min/median/max (${dropped} generated outside 1-8 KiB skipped)`,
  );

  const results: Awaited<ReturnType<typeof runScenario>>[] = [];
  for (const name of opts.scenarios) {
    process.stdout.write(`  ${name.padEnd(11)} ... `);
    const r = await runScenario(name, opts, hooks, webhook);
    results.push(r);
    const bad = r.main.responses - r.main.ok + r.main.errors;
    console.log(
      `${r.main.deliveriesPerSec.toFixed(0)}/s  p50 ${r.main.latencyMs.p50.toFixed(2)} ms  p99 ${r.main.latencyMs.p99.toFixed(2)} ms` +
        (bad > 0 ? `  (${bad} non-2xx/errors: ${JSON.stringify(r.main.statusCodes)}, errors ${r.main.errors})` : '') +
        r.fixedRate
          .map(
            (f) =>
              `;  @${f.rate}/s: p99 ${f.overallRate.load.latencyMs.p99.toFixed(2)} ms` +
              (f.paced ? ` (paced ${f.paced.load.latencyMs.p99.toFixed(2)} ms)` : ''),
          )
          .join(''),
    );
  }

  let rss: Awaited<ReturnType<typeof runRss>> | null = null;
  if (opts.rssDuration > 0) {
    process.stdout.write(`  rss (passive, ${opts.rssDuration} s) ... `);
    rss = await runRss(opts, hooks);
    console.log(`${rss.load.deliveriesPerSec.toFixed(0)}/s; RSS ${rss.rssMiB.at5s} → ${rss.rssMiB.atHalf} → ${rss.rssMiB.atEnd} MiB (max ${rss.rssMiB.max})`);
  }

  // ----- tables
  const by = (n: ScenarioName) => results.find((r) => r.name === n);
  console.log('');
  console.log(
    table(
      ['scenario', 'deliveries/s', 'p50 ms', 'p99 ms', 'non-2xx', `p50 @${opts.lightConnections}c`, `p99 @${opts.lightConnections}c`, 'CPU µs/delivery (server / backend)', 'CPU % (server / backend / autocannon)'],
      results.map((r) => {
        const cpu = r.cpuPercentOfOneCore;
        const us = r.cpuUsPerDelivery;
        const server = (o: Record<string, number | null>) => o.recorder ?? o.bare ?? null;
        return [
          `${r.name}: ${r.label}`,
          r.main.deliveriesPerSec.toFixed(0),
          r.main.latencyMs.p50.toFixed(2),
          r.main.latencyMs.p99.toFixed(2),
          r.main.responses - (r.main.statusCodes['200'] ?? 0) - (r.main.statusCodes['202'] ?? 0) + r.main.errors,
          r.light ? r.light.latencyMs.p50.toFixed(2) : null,
          r.light ? r.light.latencyMs.p99.toFixed(2) : null,
          `${server(us)?.toFixed(0) ?? '—'} / ${us['bot+stub']?.toFixed(0) ?? '—'}`,
          `${server(cpu) ?? '—'} / ${cpu['bot+stub'] ?? '—'} / ${cpu['autocannon (parent)'] ?? '—'}`,
        ];
      }),
    ),
  );

  const rateRows = results.flatMap((r) =>
    r.fixedRate.flatMap((f) =>
      [f.overallRate, f.paced].flatMap((run) => {
        if (!run) return [];
        const l = run.load;
        const cpu = run.cpuPercentOfOneCore;
        return [
          [
            `${r.name} @ ${f.rate}/s`,
            l.generator === 'paced' ? 'paced' : 'overallRate',
            l.achievedPerSec.toFixed(0),
            l.latencyMs.p50.toFixed(2),
            l.latencyMs.p90.toFixed(2),
            l.latencyMs.p99.toFixed(2),
            l.latencyMs.max.toFixed(1),
            l.responses - l.ok + l.errors,
            `${(l.busyShare * 100).toFixed(0)}% / ${l.meanInFlightWhileBusy.toFixed(1)}`,
            `${cpu.recorder ?? '—'} / ${cpu['bot+stub'] ?? '—'} / ${cpu['load generator (parent)'] ?? '—'}`,
            run.wal ? `${run.wal.meanRecordsPerFlush.toFixed(1)} / ${run.wal.meanFlushMs.toFixed(2)}` : '—',
            run.wal ? `${run.wal.rolls} / ${run.wal.rollSeconds.toFixed(2)} s` : '—',
          ],
        ];
      }),
    ),
  );
  if (rateRows.length > 0) {
    console.log('');
    console.log(
      `fixed rate (${opts.connections} connections, ${opts.rateDuration} s each, after the runs above; overallRate = autocannon's per-second budget, ` +
        `paced = evenly spaced sends):`,
    );
    console.log(
      table(
        ['scenario @ target', 'generator', 'achieved/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'non-2xx', 'busy / in flight', 'CPU % (recorder / backend / generator)', 'WAL records per commit / ms', 'rolls / time'],
        rateRows,
      ),
    );
  }

  // ----- targets
  const bare = by('bare');
  const passive = by('passive');
  const direct = by('direct');
  const tee = by('tee');
  const egress = by('tee-egress');
  const comparisons = {
    passiveOverBare: bare && passive ? passive.main.deliveriesPerSec / bare.main.deliveriesPerSec : null,
    teeMinusDirectP99Ms: tee && direct ? tee.main.latencyMs.p99 - direct.main.latencyMs.p99 : null,
    teeMinusDirectP50Ms: tee && direct ? tee.main.latencyMs.p50 - direct.main.latencyMs.p50 : null,
    teeOverDirectThroughput: tee && direct ? tee.main.deliveriesPerSec / direct.main.deliveriesPerSec : null,
    lightTeeMinusDirectP99Ms: tee?.light && direct?.light ? tee.light.latencyMs.p99 - direct.light.latencyMs.p99 : null,
    lightTeeMinusDirectP50Ms: tee?.light && direct?.light ? tee.light.latencyMs.p50 - direct.light.latencyMs.p50 : null,
    egressOverDirectThroughput: egress && direct ? egress.main.deliveriesPerSec / direct.main.deliveriesPerSec : null,
    egressMinusDirectP50Ms: egress && direct ? egress.main.latencyMs.p50 - direct.main.latencyMs.p50 : null,
    egressMinusDirectP99Ms: egress && direct ? egress.main.latencyMs.p99 - direct.main.latencyMs.p99 : null,
    lightEgressMinusDirectP50Ms: egress?.light && direct?.light ? egress.light.latencyMs.p50 - direct.light.latencyMs.p50 : null,
    lightEgressMinusDirectP99Ms: egress?.light && direct?.light ? egress.light.latencyMs.p99 - direct.light.latencyMs.p99 : null,
    /** Per fixed rate: the same differences on runs at that overall rate (same connections). */
    fixedRate: opts.rates.map((rate) => {
      const cmp = (gen: 'overallRate' | 'paced') => {
        const at = (r: typeof direct) => r?.fixedRate.find((f) => f.rate === rate)?.[gen]?.load ?? null;
        const d = at(direct);
        const t = at(tee);
        const e = at(egress);
        if (!d && !t && !e) return null;
        // Sustained: achieved within 3% of the target, and the target below that setup's saturation throughput.
        const sustained = (f: LoadFigures | null, r: typeof direct) => (f && r ? f.achievedPerSec >= 0.97 * rate && rate < r.main.deliveriesPerSec : null);
        return {
          achieved: { direct: d?.achievedPerSec ?? null, tee: t?.achievedPerSec ?? null, teeEgress: e?.achievedPerSec ?? null },
          sustained: { direct: sustained(d, direct), tee: sustained(t, tee), teeEgress: sustained(e, egress) },
          teeMinusDirectP50Ms: t && d ? t.latencyMs.p50 - d.latencyMs.p50 : null,
          teeMinusDirectP99Ms: t && d ? t.latencyMs.p99 - d.latencyMs.p99 : null,
          egressMinusDirectP50Ms: e && d ? e.latencyMs.p50 - d.latencyMs.p50 : null,
          egressMinusDirectP99Ms: e && d ? e.latencyMs.p99 - d.latencyMs.p99 : null,
        };
      };
      return { rate, overallRate: cmp('overallRate'), paced: cmp('paced') };
    }),
  };
  const verdict = (ok: boolean | null) => (ok === null ? 'not measured' : ok ? 'PASS' : 'FAIL');
  const targets = {
    passiveAtLeastHalfOfBare: {
      target: 'passive durable capture ≥ 50% of the bare endpoint throughput',
      value: round(comparisons.passiveOverBare ?? NaN, 3),
      verdict: verdict(comparisons.passiveOverBare === null ? null : comparisons.passiveOverBare >= 0.5),
    },
    teeP99Overhead: {
      target: `tee adds ≤ 2 ms to p99 over calling the legacy directly (saturation: ${opts.connections} connections, unthrottled)`,
      valueMs: round(comparisons.teeMinusDirectP99Ms ?? NaN, 2),
      verdict: verdict(comparisons.teeMinusDirectP99Ms === null ? null : comparisons.teeMinusDirectP99Ms <= 2),
      lightLoadValueMs: round(comparisons.lightTeeMinusDirectP99Ms ?? NaN, 2),
      lightLoadVerdict: verdict(comparisons.lightTeeMinusDirectP99Ms === null ? null : comparisons.lightTeeMinusDirectP99Ms <= 2),
    },
    teeP99OverheadFixedRate: {
      target: 'tee adds ≤ 2 ms to p99 over calling the legacy directly, at a fixed rate below saturation',
      /** The verdict as specified: autocannon overallRate, same connections. `paced`: the evenly paced generator's figures. */
      perRate: comparisons.fixedRate.map((c) => {
        const v = (x: (typeof c)['paced']) =>
          x && {
            valueMs: round(x.teeMinusDirectP99Ms ?? NaN, 2),
            verdict: verdict(x.teeMinusDirectP99Ms === null ? null : x.teeMinusDirectP99Ms <= 2),
            /** Both direct and tee sustained the rate (else the rate is not below saturation for both). */
            belowSaturation: x.sustained.direct === null || x.sustained.tee === null ? null : x.sustained.direct && x.sustained.tee,
          };
        return { rate: c.rate, overallRate: v(c.overallRate), paced: v(c.paced) };
      }),
    },
    rssFlat: {
      target: `recorder RSS flat over ${opts.rssDuration} s (least-squares slope from 10 s ≤ 5 MiB/min and max ≤ 1.5 × RSS at 10 s)`,
      verdict: verdict(rss ? rss.flat : null),
    },
  };
  console.log('');
  if (comparisons.passiveOverBare !== null) console.log(`passive / bare throughput          ${(comparisons.passiveOverBare * 100).toFixed(1)}%   → ${targets.passiveAtLeastHalfOfBare.verdict} (target ≥ 50%)`);
  if (comparisons.teeMinusDirectP99Ms !== null) {
    console.log(`tee p99 − direct p99               ${comparisons.teeMinusDirectP99Ms.toFixed(2)} ms → ${targets.teeP99Overhead.verdict} (target ≤ 2 ms)`);
    if (comparisons.lightTeeMinusDirectP99Ms !== null) {
      console.log(`  same at ${opts.lightConnections} connection(s)               ${comparisons.lightTeeMinusDirectP99Ms.toFixed(2)} ms → ${targets.teeP99Overhead.lightLoadVerdict}`);
    }
    console.log(`tee / direct throughput            ${((comparisons.teeOverDirectThroughput ?? NaN) * 100).toFixed(1)}%`);
  }
  for (const [i, c] of comparisons.fixedRate.entries()) {
    const t = targets.teeP99OverheadFixedRate.perRate[i]!;
    for (const gen of ['overallRate', 'paced'] as const) {
      const x = c[gen];
      const tv = t[gen];
      if (!x || !tv) continue;
      if (x.teeMinusDirectP99Ms !== null) {
        console.log(
          `tee p99 − direct p99 @ ${c.rate}/s ${gen}`.padEnd(50) +
            `${x.teeMinusDirectP99Ms.toFixed(2)} ms → ${tv.verdict} (target ≤ 2 ms at a fixed rate below saturation)` +
            (tv.belowSaturation === false ? '  [rate NOT sustained by both: not below saturation]' : ''),
        );
      }
      if (x.egressMinusDirectP99Ms !== null) {
        console.log(
          `tee+egress p99 − direct p99 @ ${c.rate}/s ${gen}`.padEnd(50) +
            `${x.egressMinusDirectP99Ms.toFixed(2)} ms` +
            (x.sustained.teeEgress === false ? '  [tee+egress did NOT sustain the rate]' : ''),
        );
      }
    }
  }
  if (comparisons.egressOverDirectThroughput !== null) {
    console.log(
      `tee+egress vs direct               ${(comparisons.egressOverDirectThroughput * 100).toFixed(1)}% throughput, ` +
        `p50 +${comparisons.egressMinusDirectP50Ms!.toFixed(2)} ms, p99 +${comparisons.egressMinusDirectP99Ms!.toFixed(2)} ms`,
    );
  }
  if (rss) {
    console.log(
      `RSS (passive, ${rss.seconds} s)            idle ${rss.rssMiB.idle}, 5 s ${rss.rssMiB.at5s}, ${rss.rssMiB.halfSeconds} s ${rss.rssMiB.atHalf}, ` +
        `${rss.seconds} s ${rss.rssMiB.atEnd}, max ${rss.rssMiB.max} MiB; slope ${rss.slopeMiBPerMin.from10s} MiB/min from 10 s, ` +
        `${rss.slopeMiBPerMin.secondHalf} MiB/min 2nd half → ${targets.rssFlat.verdict}`,
    );
    console.log(
      `  median RSS 1st half ${rss.medianMiB.firstHalf}, 2nd half ${rss.medianMiB.secondHalf} MiB; JS heap used 5 s ${rss.heapUsedMiB.at5s}, ` +
        `${rss.rssMiB.halfSeconds} s ${rss.heapUsedMiB.atHalf}, ${rss.seconds} s ${rss.heapUsedMiB.atEnd}, max ${rss.heapUsedMiB.max} MiB; ` +
        `${rss.rolls} Parquet rolls taking ${rss.rollSecondsTotal} s` +
        (rss.rollFailures > 0 ? `, ${rss.rollFailures} failed roll attempts` : ''),
    );
  }
  for (const r of results) {
    if (r.wal) {
      console.log(
        `WAL ${r.name.padEnd(10)} ${r.wal.flushes} group commits, ${r.wal.meanRecordsPerFlush.toFixed(1)} records each, ` +
          `${r.wal.meanFlushMs.toFixed(2)} ms per ${r.name.endsWith('-nosync') ? 'unsynced' : 'durable (O_DSYNC)'} write; ${r.wal.rolls} Parquet rolls, ${r.wal.rollSeconds.toFixed(2)} s`,
      );
    }
  }

  const report = {
    ...reportHeader('recorder', startedAt, t0),
    machine: info,
    options: opts,
    topology:
      'autocannon in the parent process; each server in a child process: bare | recorder | backend (legacy bot + forge stub in one process). ' +
      'tee and tee-egress run the recorder child and the backend child side by side.',
    bodies,
    scenarios: results,
    comparisons,
    targets,
    rss,
  };
  mkdirSync(join(opts.out, '..'), { recursive: true });
  writeFileSync(opts.out, JSON.stringify(report, null, 2) + '\n');
  console.log(`\nraw figures: ${opts.out} (${report.totalSeconds} s in all)`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

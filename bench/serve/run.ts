/**
 * Serve benchmark: the recorder alone in tee mode against `hookshadow serve` with 20 flows in
 * dry-run, side by side in one run, on the same deliveries and the same legacy handler.
 *
 *   recorder  startRecorder: tee to the demo legacy bot, whose API calls go through the recorder's
 *             egress proxy to the forge stub (bench/recorder's tee-egress topology)
 *   serve     startServe with the same recorder config, plus the dispatcher running 20 flows in
 *             dry-run `settle_ms` after the legacy handler answered, compared with its effects
 *
 * Configurations alternate (recorder, serve, recorder, serve, ...: --rounds pairs) to spread drift
 * over both. Each gets fresh processes: the server under test (bench/serve/server.ts) and the
 * backend, the demo legacy bot and forge stub in one process (bench/recorder/server.ts `backend`);
 * the load generators run here. For each:
 *
 *   1. warm-up: the paced generator at --rate for --warmup s, not measured; wait for serve's queue;
 *   2. sustained: the paced generator (bench/shared/paced.ts: request i leaves at i/rate over
 *      --connections keep-alive connections) at --rate for --sustain s: acknowledgement p50/p99;
 *      for serve, whether the flows keep up (settled/s, queue depth, drops, drain time);
 *   3. saturation: autocannon, --connections, unthrottled, for --duration s: deliveries/s and
 *      acknowledgement p50/p99; for serve, settled/s meanwhile and how fast the queue drains after.
 *
 *   npm run bench:serve [-- --rounds 2 --rate 1000 --sustain 20 ...]   (see --help)
 *
 * Prints tables and writes the raw figures to bench/out/serve-<date>.json. The targets are
 * evaluated and reported, never enforced.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRecorderBenchChild } from '../recorder/child.js';
import { numberOption, parseFlags } from '../shared/args.js';
import type { BenchChild, Msg } from '../shared/child-protocol.js';
import { autocannonRun, LatencySamples, latencyPercentiles, pacedRun } from '../shared/load.js';
import { gitDirty, gitHead, hostInfo, machineBusySeconds, packageVersion } from '../shared/machine.js';
import { cpuSeconds, cpuSplit } from '../shared/proc.js';
import { mdTable, reportHeader, round } from '../shared/report.js';
import { repoRoot } from '../replay/flows.js';
import { startServeBenchChild } from './child.js';
import { benchDeliveries, type HookRequest } from './deliveries.js';
import { matchMix, writeBenchFlows } from './flows.js';

// ---------------------------------------------------------------------------------------------
// Options: flags override environment variables override defaults.

const HELP = `Serve benchmark: the recorder alone (tee) against serve with 20 dry-run flows.
  --rounds N          recorder/serve pairs, alternating        (BENCH_ROUNDS, default 2)
  --rate R            sustained rate, deliveries/s              (BENCH_RATE, default 1000)
  --sustain S         seconds of the sustained (paced) phase    (BENCH_SUSTAIN, default 20)
  --warmup S          paced warm-up at --rate, not measured     (BENCH_WARMUP, default 3)
  --duration S        seconds of the unthrottled autocannon run, 0 = skip (BENCH_DURATION, default 8)
  --connections N     connections of both generators            (BENCH_CONNECTIONS, default 32)
  --count N           distinct deliveries                       (BENCH_COUNT, default 512)
  --seed N            generator seed                            (BENCH_SEED, default 42)
  --settle-ms MS      serve.settle_ms                           (BENCH_SETTLE_MS, default 200)
  --queue-size N      serve.queue_size                          (BENCH_QUEUE_SIZE, default 100000)
  --drain-timeout S   longest wait for serve's queue to empty   (BENCH_DRAIN_TIMEOUT, default 60)
  --wait-quiet S      before each configuration, wait up to S s for other processes to use < 0.2 cores
                                                                (BENCH_WAIT_QUIET, default 30)
  --configs LIST      subset of recorder,serve                  (BENCH_CONFIGS, default recorder,serve);
                      serve-off (diagnostic: serve with every flow off, so no dispatcher) runs only when named
  --prof              run the servers under test with --cpu-prof (profiles in bench/out/prof/serve/)
  --out FILE          JSON output                               (BENCH_OUT, default bench/out/serve-<YYYY-MM-DD>.json)`;

const CONFIGS = ['recorder', 'serve'] as const;
/** Diagnostic, run only when named in --configs: serve with every flow `off` (no dispatcher), to split serve's own overhead from the flows'. */
const EXTRA_CONFIGS = ['serve-off'] as const;
type ConfigName = (typeof CONFIGS)[number] | (typeof EXTRA_CONFIGS)[number];
const ROOT = repoRoot();

function parseArgs(argv: string[]) {
  const flags = parseFlags(argv, HELP, ['prof']);
  const env = process.env;
  const num = (flag: string, envName: string, dflt: number) => numberOption(flags, flag, envName, dflt);
  const configs = (flags.get('configs') ?? env.BENCH_CONFIGS ?? CONFIGS.join(',')).split(',').map((s) => s.trim()).filter(Boolean);
  const known: readonly string[] = [...CONFIGS, ...EXTRA_CONFIGS];
  for (const c of configs) if (!known.includes(c)) throw new Error(`unknown config ${c}; use ${known.join(',')}`);
  return {
    rounds: Math.max(1, Math.round(num('rounds', 'BENCH_ROUNDS', 2))),
    rate: Math.max(1, Math.round(num('rate', 'BENCH_RATE', 1000))),
    sustain: num('sustain', 'BENCH_SUSTAIN', 20),
    warmup: num('warmup', 'BENCH_WARMUP', 3),
    duration: num('duration', 'BENCH_DURATION', 8),
    connections: Math.max(1, Math.round(num('connections', 'BENCH_CONNECTIONS', 32))),
    count: Math.max(1, Math.round(num('count', 'BENCH_COUNT', 512))),
    seed: Math.round(num('seed', 'BENCH_SEED', 42)),
    settleMs: Math.round(num('settle-ms', 'BENCH_SETTLE_MS', 200)),
    queueSize: Math.max(1, Math.round(num('queue-size', 'BENCH_QUEUE_SIZE', 100_000))),
    drainTimeout: num('drain-timeout', 'BENCH_DRAIN_TIMEOUT', 60),
    waitQuiet: num('wait-quiet', 'BENCH_WAIT_QUIET', 30),
    configs: configs as ConfigName[],
    prof: flags.get('prof') === 'true' || env.BENCH_PROF === '1',
    out: flags.get('out') ?? env.BENCH_OUT ?? join(ROOT, 'bench', 'out', `serve-${new Date().toISOString().slice(0, 10)}.json`),
  };
}
type Options = ReturnType<typeof parseArgs>;

// ---------------------------------------------------------------------------------------------
// Load.

/** Acknowledgement latencies (ms): how many, and their percentiles. */
function ackLatencies(latencies: ArrayLike<number>) {
  const sorted = Float64Array.from(latencies).sort();
  return { samples: sorted.length, ...latencyPercentiles(sorted) };
}

interface LoadRun {
  generator: 'paced' | 'autocannon';
  connections: number;
  targetRate: number | null;
  seconds: number;
  ok: number;
  non2xx: number;
  errors: number;
  /** Paced: 2xx responses per second from 1 s to the last whole second. autocannon: 2xx per second once every connection had answered. */
  deliveriesPerSec: number;
  latencyMs: ReturnType<typeof ackLatencies>;
  /** Paced only: how late the timer handed requests over against their schedule. */
  pacing?: { maxLagMs: number; p99LagMs: number };
  /** Not serialized: the raw latencies, pooled across rounds for the headline figures. */
  raw: number[];
}

/** The paced generator (bench/shared/load.ts) at `rate` for `seconds`. */
async function paced(url: string, requests: HookRequest[], connections: number, seconds: number, rate: number): Promise<LoadRun> {
  const samples = new LatencySamples();
  const { run, ok } = await pacedRun({ url, requests, connections, seconds, rate }, samples);
  const raw = Array.from(samples.latencies());
  return {
    generator: 'paced',
    connections,
    targetRate: rate,
    seconds: run.seconds,
    ok,
    non2xx: run.responses - ok - run.errors,
    errors: run.errors,
    deliveriesPerSec: samples.achievedPerSec(seconds),
    latencyMs: ackLatencies(raw),
    pacing: { maxLagMs: run.maxLagMs, p99LagMs: run.p99LagMs },
    raw,
  };
}

/** autocannon, unthrottled (bench/shared/load.ts): each connection's first response counts for throughput, not latency. */
async function saturate(url: string, requests: HookRequest[], connections: number, seconds: number): Promise<LoadRun> {
  const samples = new LatencySamples();
  const run = await autocannonRun({ url, requests, connections, seconds, rate: null }, samples);
  const raw = Array.from(samples.latencies());
  return {
    generator: 'autocannon',
    connections,
    targetRate: null,
    seconds: run.seconds,
    ok: run.ok,
    non2xx: run.responses - run.ok,
    errors: run.result.errors + run.result.timeouts,
    deliveriesPerSec: run.steadyOkPerSec,
    latencyMs: ackLatencies(raw),
    raw,
  };
}

// ---------------------------------------------------------------------------------------------
// One configuration: its processes, its phases.

interface Stats {
  t: number;
  queued: number;
  maxQueued: number;
  settled: number;
  dropped: number;
  deliveries: number;
  rss: number;
  eluActiveMs: number;
  eluIdleMs: number;
}

const stats = async (server: BenchChild, t0: number): Promise<Stats> => {
  const m = await server.request({ cmd: 'stats' });
  return {
    t: (performance.now() - t0) / 1000,
    queued: Number(m.queued),
    maxQueued: Number(m.maxQueued),
    settled: Number(m.settled),
    dropped: Number(m.dropped),
    deliveries: Number(m.deliveries),
    rss: Number(m.rss),
    eluActiveMs: Number(m.eluActiveMs),
    eluIdleMs: Number(m.eluIdleMs),
  };
};

/** Waits until serve has settled (or dropped) every delivery it captured; at once when nothing settles. Seconds waited, or null on timeout. */
async function drain(server: BenchChild, settles: boolean, timeoutS: number): Promise<{ seconds: number | null; last: Stats }> {
  const t0 = performance.now();
  for (;;) {
    const s = await stats(server, t0);
    const done = !settles || (s.queued === 0 && s.settled + s.dropped >= s.deliveries);
    if (done) return { seconds: s.t, last: s };
    if (s.t > timeoutS) return { seconds: null, last: s };
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface PhaseFigures {
  load: LoadRun;
  /** Per second during the load: the server's counters (serve's queue and settled figures). */
  timeline: Stats[];
  /** CPU, % of one core, over the load; the server's split into its main JS thread and its other threads (libuv pool, DuckDB, GC; serve's live worker thread). */
  cpuPercent: { server: number | null; serverMainThread: number | null; serverOtherThreads: number | null; backend: number | null; generator: number | null; otherProcesses: number | null };
  /** Server CPU µs per acknowledged delivery (all its threads). */
  serverCpuUsPerDelivery: number | null;
  serverEventLoopUtilization: number | null;
  /** The server's event-loop delay during the load (ms): how long a ready callback, such as a new request, waited. */
  serverLoopDelayMs: { p50: number; p99: number; max: number; mean: number };
  serve: {
    acknowledged: number;
    settledDuringLoad: number;
    /** Settled per second from 2 s into the load to its end (serve reaches its steady state by then). */
    settledPerSecSteady: number | null;
    ackedPerSecSteady: number | null;
    maxQueueDepth: number;
    queueAtEndOfLoad: number;
    dropped: number;
    /**
     * After the load: seconds until everything was settled, how many were left, and the rate they went
     * at (at least settle_ms by design: the last deliveries are not due before; not a capacity).
     */
    drainSeconds: number | null;
    drainedDeliveries: number;
    drainSettledPerSec: number | null;
  } | null;
}

async function phase(server: BenchChild, settles: boolean, backend: BenchChild, opts: Options, run: () => Promise<LoadRun>): Promise<PhaseFigures> {
  const t0 = performance.now();
  const before = await stats(server, t0);
  await server.request({ cmd: 'lag', reset: true });
  const cpu0 = { server: cpuSeconds(server.pid), split: cpuSplit(server.pid), backend: cpuSeconds(backend.pid), parent: process.cpuUsage(), machine: machineBusySeconds() };
  const timeline: Stats[] = [];
  let sampling: Promise<void> = Promise.resolve();
  const poller = setInterval(() => {
    sampling = sampling.then(async () => void timeline.push(await stats(server, t0)));
  }, 1000);
  let load: LoadRun;
  try {
    load = await run();
  } finally {
    clearInterval(poller);
  }
  const parent = process.cpuUsage(cpu0.parent);
  const split = cpuSplit(server.pid);
  const cpu = { server: cpuSeconds(server.pid) - cpu0.server, serverMain: split.main - cpu0.split.main, serverOther: split.other - cpu0.split.other, backend: cpuSeconds(backend.pid) - cpu0.backend, parent: (parent.user + parent.system) / 1e6, machine: machineBusySeconds() - cpu0.machine };
  await sampling;
  // The server's state the moment the load ended (the last response arrived).
  const after = await stats(server, t0);
  const lag = await server.request({ cmd: 'lag' });
  const pct = (s: number) => round((s / load.seconds) * 100, 0);
  const elu = (after.eluActiveMs - before.eluActiveMs) / (after.eluActiveMs - before.eluActiveMs + after.eluIdleMs - before.eluIdleMs);

  let serve: PhaseFigures['serve'] = null;
  if (settles) {
    const d = await drain(server, true, opts.drainTimeout);
    const acknowledged = after.deliveries - before.deliveries;
    // Steady window: from the first sample at or after 2 s to the last sample of the load.
    const from = timeline.find((s) => s.t >= 2);
    const to = timeline.at(-1);
    const steady = from && to && to.t - from.t >= 1 ? to.t - from.t : null;
    const left = after.deliveries - after.settled - after.dropped;
    serve = {
      acknowledged,
      settledDuringLoad: after.settled - before.settled,
      settledPerSecSteady: steady ? (to!.settled - from!.settled) / steady : null,
      ackedPerSecSteady: steady ? (to!.deliveries - from!.deliveries) / steady : null,
      maxQueueDepth: Math.max(after.maxQueued, ...timeline.map((s) => s.maxQueued)),
      queueAtEndOfLoad: after.queued,
      dropped: d.last.dropped - before.dropped,
      drainSeconds: d.seconds,
      drainedDeliveries: left,
      drainSettledPerSec: d.seconds && left > 0 ? left / d.seconds : null,
    };
  }
  return {
    load,
    timeline,
    cpuPercent: { server: pct(cpu.server), serverMainThread: pct(cpu.serverMain), serverOtherThreads: pct(cpu.serverOther), backend: pct(cpu.backend), generator: pct(cpu.parent), otherProcesses: pct(Math.max(0, cpu.machine - cpu.server - cpu.backend - cpu.parent)) },
    serverCpuUsPerDelivery: round((cpu.server * 1e6) / Math.max(1, load.ok), 1),
    serverEventLoopUtilization: round(elu, 3),
    serverLoopDelayMs: { p50: Number(lag.p50), p99: Number(lag.p99), max: Number(lag.max), mean: Number(lag.mean) },
    serve,
  };
}

/** Cores the whole machine kept busy over `ms` (this process is idle meanwhile). */
async function busyCores(ms: number): Promise<number> {
  const b0 = machineBusySeconds();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  return (machineBusySeconds() - b0) / ((performance.now() - t0) / 1000);
}

/** Waits up to `timeoutS` for the machine to be quiet (< 0.2 busy cores over 1 s); the last reading and the seconds waited. */
async function waitQuiet(timeoutS: number): Promise<{ cores: number; waitedSeconds: number }> {
  const t0 = performance.now();
  for (;;) {
    const cores = await busyCores(1000);
    const waitedSeconds = (performance.now() - t0) / 1000;
    if (cores < 0.2 || waitedSeconds >= timeoutS) return { cores: round(cores, 2)!, waitedSeconds: round(waitedSeconds, 1)! };
  }
}

interface InstanceFigures {
  config: ConfigName;
  round: number;
  /** Busy cores on the machine just before the configuration started, and how long the runner waited for quiet. */
  before: { cores: number; waitedSeconds: number };
  sustained: PhaseFigures;
  saturation: PhaseFigures | null;
  /** Serve only: what the live store held before stopping. */
  live: Msg | null;
  stopMs: number | null;
  rssMiB: number;
}

async function runInstance(config: ConfigName, roundNo: number, opts: Options, flowsDir: string, requests: HookRequest[]): Promise<InstanceFigures> {
  const before = opts.waitQuiet > 0 ? await waitQuiet(opts.waitQuiet) : { cores: NaN, waitedSeconds: 0 };
  const backend = await startRecorderBenchChild('backend', {});
  const stub = String(backend.ready.stubUrl);
  const nodeArgs = opts.prof ? ['--cpu-prof', `--cpu-prof-dir=${join(ROOT, 'bench', 'out', 'prof', 'serve')}`, `--cpu-prof-name=${config}-round${roundNo}.cpuprofile`] : [];
  const settles = config === 'serve';
  let server: BenchChild | null = null;
  try {
    server = await startServeBenchChild(
      config === 'recorder' ? 'recorder' : 'serve',
      {
        legacy: `${String(backend.ready.botUrl)}/webhook`,
        upstreams: { github: stub, gitea: `${stub}/api/v1`, agents: stub },
        flowsDir,
        mode: config === 'serve-off' ? 'off' : 'dry-run',
        settleMs: opts.settleMs,
        queueSize: opts.queueSize,
        sampleMs: 10,
      },
      nodeArgs,
    );
    if (server.role === 'serve' && server.ready.flows !== 20) throw new Error(`serve loaded ${String(server.ready.flows)} flows, expected 20`);
    // The bot's API calls go through the egress of the server under test, as in the demo (fixtures/stack.ts).
    const ack = await backend.request({ cmd: 'api', github: `${server.url}/egress/github`, gitea: `${server.url}/egress/gitea`, agents: `${server.url}/egress/agents` });
    if (ack.event !== 'ok') throw new Error(`backend refused the egress API bases: ${JSON.stringify(ack)}`);

    if (opts.warmup > 0) await paced(server.url, requests, opts.connections, opts.warmup, opts.rate);
    const warm = await drain(server, settles, opts.drainTimeout);
    if (warm.seconds === null) throw new Error(`${config}: the queue did not empty within ${opts.drainTimeout} s after the warm-up`);

    const srv = server;
    const sustained = await phase(srv, settles, backend, opts, () => paced(srv.url, requests, opts.connections, opts.sustain, opts.rate));
    const saturation = opts.duration > 0 ? await phase(srv, settles, backend, opts, () => saturate(srv.url, requests, opts.connections, opts.duration)) : null;
    const rssMiB = Number((await srv.request({ cmd: 'stats' })).rss) / 2 ** 20;
    const live = config === 'serve' ? await srv.request({ cmd: 'summary' }, 60_000) : null;
    const stopped = await srv.stop(120_000);
    server = null;
    return { config, round: roundNo, before, sustained, saturation, live, stopMs: stopped ? Number(stopped.stopMs) : null, rssMiB };
  } finally {
    await server?.stop().catch(() => undefined);
    await backend.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// Report.

const f = (x: number | null | undefined, d = 2) => (x === null || x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(d));

function machine(opts: Options) {
  return {
    ...hostInfo(),
    fastify: packageVersion(ROOT, 'fastify'),
    autocannon: packageVersion(ROOT, 'autocannon'),
    duckdbNodeApi: packageVersion(ROOT, '@duckdb/node-api'),
    /** BENCH_GIT_REV names the commit when running from a copy of dist/ built earlier (the checkout may have moved on). */
    git: process.env.BENCH_GIT_REV ?? gitHead(ROOT),
    gitDirty: process.env.BENCH_GIT_REV ? null : gitDirty(ROOT),
    build: fileURLToPath(new URL('../..', import.meta.url)),
    prof: opts.prof,
  };
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  const startedAt = new Date().toISOString();
  const info = machine(opts);
  const set = benchDeliveries(opts.count, opts.seed);
  const flowsDir = join(tmpdir(), `hookshadow-bench-serve-flows-${process.pid}`);
  const flows = await writeBenchFlows(flowsDir);
  const mix = await matchMix(flows, set.deliveries);
  const b = set.bodies;
  console.log(`hookshadow serve benchmark — ${info.nproc} CPUs (${info.cpuModel}), node ${info.node}, git ${info.git}${info.gitDirty ? ' (dirty)' : ''}`);
  console.log(
    `${b.count} distinct deliveries (seed ${opts.seed}; ${b.bySource.github ?? 0} github, ${b.bySource.gitea ?? 0} gitea; bodies ${b.minBytes}/${b.medianBytes}/${b.maxBytes} B min/median/max); ` +
      `${flows.length} flows in dry-run (${flowsDir}): flows matched per delivery 0/1/2/3/4+ = ${Object.values(mix.flowsPerDelivery).join('/')}, mean ${mix.meanFlowsPerDelivery.toFixed(2)}`,
  );
  console.log(
    `${opts.rounds} round(s) of ${opts.configs.join(', ')}; each: ${opts.warmup} s warm-up, ${opts.sustain} s paced at ${opts.rate}/s, ` +
      `${opts.duration > 0 ? `${opts.duration} s autocannon unthrottled, ` : ''}${opts.connections} connections; settle_ms ${opts.settleMs}, queue_size ${opts.queueSize}`,
  );

  const instances: InstanceFigures[] = [];
  for (let r = 1; r <= opts.rounds; r++) {
    for (const config of opts.configs) {
      process.stdout.write(`  round ${r} ${config.padEnd(8)} ... `);
      const x = await runInstance(config, r, opts, flowsDir, set.requests);
      instances.push(x);
      const s = x.sustained;
      const sat = x.saturation;
      console.log(
        `@${opts.rate}/s p50 ${f(s.load.latencyMs.p50)} p99 ${f(s.load.latencyMs.p99)} ms` +
          (s.serve ? ` (settled ${f(s.serve.settledPerSecSteady, 0)}/s, max queue ${s.serve.maxQueueDepth}, dropped ${s.serve.dropped}, drained in ${f(s.serve.drainSeconds)} s)` : '') +
          (sat ? `; unthrottled ${f(sat.load.deliveriesPerSec, 0)}/s p50 ${f(sat.load.latencyMs.p50)} p99 ${f(sat.load.latencyMs.p99)} ms` : '') +
          (sat?.serve ? ` (settled ${f(sat.serve.settledPerSecSteady, 0)}/s, queue ${sat.serve.queueAtEndOfLoad} at the end, drained in ${f(sat.serve.drainSeconds)} s)` : '') +
          `; other processes ${f((s.cpuPercent.otherProcesses ?? 0) / 100)} cores`,
      );
    }
  }

  // ----- per run
  const runRows = instances.flatMap((x) =>
    [x.sustained, x.saturation].flatMap((p) =>
      p
        ? [
            [
              `${x.config} #${x.round} ${p.load.generator === 'paced' ? `@${opts.rate}/s` : 'unthrottled'}`,
              f(p.load.deliveriesPerSec, 0),
              f(p.load.latencyMs.p50),
              f(p.load.latencyMs.p90),
              f(p.load.latencyMs.p99),
              f(p.load.latencyMs.max, 1),
              p.load.non2xx + p.load.errors,
              `${p.cpuPercent.server ?? '—'} (${p.cpuPercent.serverMainThread ?? '—'} + ${p.cpuPercent.serverOtherThreads ?? '—'}) / ${p.cpuPercent.backend ?? '—'} / ${p.cpuPercent.generator ?? '—'} / ${p.cpuPercent.otherProcesses ?? '—'}`,
              f(p.serverCpuUsPerDelivery, 0),
              f(p.serverEventLoopUtilization),
              `${f(p.serverLoopDelayMs.p99, 1)} / ${f(p.serverLoopDelayMs.max, 0)}`,
              p.serve ? f(p.serve.settledPerSecSteady, 0) : '—',
              p.serve ? `${p.serve.maxQueueDepth} / ${p.serve.queueAtEndOfLoad}` : '—',
              p.serve ? p.serve.dropped : '—',
              p.serve ? `${f(p.serve.drainSeconds)} s` : '—',
            ],
          ]
        : [],
    ),
  );
  console.log('');
  console.log(
    mdTable(
      ['run', 'deliveries/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'non-2xx', 'CPU % server (main thread + others) / backend / generator / other processes', 'server CPU µs/delivery', 'server ELU', 'server loop delay p99 / max ms', 'settled/s', 'queue max / at end', 'dropped', 'drain after load'],
      runRows,
    ),
  );

  // ----- side by side: latencies pooled over rounds, rates averaged
  const pooled = (config: ConfigName, which: 'sustained' | 'saturation') => {
    const runs = instances.filter((x) => x.config === config).map((x) => x[which]).filter((p): p is PhaseFigures => p !== null);
    if (runs.length === 0) return null;
    return { latencyMs: ackLatencies(runs.flatMap((p) => p.load.raw)), deliveriesPerSec: runs.reduce((s, p) => s + p.load.deliveriesPerSec, 0) / runs.length, runs: runs.length };
  };
  const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && b > 0 ? a / b : null);
  /** One configuration against the recorder alone, in one phase. */
  const against = (config: ConfigName, which: 'sustained' | 'saturation') => {
    const rec = pooled('recorder', which);
    const other = pooled(config, which);
    return {
      phase: which,
      config,
      recorder: rec,
      [config]: other,
      ratio: { p50: ratio(other?.latencyMs.p50, rec?.latencyMs.p50), p99: ratio(other?.latencyMs.p99, rec?.latencyMs.p99), deliveriesPerSec: ratio(other?.deliveriesPerSec, rec?.deliveriesPerSec) },
      /** Per round: this configuration's p99 over the recorder's of the same round. */
      p99RatioPerRound: Array.from({ length: opts.rounds }, (_, i) => {
        const a = instances.find((x) => x.config === config && x.round === i + 1)?.[which];
        const c = instances.find((x) => x.config === 'recorder' && x.round === i + 1)?.[which];
        return a && c ? round(a.load.latencyMs.p99 / c.load.latencyMs.p99, 3) : null;
      }),
      pooled: other,
    };
  };
  const side = (['sustained', 'saturation'] as const).map((which) => against('serve', which));
  const diagnostics = opts.configs.includes('serve-off') ? (['sustained', 'saturation'] as const).map((which) => against('serve-off', which)) : [];
  console.log('');
  console.log(`side by side (latencies pooled over the rounds, deliveries/s averaged):`);
  console.log(
    mdTable(
      ['load', 'configuration', 'recorder p50 / p99 ms', 'p50 / p99 ms', 'recorder deliveries/s', 'deliveries/s', '÷ recorder p50', '÷ recorder p99', '÷ recorder deliveries/s', 'p99 ratio per round'],
      [...side, ...diagnostics]
        .filter((s) => s.recorder && s.pooled)
        .map((s) => [
          s.phase === 'sustained' ? `paced ${opts.rate}/s, ${opts.connections} connections` : `autocannon unthrottled, ${opts.connections} connections`,
          s.config,
          `${f(s.recorder?.latencyMs.p50)} / ${f(s.recorder?.latencyMs.p99)}`,
          `${f(s.pooled?.latencyMs.p50)} / ${f(s.pooled?.latencyMs.p99)}`,
          f(s.recorder?.deliveriesPerSec, 0),
          f(s.pooled?.deliveriesPerSec, 0),
          f(s.ratio.p50, 3),
          f(s.ratio.p99, 3),
          f(s.ratio.deliveriesPerSec, 3),
          s.p99RatioPerRound.map((r) => f(r, 3)).join(', '),
        ]),
    ),
  );

  // ----- targets
  const verdict = (ok: boolean | null) => (ok === null ? 'not measured' : ok ? 'PASS' : 'FAIL');
  const serveRuns = instances.filter((x) => x.config === 'serve');
  const keepsUp = (p: PhaseFigures) => {
    const s = p.serve!;
    // Keeping up: nothing dropped, settled as fast as acknowledged, and the queue empty within the settle window (+1 s) once the load stops.
    return s.dropped === 0 && s.settledPerSecSteady !== null && s.ackedPerSecSteady !== null && s.settledPerSecSteady >= 0.97 * s.ackedPerSecSteady && s.drainSeconds !== null && s.drainSeconds <= opts.settleMs / 1000 + 1;
  };
  const sustainedSide = side[0]!;
  const saturationSide = side[1]!;
  const targets = {
    ackP99Within10Percent: {
      target: 'serve acknowledgement p99 within 10% of the recorder alone',
      atRate: { rate: opts.rate, ratio: round(sustainedSide.ratio.p99 ?? NaN, 3), verdict: verdict(sustainedSide.ratio.p99 === null ? null : sustainedSide.ratio.p99 <= 1.1) },
      unthrottled: { ratio: round(saturationSide.ratio.p99 ?? NaN, 3), verdict: verdict(saturationSide.ratio.p99 === null ? null : saturationSide.ratio.p99 <= 1.1) },
    },
    flowsKeepUp: {
      target: `flows keep up with ≥ 1,000 deliveries/s sustained (${opts.sustain} s at ${opts.rate}/s: no drops, settled/s ≥ 97% of acknowledged/s, queue empty ≤ settle_ms + 1 s after the load)`,
      perRound: serveRuns.map((x) => ({ round: x.round, keepsUp: keepsUp(x.sustained), settledPerSec: round(x.sustained.serve!.settledPerSecSteady ?? NaN, 0), dropped: x.sustained.serve!.dropped, maxQueueDepth: x.sustained.serve!.maxQueueDepth })),
      verdict: verdict(serveRuns.length === 0 || opts.rate < 1000 ? null : serveRuns.every((x) => keepsUp(x.sustained))),
    },
  };
  console.log('');
  console.log(`serve/recorder ack p99 @ ${opts.rate}/s paced     ${f(sustainedSide.ratio.p99, 3)} → ${targets.ackP99Within10Percent.atRate.verdict} (target ≤ 1.10)`);
  if (saturationSide.ratio.p99 !== null) console.log(`serve/recorder ack p99, unthrottled     ${f(saturationSide.ratio.p99, 3)} → ${targets.ackP99Within10Percent.unthrottled.verdict} (target ≤ 1.10)`);
  console.log(`flows keep up at ${opts.rate}/s for ${opts.sustain} s       ${targets.flowsKeepUp.perRound.map((r) => `round ${r.round}: ${r.keepsUp ? 'yes' : 'NO'} (${r.settledPerSec}/s, max queue ${r.maxQueueDepth}, dropped ${r.dropped})`).join('; ')} → ${targets.flowsKeepUp.verdict}`);
  for (const x of serveRuns) if (x.live) console.log(`serve #${x.round} live store: ${JSON.stringify(x.live)}`);

  const strip = (p: PhaseFigures | null) => (p ? { ...p, load: { ...p.load, raw: undefined } } : null);
  const report = {
    ...reportHeader('serve', startedAt, t0),
    machine: info,
    options: opts,
    topology:
      'load generators (paced, autocannon) in the parent; the server under test (recorder alone or serve) in one child; the demo legacy bot + forge stub in another. ' +
      'The server forwards each delivery to the bot (tee) and the bot calls the stub through the server\'s egress proxy.',
    bodies: set.bodies,
    flows: { dir: flowsDir, names: flows.map((fl) => fl.name), mix },
    instances: instances.map((x) => ({ ...x, sustained: strip(x.sustained), saturation: strip(x.saturation) })),
    sideBySide: side.map(({ pooled: _p, ...rest }) => rest),
    diagnostics: diagnostics.map(({ pooled: _p, ...rest }) => rest),
    targets,
  };
  mkdirSync(dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, JSON.stringify(report, null, 2) + '\n');
  await rm(flowsDir, { recursive: true, force: true });
  console.log(`\nraw figures: ${opts.out} (${report.totalSeconds} s in all)`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

/**
 * Check benchmark: how many cases per second `hookshadow check` checks on the fixture flows, per
 * property, against the cost of one plain dry-run engine pass over the same sampled deliveries,
 * measured side by side in one process; and how long it takes to find and shrink planted bugs.
 *
 *   npm run bench:check -- [--runs 500] [--parity-runs 100] [--repeats 3] [--planted-seeds 1,2,3,4,5] ...
 *
 * 1. Throughput. runChecks() (analyzer/checks/run.ts) on fixtures/flows, fixtures/store and
 *    fixtures/checks.yaml (every built-in property, legacy-parity against the demo legacy bot, two SQL
 *    invariants), one property at a time (`only: [name]`), a fixed seed, no save, no regressions.
 *    The figure is the property's own `duration_ms` (its fast-check search: generating, materializing
 *    and checking --runs cases), not the setup runChecks does first (flows, oracle, sampling). When a
 *    property fails, the figure is its search up to the first failure (the counterexample's
 *    search_ms), and the shrinking (its shrink_ms) is reported apart.
 *    A first pass runs every property once, as one `hookshadow check` process would (caches such as
 *    the compiled schema validators fill as it goes); then, --repeats times, interleaved:
 *      baseline  runCase() (analyzer/checks/properties.ts) over each sampled delivery as stored, one at
 *                a time, in a CheckContext built as run.ts builds it: one dry-run engine pass per
 *                delivery. Every property's time per case is given as a multiple of it.
 *      cases     fast-check generating and materializing --runs cases with the same arbitrary and
 *                seed, no check: the harness's own floor.
 *    The engine runChecks drives is runDelivery behind a wrapper (CheckOptions.engine) that counts calls
 *    and their time, so each property's time splits into engine passes and the rest (generation,
 *    materializing, the oracle's HTTP round trips, DuckDB). The wrapper adds two performance.now()
 *    calls per engine pass. legacy-parity also runs with the checks file's settle_ms at 0, a what-if
 *    that shows what the oracle's settle window costs.
 * 2. Planted failures. The flows in test/fixtures/checks/ (planted ops: test/fixtures/checks/planted-ops.ts)
 *    each break one property; runChecks() searches it with each of --planted-seeds, up to
 *    --planted-runs cases. Reported: the cases run until the first failure and the time to it, the
 *    time shrinking (the counterexample's found_after_runs, search_ms and shrink_ms), shrink steps kept
 *    and candidates tried (onProgress counts every run fast-check makes, shrink candidates included,
 *    whether or not runChecks reuses a verdict for it), the total time, and the payload's size before
 *    and after shrinking. Each
 *    case carries one `keep` flag per droppable key of the largest sample (arbitraries.ts), reported
 *    too: shrinking takes every non-zero flag to 0 one step at a time.
 *
 * Prints markdown tables and writes the raw figures to --out (default bench/out/check-<date>.json).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { caseArbitrary, MAX_DROPPABLE_KEYS } from '../../analyzer/checks/arbitraries.js';
import { materialize, type CasePlan } from '../../analyzer/checks/case.js';
import { defaultChecks, loadChecks, type ChecksConfig } from '../../analyzer/checks/checks-file.js';
import { PROPERTY_NAMES, runCase, type CheckContext, type Engine } from '../../analyzer/checks/properties.js';
import { runChecks, type CheckOptions, type PropertyResult } from '../../analyzer/checks/run.js';
import { keyPaths } from '../../analyzer/checks/payload-tree.js';
import { sampleDeliveries } from '../../analyzer/checks/samples.js';
import { loadRouteMaps } from '../../analyzer/routes.js';
import { loadRules, NO_RULES } from '../../analyzer/rules.js';
import { parsePayload } from '../../core/payload.js';
import { openStoreReader } from '../../core/store/reader.js';
import { runDelivery } from '../../replayer/engine/run.js';
import { loadFlowsOrThrow } from '../../replayer/flows/load.js';
import { BUILTIN_OPS, createOpRegistry } from '../../replayer/ops/registry.js';
import type { StoredDelivery } from '../../replayer/source.js';
import { repoRoot } from '../replay/flows.js';
import { parseFlags } from '../shared/args.js';
import { gitDirty, gitHead, hostInfo, machineBusySeconds, packageVersion } from '../shared/machine.js';
import { mdTable, num, round } from '../shared/report.js';

const HELP = `Check benchmark.
  --runs N            cases per property                          (default 500)
  --parity-runs N     cases for legacy-parity (HTTP to the bot)   (default 100)
  --seed N            fast-check and sampling seed                (default 42)
  --per-shape N       deliveries sampled per (source, event, action) (default 20)
  --repeats N         interleaved measurements of each property   (default 3)
  --baseline-passes N engine passes over every sample per baseline measurement (default 10)
  --properties LIST   only these (names or invariant:<name>)      (default every enabled one)
  --planted-seeds L   seeds for the planted failures              (default 1,2,3,4,5)
  --planted-runs N    cases searched per planted failure at most  (default 1000)
  --planted LIST      only these planted fixtures                 (default all)
  --skip-throughput   only the planted failures
  --skip-planted      only the throughput
  --out FILE          JSON output                   (default bench/out/check-<YYYY-MM-DD>.json)`;

/** Each planted bug: its flows, the property that catches it, and the checks file it runs under. */
const PLANTED = [
  { name: 'clock', flows: 'test/fixtures/checks/clock', property: 'deterministic', checks: null },
  { name: 'leaky', flows: 'test/fixtures/checks/leaky', property: 'dry-run-is-inert', checks: null },
  { name: 'double-enqueue', flows: 'test/fixtures/checks/double-enqueue', property: 'redelivery-idempotent', checks: null },
  { name: 'key-order', flows: 'test/fixtures/checks/key-order', property: 'irrelevant-fields-inert', checks: null },
  { name: 'label-edge', flows: 'test/fixtures/checks/label-edge', property: 'legacy-parity', checks: 'test/fixtures/checks/label-edge.checks.yaml' },
  { name: 'close-pr', flows: 'test/fixtures/checks/close-pr', property: 'invariant:no-close-on-pull-request', checks: 'fixtures/checks.yaml' },
] as const;
const PLANTED_OPS = 'test/fixtures/checks/planted-ops.ts';

function int(flags: Map<string, string>, name: string, dflt: number, min = 1): number {
  const raw = flags.get(name);
  if (raw === undefined) return dflt;
  const n = Number(raw.replaceAll('_', ''));
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`--${name} expects an integer ≥ ${min}, got ${JSON.stringify(raw)}`);
  return n;
}

const list = (raw: string | undefined) => (raw ?? '').split(',').map((s) => s.trim()).filter(Boolean);

function parseArgs(argv: string[]) {
  const flags = parseFlags(argv, HELP, ['skip-throughput', 'skip-planted']);
  const planted = list(flags.get('planted'));
  for (const p of planted) if (!PLANTED.some((x) => x.name === p)) throw new Error(`unknown planted fixture ${p}; use ${PLANTED.map((x) => x.name).join(',')}`);
  const seeds = list(flags.get('planted-seeds') ?? '1,2,3,4,5').map(Number);
  if (seeds.length === 0 || seeds.some((s) => !Number.isSafeInteger(s))) throw new Error('--planted-seeds expects comma-separated integers');
  return {
    runs: int(flags, 'runs', 500),
    parityRuns: int(flags, 'parity-runs', 100),
    seed: int(flags, 'seed', 42, -(2 ** 31)),
    perShape: int(flags, 'per-shape', 20),
    repeats: int(flags, 'repeats', 3),
    baselinePasses: int(flags, 'baseline-passes', 10),
    properties: list(flags.get('properties')),
    plantedSeeds: seeds,
    plantedRuns: int(flags, 'planted-runs', 1000),
    planted,
    throughput: flags.get('skip-throughput') !== 'true',
    plantedFailures: flags.get('skip-planted') !== 'true',
    out: flags.get('out') ?? join(repoRoot(), 'bench', 'out', `check-${new Date().toISOString().slice(0, 10)}.json`),
  };
}
type Options = ReturnType<typeof parseArgs>;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Runs `fn` and says how many cores other processes kept busy meanwhile (machine busy CPU minus ours, over wall). */
async function measured<T>(fn: () => Promise<T>): Promise<{ value: T; seconds: number; otherCores: number }> {
  const busy0 = machineBusySeconds();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await fn();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const own = (cpu.user + cpu.system) / 1e6;
  return { value, seconds, otherCores: (machineBusySeconds() - busy0 - own) / seconds };
}

/** runDelivery behind a counter: calls and the time spent in them. */
function meteredEngine() {
  const meter = { calls: 0, ms: 0 };
  const engine: Engine = async (...args) => {
    const t0 = performance.now();
    try {
      return await runDelivery(...args);
    } finally {
      meter.calls += 1;
      meter.ms += performance.now() - t0;
    }
  };
  return { engine, meter, reset: () => Object.assign(meter, { calls: 0, ms: 0 }) };
}

/** Options shared by every runChecks call here; `reproduce` is unused (nothing is saved). */
function checkOptions(o: Options, over: Partial<CheckOptions> & Pick<CheckOptions, 'flowsDir' | 'checks' | 'only' | 'runs' | 'seed'>): CheckOptions {
  return { store: join(repoRoot(), 'fixtures', 'store'), opsModules: [], opsBaseDir: repoRoot(), timeBudgetMs: null, save: null, regressions: [], path: null, perShape: o.perShape, reproduce: () => '', ...over };
}

/** The deliveries runChecks samples from the fixture store with this seed. */
async function samplesOf(perShape: number, seed: number): Promise<StoredDelivery[]> {
  const reader = await openStoreReader(join(repoRoot(), 'fixtures', 'store'));
  try {
    return await sampleDeliveries(reader, { perShape, seed });
  } finally {
    reader.close();
  }
}

/**
 * How many `keep` flags every case carries (one per droppable key of the largest sample), as
 * caseArbitrary counts them: shrinking moves each non-zero flag to 0, one step at a time.
 */
function keepFlagsOf(samples: readonly StoredDelivery[]): number {
  const keys = samples.map((s) => keyPaths(parsePayload(s.body_encoding === 'utf8' ? s.body : null, s.content_type).payload, MAX_DROPPABLE_KEYS).length);
  return Math.min(MAX_DROPPABLE_KEYS, Math.max(1, ...keys));
}

/** The fixture flows' context, as run.ts builds it, and the deliveries runChecks samples with this seed. */
async function baselineSetup(o: Options, checks: ChecksConfig) {
  const { flows } = await loadFlowsOrThrow(join(repoRoot(), 'fixtures', 'flows'), createOpRegistry(BUILTIN_OPS));
  const ctx: CheckContext = {
    flows,
    engine: runDelivery,
    seed: 0,
    oracle: null,
    routes: await loadRouteMaps(checks.legacy?.routes ?? []),
    rules: checks.legacy?.rules ? await loadRules(checks.legacy.rules, new Date()) : NO_RULES(),
  };
  return { ctx, samples: await samplesOf(o.perShape, o.seed) };
}

/** One dry-run engine pass per sample, as stored, `passes` times over all: ms per delivery, and how much of it runDelivery took. */
async function baselinePass(ctx: CheckContext, samples: StoredDelivery[], passes: number): Promise<{ msPerDelivery: number; engineMsPerDelivery: number }> {
  const metered = meteredEngine();
  const c = { ...ctx, engine: metered.engine };
  const t0 = performance.now();
  for (let i = 0; i < passes; i++) for (const s of samples) await runCase(c, [s]);
  const n = passes * samples.length;
  return { msPerDelivery: (performance.now() - t0) / n, engineMsPerDelivery: metered.meter.ms / n };
}

/**
 * fast-check generating and materializing `runs` cases, no check: ms per case, and deliveries per
 * case. The arbitrary is built beforehand, as runChecks builds it before timing a property.
 */
async function casesPass(cases: fc.Arbitrary<CasePlan>, samples: StoredDelivery[], seed: number, runs: number): Promise<{ msPerCase: number; deliveriesPerCase: number }> {
  let deliveries = 0;
  const t0 = performance.now();
  const details = await fc.check(
    fc.asyncProperty(fc.tuple(cases, fc.constant(undefined)), async ([plan]) => {
      deliveries += materialize(plan, samples).deliveries.length;
    }),
    { seed, numRuns: runs },
  );
  return { msPerCase: (performance.now() - t0) / details.numRuns, deliveriesPerCase: deliveries / details.numRuns };
}

interface PropertyRun {
  property: string;
  repeat: number;
  status: PropertyResult['status'];
  reason: string | null;
  failure: string | null;
  /** Cases run: all of them, or up to and including the first failing one. */
  runs: number;
  /** The property's duration_ms: its search and, when it failed, the shrinking. */
  durationMs: number;
  /** The search alone: up to the end of the first failing case when it failed (shrinking excluded). */
  searchMs: number;
  /** Engine passes during the search, and their time. */
  engineCalls: number;
  engineMs: number;
  otherCores: number;
}

/** legacy-parity with the checks file's settle window at 0: a what-if that shows what the window costs. */
const PARITY_NO_SETTLE = 'legacy-parity, settle_ms 0 (what-if)';

async function throughput(o: Options) {
  const root = repoRoot();
  const checks = await loadChecks(join(root, 'fixtures', 'checks.yaml'));
  const enabled = [...PROPERTY_NAMES.filter((n) => checks.properties[n].enabled), ...checks.invariants.map((i) => `invariant:${i.name}`)];
  for (const p of o.properties) if (!enabled.includes(p)) throw new Error(`--properties: ${p} is not enabled by fixtures/checks.yaml (${enabled.join(', ')})`);
  const selected = o.properties.length > 0 ? enabled.filter((n) => o.properties.includes(n)) : enabled;
  const names = selected.includes('legacy-parity') && checks.legacy ? [...selected, PARITY_NO_SETTLE] : selected;
  const { ctx, samples } = await baselineSetup(o, checks);
  const keepFlags = keepFlagsOf(samples);
  const runsOf = (name: string) => (name.startsWith('legacy-parity') ? o.parityRuns : o.runs);
  const metered = meteredEngine();

  const one = async (name: string, repeat: number): Promise<PropertyRun> => {
    const what = name === PARITY_NO_SETTLE ? { only: ['legacy-parity'], checks: { ...checks, legacy: { ...checks.legacy!, settleMs: 0 } } } : { only: [name], checks };
    metered.reset();
    // The engine's meter as each case starts: a failed search's engine share ends where the first shrink candidate starts.
    const meterAtRun: { calls: number; ms: number }[] = [];
    const onProgress: CheckOptions['onProgress'] = (e) => {
      if (e.type === 'run') meterAtRun.push({ calls: metered.meter.calls, ms: metered.meter.ms });
    };
    const m = await measured(() => runChecks(checkOptions(o, { flowsDir: join(root, 'fixtures', 'flows'), ...what, runs: runsOf(name), seed: o.seed, engine: metered.engine, onProgress })));
    const r = m.value.properties[0]!;
    const c = r.counterexample;
    const failure = c ? `${c.failure.message} (case: ${c.case})` : null;
    const cut = c ? (meterAtRun[c.found_after_runs] ?? { ...metered.meter }) : null;
    return {
      property: name,
      repeat,
      status: r.status,
      reason: r.reason,
      failure,
      runs: c ? c.found_after_runs : r.runs,
      durationMs: r.duration_ms,
      searchMs: c ? c.search_ms : r.duration_ms,
      engineCalls: cut ? cut.calls : metered.meter.calls,
      engineMs: cut ? cut.ms : metered.meter.ms,
      otherCores: m.otherCores,
    };
  };
  const show = (r: PropertyRun) => {
    console.log(`  ${r.repeat === 0 ? 'first pass' : `repeat ${r.repeat}  `}: ${r.property.padEnd(40)} ${r.status.padEnd(7)} ${String(r.runs).padStart(5)} runs in ${(r.searchMs / 1000).toFixed(2).padStart(6)} s (${(r.runs / (r.searchMs / 1000)).toFixed(0)} runs/s)${r.status === 'failed' ? `, then ${((r.durationMs - r.searchMs) / 1000).toFixed(2)} s shrinking` : ''}, other processes ${r.otherCores.toFixed(2)} cores`);
    if (r.status !== 'passed') console.log(`    ${r.reason ?? r.failure}`);
  };

  console.log(`\nthroughput: ${samples.length} sampled deliveries (${o.perShape} per shape, seed ${o.seed}), ${ctx.flows.length} flows, ${keepFlags} keep flags per case; properties: ${names.join(', ')}`);
  // The first pass is what one `hookshadow check` process sees: caches (compiled schema validators, JIT) fill as it goes.
  const runs: PropertyRun[] = [];
  for (const name of names) {
    const r = await one(name, 0);
    runs.push(r);
    show(r);
  }
  await baselinePass(ctx, samples, 2);

  const cases = caseArbitrary(samples);
  const baselines: { repeat: number; msPerDelivery: number; engineMsPerDelivery: number; otherCores: number }[] = [];
  const casesRuns: { repeat: number; msPerCase: number; deliveriesPerCase: number; otherCores: number }[] = [];
  for (let repeat = 1; repeat <= o.repeats; repeat++) {
    const b = await measured(() => baselinePass(ctx, samples, o.baselinePasses));
    baselines.push({ repeat, ...b.value, otherCores: b.otherCores });
    const c = await measured(() => casesPass(cases, samples, o.seed, o.runs));
    casesRuns.push({ repeat, ...c.value, otherCores: c.otherCores });
    console.log(`  repeat ${repeat}  : baseline ${(b.value.msPerDelivery * 1000).toFixed(0)} µs/delivery; cases only ${(c.value.msPerCase * 1000).toFixed(0)} µs/case`);
    for (const name of names) {
      const r = await one(name, repeat);
      runs.push(r);
      show(r);
    }
  }

  const baseMs = median(baselines.map((b) => b.msPerDelivery));
  const baseEngineMs = median(baselines.map((b) => b.engineMsPerDelivery));
  const casesMs = median(casesRuns.map((c) => c.msPerCase));
  const perSecond = (r: PropertyRun) => r.runs / (r.searchMs / 1000);
  const rows = names.map((name) => {
    const first = runs.find((r) => r.property === name && r.repeat === 0)!;
    const rs = runs.filter((r) => r.property === name && r.repeat > 0 && r.status !== 'skipped');
    // The repeat with the median time per case stands for the property; its split comes from the same run.
    const mid = [...rs].sort((a, b) => a.searchMs / a.runs - b.searchMs / b.runs)[Math.floor((rs.length - 1) / 2)];
    const failed = runs.filter((r) => r.property === name && r.status === 'failed').length;
    if (!mid) return { property: name, status: first.status, failed, runs: 0, firstPassRunsPerSecond: null, runsPerSecond: null, runsPerSecondAll: '', msPerCase: null, ratio: null, engineCallsPerCase: null, engineMsPerCase: null, restMsPerCase: null, shrinkSeconds: null };
    const msPerCase = mid.searchMs / mid.runs;
    return {
      property: name,
      status: mid.status,
      failed,
      runs: mid.runs,
      firstPassRunsPerSecond: first.status === 'skipped' ? null : round(perSecond(first), 1),
      runsPerSecond: round(perSecond(mid), 1),
      runsPerSecondAll: rs.map((r) => perSecond(r).toFixed(0)).join(' / '),
      msPerCase: round(msPerCase, 3),
      ratio: round(msPerCase / baseMs, 2),
      engineCallsPerCase: round(mid.engineCalls / mid.runs, 2),
      engineMsPerCase: round(mid.engineMs / mid.runs, 3),
      restMsPerCase: round((mid.searchMs - mid.engineMs) / mid.runs, 3),
      shrinkSeconds: mid.status === 'failed' ? round((mid.durationMs - mid.searchMs) / 1000, 2) : null,
    };
  });

  console.log(`\nbaseline: one dry-run engine pass (runCase) per sampled delivery, as stored: ${(baseMs * 1000).toFixed(0)} µs, of which runDelivery ${(baseEngineMs * 1000).toFixed(0)} µs (median of ${baselines.map((b) => (b.msPerDelivery * 1000).toFixed(0)).join(' / ')})`);
  console.log(`cases only (generate + materialize, no check): ${(casesMs * 1000).toFixed(0)} µs/case = ${(casesMs / baseMs).toFixed(2)}× baseline; ${casesRuns[0]!.deliveriesPerCase.toFixed(2)} deliveries per case`);
  console.log('');
  console.log(
    mdTable(
      ['property', 'runs', 'runs/s, first pass', 'runs/s (median; repeats)', 'ms / case', '× baseline', 'engine passes / case', 'engine ms / case', 'rest ms / case'],
      [
        ['baseline: runCase, one engine pass per delivery', null, null, num(1000 / baseMs, 0), num(baseMs, 3), '1.00', '1', num(baseEngineMs, 3), num(baseMs - baseEngineMs, 3)],
        ['cases only: generate + materialize', o.runs, null, num(1000 / casesMs, 0), num(casesMs, 3), num(casesMs / baseMs, 1), '0', '0', num(casesMs, 3)],
        ...rows.map((r) => [
          `${r.property}${r.failed > 0 ? ` (FAILED ${r.failed}×: up to the first failure; then ${num(r.shrinkSeconds, 2)} s shrinking)` : r.status === 'skipped' ? ' (skipped)' : ''}`,
          r.runs,
          num(r.firstPassRunsPerSecond, 0),
          r.runsPerSecond === null ? null : `${num(r.runsPerSecond, 0)} (${r.runsPerSecondAll})`,
          num(r.msPerCase, 3),
          num(r.ratio, 1),
          num(r.engineCallsPerCase, 2),
          num(r.engineMsPerCase, 3),
          num(r.restMsPerCase, 3),
        ]),
      ],
    ),
  );
  const other = Math.max(...baselines.map((b) => b.otherCores), ...runs.map((r) => r.otherCores));
  console.log(`other processes: at most ${other.toFixed(2)} cores during any measurement`);
  return {
    samples: samples.length,
    keepFlags,
    flows: ctx.flows.map((f) => f.name),
    properties: names,
    baselineMsPerDelivery: round(baseMs, 4),
    baselineEngineMsPerDelivery: round(baseEngineMs, 4),
    casesOnlyMsPerCase: round(casesMs, 4),
    deliveriesPerCase: round(casesRuns[0]!.deliveriesPerCase, 3),
    summary: rows,
    baselines,
    casesRuns,
    runs: runs.map((r) => ({ ...r, durationMs: round(r.durationMs, 2), searchMs: round(r.searchMs, 2), engineMs: round(r.engineMs, 2), otherCores: round(r.otherCores, 2) })),
    maxOtherCores: round(other, 2),
  };
}

interface PlantedRun {
  fixture: string;
  property: string;
  seed: number;
  /** The `keep` flags of every case with this seed's samples. */
  keepFlags: number;
  status: PropertyResult['status'];
  /** Cases run up to and including the first failing one (all of them when none failed). */
  runs: number;
  /** The counterexample's search_ms (the search up to the first failure) and shrink_ms. */
  firstFailureMs: number | null;
  shrinkMs: number | null;
  totalMs: number;
  shrinks: number | null;
  /** Candidates fast-check ran while shrinking (kept or not). */
  shrinkCandidates: number | null;
  originalBytes: number | null;
  shrunkBytes: number | null;
  case: string | null;
  failure: string | null;
  otherCores: number;
}

async function planted(o: Options) {
  const root = repoRoot();
  const fixtures = o.planted.length > 0 ? PLANTED.filter((p) => o.planted.includes(p.name)) : PLANTED;
  console.log(`\nplanted failures: ${fixtures.map((p) => p.name).join(', ')}; seeds ${o.plantedSeeds.join(', ')}; at most ${o.plantedRuns} cases each`);
  const out: PlantedRun[] = [];
  for (const p of fixtures) {
    const checks = p.checks ? await loadChecks(join(root, p.checks)) : defaultChecks();
    for (const seed of o.plantedSeeds) {
      const keepFlags = keepFlagsOf(await samplesOf(o.perShape, seed));
      // Every run fast-check makes, shrink candidates included (whether or not runChecks reuses a verdict for it).
      let runsMade = 0;
      const onProgress: CheckOptions['onProgress'] = (e) => {
        if (e.type === 'run') runsMade += 1;
      };
      const options = checkOptions(o, { flowsDir: join(root, p.flows), opsModules: [PLANTED_OPS], checks, only: [p.property], runs: o.plantedRuns, seed, onProgress });
      const { value: report, otherCores } = await measured(() => runChecks(options));
      const r = report.properties[0]!;
      const c = r.counterexample;
      const run: PlantedRun = {
        fixture: p.name,
        property: p.property,
        seed,
        keepFlags,
        status: r.status,
        runs: c ? c.found_after_runs : r.runs,
        firstFailureMs: c ? c.search_ms : null,
        shrinkMs: c ? c.shrink_ms : null,
        totalMs: r.duration_ms,
        shrinks: c?.shrinks ?? null,
        shrinkCandidates: c ? runsMade - c.found_after_runs : null,
        originalBytes: c?.original_size ?? null,
        shrunkBytes: c?.shrunk_size ?? null,
        case: c?.case ?? null,
        failure: c?.failure.message ?? null,
        otherCores,
      };
      out.push(run);
      console.log(
        `  ${p.name.padEnd(15)} seed ${seed}: ${run.status.padEnd(7)} ${c ? `after ${run.runs} cases, ${(run.firstFailureMs! / 1000).toFixed(2)} s; ${run.shrinks} shrinks (${run.shrinkCandidates} tried) in ${(run.shrinkMs! / 1000).toFixed(2)} s; ${run.originalBytes} → ${run.shrunkBytes} bytes` : `${run.runs} cases, ${(run.totalMs / 1000).toFixed(2)} s`}; other processes ${otherCores.toFixed(2)} cores`,
      );
      if (c) console.log(`    ${c.case.slice(0, 200)}`);
    }
  }
  const rows = fixtures.map((p) => {
    const rs = out.filter((r) => r.fixture === p.name);
    const found = rs.filter((r) => r.status === 'failed');
    const range = (f: (r: PlantedRun) => number | null, digits = 0, scale = 1) => {
      const xs = found.map(f).filter((x): x is number => x !== null).map((x) => x / scale);
      return xs.length === 0 ? null : `${num(median(xs), digits)} (${num(Math.min(...xs), digits)}–${num(Math.max(...xs), digits)})`;
    };
    return {
      fixture: p.name,
      property: p.property,
      found: `${found.length} / ${rs.length}`,
      runs: range((r) => r.runs),
      firstFailureS: range((r) => r.firstFailureMs, 2, 1000),
      shrinks: range((r) => r.shrinks),
      shrinkCandidates: range((r) => r.shrinkCandidates),
      keepFlags: `${num(Math.min(...rs.map((r) => r.keepFlags)))}–${num(Math.max(...rs.map((r) => r.keepFlags)))}`,
      shrinkS: range((r) => r.shrinkMs, 2, 1000),
      totalS: range((r) => r.totalMs, 2, 1000),
      bytes: found.length === 0 ? null : `${num(median(found.map((r) => r.originalBytes ?? NaN)))} → ${num(median(found.map((r) => r.shrunkBytes ?? NaN)))}`,
    };
  });
  console.log('\nmedian (min–max) over the seeds that found the failure:');
  console.log(
    mdTable(
      ['planted bug', 'caught by', 'found', 'cases to first failure', 's to first failure', 'shrink steps', 'candidates tried', 'keep flags', 's shrinking', 's total', 'payload bytes, first failure → shrunk (median)'],
      rows.map((r) => [r.fixture, r.property, r.found, r.runs, r.firstFailureS, r.shrinks, r.shrinkCandidates, r.keepFlags, r.shrinkS, r.totalS, r.bytes]),
    ),
  );
  console.log(`other processes: at most ${Math.max(...out.map((r) => r.otherCores)).toFixed(2)} cores during any search`);
  return { seeds: o.plantedSeeds, maxRuns: o.plantedRuns, summary: rows, runs: out.map((r) => ({ ...r, firstFailureMs: r.firstFailureMs === null ? null : round(r.firstFailureMs, 1), shrinkMs: r.shrinkMs === null ? null : round(r.shrinkMs, 1), totalMs: round(r.totalMs, 1), otherCores: round(r.otherCores, 2) })) };
}

function machine() {
  const root = repoRoot();
  return {
    ...hostInfo(),
    fastCheck: packageVersion(root, 'fast-check'),
    duckdbNodeApi: packageVersion(root, '@duckdb/node-api'),
    /** BENCH_GIT_REV names the commit when running from a copy of dist/ built earlier (the checkout may have moved on). */
    git: process.env.BENCH_GIT_REV ?? gitHead(root),
    gitDirty: process.env.BENCH_GIT_REV ? null : gitDirty(root),
    build: fileURLToPath(new URL('../..', import.meta.url)),
  };
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  const info = machine();
  console.log(`hookshadow check benchmark — ${info.nproc} CPUs (${info.cpuModel}), ${info.memGiB} GiB, node ${info.node}, fast-check ${info.fastCheck}, HEAD ${info.git}${info.gitDirty ? ' (dirty)' : ''}`);
  const report: Record<string, unknown> = { benchmark: 'check', startedAt: new Date().toISOString(), command: `node dist/bench/check/run.js ${process.argv.slice(2).join(' ')}`.trim(), machine: info, options: o };
  if (o.throughput) report.throughput = await throughput(o);
  if (o.plantedFailures) report.planted = await planted(o);
  report.totalSeconds = round((performance.now() - t0) / 1000, 1);
  mkdirSync(dirname(o.out), { recursive: true });
  writeFileSync(o.out, JSON.stringify(report, null, 2) + '\n');
  console.log(`\nraw figures: ${o.out} (${report.totalSeconds} s in all)`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

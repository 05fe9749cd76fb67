import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { HsError } from '../../core/errors.js';
import { openStoreReader } from '../../core/store/reader.js';
import { VERSION } from '../../core/version.js';
import { runDelivery } from '../../replayer/engine/run.js';
import { loadFlowsOrThrow } from '../../replayer/flows/load.js';
import type { CompiledFlow } from '../../replayer/flows/model.js';
import { BUILTIN_OPS, createOpRegistry, loadUserOps } from '../../replayer/ops/registry.js';
import type { StoredDelivery } from '../../replayer/source.js';
import { loadRouteMaps } from '../routes.js';
import { loadRules, NO_RULES } from '../rules.js';
import { caseArbitrary } from './arbitraries.js';
import { describeCase, materialize, type CasePlan, type CheckCase } from './case.js';
import type { ChecksConfig } from './checks-file.js';
import { fixtureName, loadFixtures, saveCounterexample, type Counterexample } from './fixtures.js';
import { openInvariantDb, type Invariant, type InvariantDb } from './invariants.js';
import { startLegacyOracle, type LegacyOracle } from './oracle.js';
import { PROPERTIES, runCase, type CheckContext, type Engine, type Failure, type Property } from './properties.js';
import { jsonSize } from './payload-tree.js';
import { sampleDeliveries } from './samples.js';

/**
 * `hookshadow check`: saved counterexamples first, then a fast-check search per
 * property over cases made from the store's deliveries. specs/checks.md.
 */

export interface CheckOptions {
  /** Where to sample deliveries; null: no search, only the regressions. */
  store: string | null;
  flowsDir: string;
  opsModules: string[];
  opsBaseDir: string;
  checks: ChecksConfig;
  seed: number;
  /** Cases per property (0: regressions only). */
  runs: number;
  /** Bounds the whole run, in milliseconds. */
  timeBudgetMs: number | null;
  /** Save each new counterexample as a fixture here. */
  save: string | null;
  regressions: string[];
  /** Only these properties (names, or `invariant:<name>`); empty: all that apply. */
  only: string[];
  /** fast-check's replay path for one failing case (with --seed and one --property). */
  path: string | null;
  perShape: number;
  /** Webhook secrets by source: the oracle re-signs each delivery it sends. */
  secrets?: Record<string, string>;
  /** The command line that reproduces a saved counterexample, given its directory. */
  reproduce: (fixtureDir: string | null, property: string, path: string | null) => string;
  /** Replaces the engine: only the checker's own tests do (to plant a dispatch bug). */
  engine?: Engine;
  onProgress?: (event: ProgressEvent) => void;
}

export type ProgressEvent = { type: 'property'; name: string; total: number } | { type: 'run'; name: string } | { type: 'done'; name: string; status: ResultStatus };

export type ResultStatus = 'passed' | 'failed' | 'skipped';

export interface FoundCounterexample {
  /** Cases run until the first failure, and the time it took; the rest of the property's time went to shrinking. */
  found_after_runs: number;
  search_ms: number;
  shrink_ms: number;
  case: string;
  deliveries: StoredDelivery[];
  failure: Failure;
  path: string | null;
  shrinks: number;
  original_size: number | null;
  shrunk_size: number;
  saved: string | null;
  reproduce: string;
}

export interface PropertyResult {
  name: string;
  meaning: string;
  flows: string[];
  status: ResultStatus;
  /** Why it was skipped. */
  reason: string | null;
  runs: number;
  duration_ms: number;
  counterexample: FoundCounterexample | null;
}

export interface RegressionResult {
  fixture: string;
  property: string;
  status: ResultStatus;
  reason: string | null;
  failure: Failure | null;
  duration_ms: number;
}

export interface CheckReport {
  hookshadow_version: string;
  seed: number;
  runs: number;
  samples: number;
  flows: { name: string; version: string }[];
  regressions: RegressionResult[];
  properties: PropertyResult[];
  duration_ms: number;
  /** True when any property or regression failed: the command exits 1. */
  failed: boolean;
}

/** A property and the flows it covers; invariants become properties named `invariant:<name>`. */
interface Planned {
  property: Property<any>;
  flows: CompiledFlow[];
  skip: string | null;
}

function invariantProperty(inv: Invariant, db: InvariantDb): Property<undefined> {
  return {
    name: `invariant:${inv.name}` as Property['name'],
    meaning: inv.meaning,
    async check(c, ctx) {
      const runs = await runCase(ctx, c.deliveries);
      const rows = await db.violations(inv, c.deliveries, runs);
      if (rows.length === 0) return null;
      return { message: `invariant:${inv.name}: ${inv.meaning} — the query returned ${rows.length} row(s)`, expected: { label: 'rows', value: [] }, actual: { label: `rows of ${inv.at}`, value: rows.slice(0, 20) } };
    },
  };
}

class PropertyFailed extends Error {
  constructor(readonly failure: Failure) {
    super(failure.message);
  }
}

export async function runChecks(opts: CheckOptions): Promise<CheckReport> {
  const started = performance.now();
  const deadline = opts.timeBudgetMs === null ? null : started + opts.timeBudgetMs;
  const ops = createOpRegistry([...BUILTIN_OPS, ...(await loadUserOps(opts.opsModules, opts.opsBaseDir))]);
  const { flows } = await loadFlowsOrThrow(opts.flowsDir, ops);
  const { checks } = opts;
  const routes = await loadRouteMaps(checks.legacy?.routes ?? []);
  const rules = checks.legacy?.rules ? await loadRules(checks.legacy.rules, new Date()) : NO_RULES();
  const db = await openInvariantDb();
  let oracle: LegacyOracle | null = null;
  try {
    for (const inv of checks.invariants) await db.validate(inv);
    const planned: Planned[] = [];
    const inScope = (glob: { test(v: string): boolean } | null) => flows.filter((f) => glob === null || glob.test(f.name));
    for (const p of PROPERTIES) {
      const scope = checks.properties[p.name];
      if (!scope.enabled) continue;
      planned.push({ property: p, flows: inScope(scope.flows), skip: null });
    }
    for (const inv of checks.invariants) planned.push({ property: invariantProperty(inv, db), flows: inScope(inv.flows), skip: null });
    const unknown = opts.only.filter((n) => !planned.some((p) => p.property.name === n));
    if (unknown.length > 0) throw new HsError('HS_ERR_USAGE', `--property ${unknown.join(', ')}: no such property here; enabled: ${planned.map((p) => p.property.name).join(', ')}.`);
    const selected = opts.only.length === 0 ? planned : planned.filter((p) => opts.only.includes(p.property.name));
    if (checks.legacy && selected.some((p) => p.property.name === 'legacy-parity')) {
      oracle = await startLegacyOracle({ module: checks.legacy.module, baseDir: opts.opsBaseDir, settleMs: checks.legacy.settleMs, secrets: opts.secrets ?? {} });
    }
    const context = (flowsOf: CompiledFlow[]): CheckContext => ({ flows: flowsOf, engine: opts.engine ?? runDelivery, seed: 0, oracle, routes, rules });
    for (const p of selected) {
      if (p.flows.length === 0) p.skip = 'no flow is in its scope';
      else p.skip = p.property.applies?.(context(p.flows)) ?? null;
    }

    // Regressions first: a known failure is the cheapest to find again.
    const regressions: RegressionResult[] = [];
    for (const dir of opts.regressions) {
      for (const fixture of await loadFixtures(dir)) {
        const t0 = performance.now();
        const p = planned.find((x) => x.property.name === fixture.meta.property);
        const base = { fixture: fixture.dir, property: fixture.meta.property };
        if (!p || p.skip) {
          regressions.push({ ...base, status: 'skipped', reason: p ? p.skip : `property ${fixture.meta.property} is not enabled here`, failure: null, duration_ms: performance.now() - t0 });
          continue;
        }
        const failure = await p.property.check(p.property.prepare?.(fixture.case) ?? fixture.case, context(p.flows), fixture.meta.extra);
        regressions.push({ ...base, status: failure ? 'failed' : 'passed', reason: null, failure, duration_ms: performance.now() - t0 });
      }
    }

    let samples: StoredDelivery[] = [];
    if (opts.store && opts.runs > 0) {
      const reader = await openStoreReader(opts.store);
      try {
        samples = await sampleDeliveries(reader, { perShape: opts.perShape, seed: opts.seed });
      } finally {
        reader.close();
      }
    }
    const cases = opts.runs > 0 ? caseArbitrary(samples) : null;
    const results: PropertyResult[] = [];
    for (const [i, p] of selected.entries()) {
      const t0 = performance.now();
      const base = { name: p.property.name, meaning: p.property.meaning, flows: p.flows.map((f) => f.name) };
      if (p.skip || !cases) {
        results.push({ ...base, status: 'skipped', reason: p.skip ?? 'no search (--runs 0)', runs: 0, duration_ms: 0, counterexample: null });
        continue;
      }
      // What is left of the budget, shared by the properties still to run.
      const budget = deadline === null ? undefined : Math.max(1, Math.floor((deadline - performance.now()) / (selected.length - i)));
      opts.onProgress?.({ type: 'property', name: p.property.name, total: opts.runs });
      const result = await searchProperty(p, cases, samples, context(p.flows), opts, budget);
      results.push({ ...base, ...result, duration_ms: performance.now() - t0 });
      opts.onProgress?.({ type: 'done', name: p.property.name, status: result.status });
      if (result.counterexample && opts.save) {
        const c = result.counterexample;
        const ce = result.found!;
        const name = fixtureName(p.property.name, ce.case, ce.extra);
        const meta: Counterexample = {
          format: 'hookshadow-counterexample',
          version: 1,
          hookshadow_version: VERSION,
          property: p.property.name,
          meaning: p.property.meaning,
          flows: p.flows.map((f) => ({ name: f.name, version: f.version })),
          seed: opts.seed,
          path: c.path,
          case: c.case,
          plan: ce.plan,
          extra: ce.extra ?? null,
          failure: c.failure,
          original_size: c.original_size,
          shrunk_size: c.shrunk_size,
          reproduce: '',
        };
        const dir = `${opts.save.replace(/\/$/, '')}/${name}`;
        meta.reproduce = opts.reproduce(dir, p.property.name, c.path);
        c.saved = await saveCounterexample(opts.save, name, ce.case, meta);
        c.reproduce = meta.reproduce;
      }
    }
    return {
      hookshadow_version: VERSION,
      seed: opts.seed,
      runs: opts.runs,
      samples: samples.length,
      flows: flows.map((f) => ({ name: f.name, version: f.version })),
      regressions,
      properties: results,
      duration_ms: performance.now() - started,
      failed: regressions.some((r) => r.status === 'failed') || results.some((r) => r.status === 'failed'),
    };
  } finally {
    db.close();
    await oracle?.close();
  }
}

interface Search {
  status: ResultStatus;
  reason: string | null;
  runs: number;
  counterexample: FoundCounterexample | null;
  found?: { case: CheckCase; plan: CasePlan; extra: unknown };
}

const payloadSize = (c: CheckCase) => c.deliveries.reduce((n, d) => n + jsonSize(d.body ?? ''), 0);

async function searchProperty(p: Planned, cases: fc.Arbitrary<CasePlan>, samples: StoredDelivery[], ctx: CheckContext, opts: CheckOptions, budgetMs: number | undefined): Promise<Search> {
  const input = fc.tuple(cases, p.property.extra ?? fc.constant(undefined));
  const caseOf = (plan: CasePlan) => {
    const c = materialize(plan, samples);
    return p.property.prepare?.(c) ?? c;
  };
  let runs = 0;
  const started = performance.now();
  let found = null as { runs: number; at: number } | null;
  // Shrinking tries many plans that make the same case (a flag on a key that cannot drop changes
  // nothing): the verdict of a case already checked is reused instead of running the check again.
  const verdicts = new Map<string, Failure | null>();
  const property = fc.asyncProperty(input, async ([plan, extra]) => {
    runs++;
    opts.onProgress?.({ type: 'run', name: p.property.name });
    const c = caseOf(plan);
    const key = createHash('sha256').update(JSON.stringify([c.deliveries.map((d) => [d.delivery_id, d.received_at_us, d.body]), extra ?? null])).digest('base64');
    let failure = verdicts.get(key);
    if (failure === undefined) verdicts.set(key, (failure = await p.property.check(c, ctx, extra)));
    if (failure) {
      found ??= { runs, at: performance.now() };
      throw new PropertyFailed(failure);
    }
  });
  const details = await fc.check(property, {
    seed: opts.seed,
    numRuns: opts.runs,
    verbose: 1,
    ...(opts.path ? { path: opts.path } : {}),
    ...(budgetMs !== undefined ? { interruptAfterTimeLimit: budgetMs, markInterruptAsFailure: false } : {}),
  });
  if (!details.failed) return { status: 'passed', reason: details.interrupted ? `time budget reached after ${details.numRuns} runs` : null, runs: details.numRuns, counterexample: null };
  const [[plan, extra]] = details.counterexample!;
  const c = caseOf(plan);
  const error = details.errorInstance;
  // A thrown error that is not a property failure (the oracle died, a bug in an op) is reported as such.
  const failure: Failure = error instanceof PropertyFailed ? error.failure : { message: `${p.property.name}: the check itself threw: ${(error as Error)?.message ?? String(error)}` };
  const first = details.failures[0]?.[0];
  return {
    status: 'failed',
    reason: null,
    runs: details.numRuns,
    counterexample: {
      found_after_runs: found?.runs ?? details.numRuns,
      search_ms: (found?.at ?? performance.now()) - started,
      shrink_ms: found ? performance.now() - found.at : 0,
      case: describeCase(c),
      deliveries: c.deliveries,
      failure,
      path: details.counterexamplePath,
      shrinks: details.numShrinks,
      original_size: first ? payloadSize(caseOf(first[0])) : null,
      shrunk_size: payloadSize(c),
      saved: null,
      reproduce: opts.reproduce(null, p.property.name, details.counterexamplePath),
    },
    found: { case: c, plan, extra },
  };
}

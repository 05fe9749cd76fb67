import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultChecks, loadChecks, type ChecksConfig } from '../../analyzer/checks/checks-file.js';
import { COUNTEREXAMPLE_FILE, type Counterexample } from '../../analyzer/checks/fixtures.js';
import { runChecks, type CheckOptions, type CheckReport } from '../../analyzer/checks/run.js';
import { openStoreReader } from '../../core/store/reader.js';
import { runDelivery } from '../../replayer/engine/run.js';
import { replay } from '../../replayer/replay.js';
import { runCli } from './cli.js';

/**
 * `hookshadow check` against planted bugs: each property catches the one it exists
 * for, shrinks it, saves it as a fixture, and the fixture reproduces it. And every
 * property holds on the fixture flows.
 */

const ROOT = resolve(import.meta.dirname, '../..');
const STORE = join(ROOT, 'fixtures/store');
const PLANTED = join(ROOT, 'test/fixtures/checks');
const OPS = [join(PLANTED, 'planted-ops.ts')];
const DAY_US = 86_400_000_000;

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'hookshadow-check-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function options(flowsDir: string, over: Partial<CheckOptions> = {}): CheckOptions {
  return {
    store: STORE,
    flowsDir,
    opsModules: OPS,
    opsBaseDir: ROOT,
    checks: defaultChecks(),
    seed: 7,
    runs: 100,
    timeBudgetMs: null,
    save: null,
    regressions: [],
    only: [],
    path: null,
    perShape: 20,
    reproduce: (dir, property) => (dir ? `hookshadow check --regressions ${dir} --runs 0` : `hookshadow check --property ${property}`),
    ...over,
  };
}

const result = (r: CheckReport, name: string) => r.properties.find((p) => p.name === name)!;

/** Finds the planted bug, saves it, and checks the fixture reproduces the same failure. */
async function plantedBug(dir: string, property: string, checks: ChecksConfig = defaultChecks()): Promise<{ found: CheckReport; replayed: CheckReport; meta: Counterexample }> {
  const save = await mkdtemp(join(tmp, `${property}-`));
  const found = await runChecks(options(join(PLANTED, dir), { checks, only: [property], save }));
  const p = result(found, property);
  expect(p.status, `${property} should fail on the planted bug in ${dir}`).toBe('failed');
  expect(found.failed).toBe(true);
  const saved = p.counterexample!.saved!;
  expect(saved.startsWith(save)).toBe(true);
  const meta = JSON.parse(await readFile(join(saved, COUNTEREXAMPLE_FILE), 'utf8')) as Counterexample;
  expect(meta).toMatchObject({ property, seed: 7, failure: { message: p.counterexample!.failure.message } });
  expect(meta.reproduce).toBe(`hookshadow check --regressions ${saved} --runs 0`);
  const replayed = await runChecks(options(join(PLANTED, dir), { checks, runs: 0, regressions: [saved] }));
  expect(replayed.regressions).toEqual([expect.objectContaining({ fixture: saved, property, status: 'failed' })]);
  expect(replayed.regressions[0]!.failure!.message.split(':')[0]).toBe(property.startsWith('invariant:') ? 'invariant' : property);
  expect(replayed.failed).toBe(true);
  return { found, replayed, meta };
}

function expectShrunk(r: CheckReport, property: string): void {
  const ce = result(r, property).counterexample!;
  expect(ce.shrinks).toBeGreaterThan(0);
  expect(ce.original_size).not.toBeNull();
  expect(ce.shrunk_size).toBeLessThan(ce.original_size!);
}

describe('hookshadow check: each property catches its planted bug', () => {
  it('deterministic: a flow that reads the wall clock', async () => {
    const { found, meta } = await plantedBug('clock', 'deterministic');
    expectShrunk(found, 'deterministic');
    const f = result(found, 'deterministic').counterexample!.failure;
    expect(f.expected!.label).toBe('first replay');
    expect(JSON.stringify(f.expected!.value)).not.toBe(JSON.stringify(f.actual!.value));
    expect(meta.flows).toEqual([expect.objectContaining({ name: 'stamp-assignment' })]);
  });

  it('dry-run-is-inert: an op that calls out in dry-run', async () => {
    const { found } = await plantedBug('leaky', 'dry-run-is-inert');
    expectShrunk(found, 'dry-run-is-inert');
    expect(result(found, 'dry-run-is-inert').counterexample!.failure.message).toMatch(/reached out: a socket opened/);
  });

  it('redelivery-idempotent: a flow whose dedup key changes on redelivery double-enqueues', async () => {
    const { found } = await plantedBug('double-enqueue', 'redelivery-idempotent');
    expectShrunk(found, 'redelivery-idempotent');
    const f = result(found, 'redelivery-idempotent').counterexample!.failure;
    expect(f.message).toMatch(/flow enqueue-once declares dedup but acted again on a redelivery/);
    expect(f.actual!.value).toEqual([expect.objectContaining({ delivery: 1, flow: 'enqueue-once', intent: expect.objectContaining({ kind: 'agent.enqueue' }) })]);
  });

  it('irrelevant-fields-inert: a condition that depends on key order', async () => {
    const { found } = await plantedBug('key-order', 'irrelevant-fields-inert');
    expectShrunk(found, 'irrelevant-fields-inert');
    const f = result(found, 'irrelevant-fields-inert').counterexample!.failure;
    expect(f.expected!.value).not.toEqual(f.actual!.value);
  });

  it('legacy-parity: a flow that differs from the legacy bot on labels (the bot reads them from the issue, the flow from the delivery)', async () => {
    const checks = await loadChecks(join(PLANTED, 'label-edge.checks.yaml'));
    const { found } = await plantedBug('label-edge', 'legacy-parity', checks);
    expectShrunk(found, 'legacy-parity');
    const f = result(found, 'legacy-parity').counterexample!.failure;
    expect(f.message).toMatch(/\(assign-agent/);
  });

  it('trigger-consistent: an engine that drops runs around UTC midnight', async () => {
    // The flows are fine; the planted bug is in the dispatch, so the engine is what is swapped.
    const dayBoundaryBug: CheckOptions['engine'] = async (flows, d, opts) => {
      const runs = await runDelivery(flows, d, opts);
      const intoDay = d.received_at_us % DAY_US;
      return intoDay < 3_000_000 || intoDay > DAY_US - 3_000_000 ? [] : runs;
    };
    const r = await runChecks(options(join(ROOT, 'fixtures/flows'), { only: ['trigger-consistent'], runs: 300, engine: dayBoundaryBug }));
    const p = result(r, 'trigger-consistent');
    expect(p.status).toBe('failed');
    expect(p.counterexample!.case).toMatch(/received at UTC midnight/);
    expect(p.counterexample!.failure.message).toMatch(/trigger matches delivery 1, yet it produced 0 runs/);
  });

  it('SQL invariants: a flow that closes pull requests through the issues API', async () => {
    const checks = await loadChecks(join(ROOT, 'fixtures/checks.yaml'));
    const { found } = await plantedBug('close-pr', 'invariant:no-close-on-pull-request', checks);
    const f = result(found, 'invariant:no-close-on-pull-request').counterexample!.failure;
    expect(f.actual!.value).toEqual([expect.objectContaining({ flow: 'close-bugs-on-open', node_id: 'close' })]);
  });
});

describe('hookshadow check on the fixture flows', () => {
  it('every property, legacy-parity against the demo bot and the SQL invariants hold', async () => {
    const checks = await loadChecks(join(ROOT, 'fixtures/checks.yaml'));
    const r = await runChecks(options(join(ROOT, 'fixtures/flows'), { checks, opsModules: [], runs: 60 }));
    expect(r.properties.map((p) => [p.name, p.status])).toEqual([
      ['deterministic', 'passed'],
      ['dry-run-is-inert', 'passed'],
      ['redelivery-idempotent', 'passed'],
      ['trigger-consistent', 'passed'],
      ['irrelevant-fields-inert', 'passed'],
      ['legacy-parity', 'passed'],
      ['invariant:no-close-on-pull-request', 'passed'],
      ['invariant:no-removing-labels-not-added', 'passed'],
    ]);
    expect(r.properties.every((p) => p.runs === 60)).toBe(true);
    expect(r.samples).toBeGreaterThan(0);
    expect(r.failed).toBe(false);
  });

  it('redelivery-idempotent judges each redelivery on its own (a flow without dedup acts again every time)', async () => {
    // Seeds that generate cases with two redeliveries of a /retry comment: retry-agent rightly acts each time.
    for (const seed of [2, 3, 10]) {
      const r = await runChecks(options(join(ROOT, 'fixtures/flows'), { opsModules: [], only: ['redelivery-idempotent'], seed }));
      expect(result(r, 'redelivery-idempotent').status, `seed ${seed}`).toBe('passed');
    }
  });

  it('--time-budget bounds the run: the search stops early and still passes', async () => {
    const r = await runChecks(options(join(ROOT, 'fixtures/flows'), { opsModules: [], only: ['deterministic'], runs: 1_000_000, timeBudgetMs: 1_000 }));
    const p = result(r, 'deterministic');
    expect(p.status).toBe('passed');
    expect(p.runs).toBeLessThan(1_000_000);
    expect(p.reason).toMatch(/time budget reached/);
  });
});

describe('hookshadow check: saved fixtures and the CLI', () => {
  it('a saved counterexample is a capture store that `replay` runs like any other', async () => {
    const save = await mkdtemp(join(tmp, 'replayable-'));
    const r = await runChecks(options(join(PLANTED, 'double-enqueue'), { only: ['redelivery-idempotent'], save }));
    const fixture = result(r, 'redelivery-idempotent').counterexample!.saved!;
    const summary = await replay({ store: fixture, flowsDir: join(PLANTED, 'double-enqueue'), concurrency: 1, timings: false });
    // The delivery and its redelivery: the replay shows the double enqueue.
    expect(summary.deliveries).toBe(2);
    expect(summary.intents).toBe(2);
    const reader = await openStoreReader(fixture);
    try {
      const [row] = await reader.query<{ n: number }>('SELECT count(*)::INTEGER AS n FROM deliveries');
      expect(row!.n).toBe(2);
    } finally {
      reader.close();
    }

    // With the key fixed, the redelivery is a duplicate, however many workers share the replay.
    const fixed = join(tmp, 'fixed-flows');
    await mkdir(fixed, { recursive: true });
    const flow = await readFile(join(PLANTED, 'double-enqueue/enqueue.yaml'), 'utf8');
    await writeFile(join(fixed, 'enqueue.yaml'), flow.replace(/dedup:\n  key: .*\n/, 'dedup: {}\n'));
    for (const concurrency of ['1', '2']) {
      const res = await runCli(['replay', '--store', fixture, '--flows', fixed, '--concurrency', concurrency, '--format', 'json'], { cwd: ROOT });
      expect(res.code, res.stderr).toBe(0);
      const again = JSON.parse(res.stdout) as { runs_by_status: Record<string, number>; intents: number };
      expect(again.runs_by_status).toEqual({ ok: 1, duplicate: 1 });
      expect(again.intents).toBe(1);
    }
  });

  it('exits 1 with the seed, the shrunk delivery and the reproduction command; JUnit names the failed property', async () => {
    const save = join(tmp, 'cli-save');
    const args = ['check', '--flows', join(PLANTED, 'clock'), '--ops', OPS[0]!, '--store', STORE, '--seed', '11', '--runs', '50', '--property', 'deterministic', '--save', save];
    const text = await runCli(args, { cwd: ROOT });
    expect(text.code).toBe(1);
    expect(text.stderr).toContain('hookshadow check: seed 11');
    expect(text.stdout).toMatch(/✗ deterministic/);
    expect(text.stdout).toMatch(/delivery [\w-]+ \(\w+ issues\.assigned\): \{/);
    const reproduce = /reproduce: (hookshadow check .*)/.exec(text.stdout)![1]!;
    expect(reproduce).toContain(`--regressions ${save}/deterministic-`);

    const again = await runCli([...reproduce.split(' ').slice(1).map((a) => a.replace(/^'|'$/g, '')), '--format', 'junit'], { cwd: ROOT });
    expect(again.code).toBe(1);
    const xml = new XMLParser({ ignoreAttributes: false }).parse(again.stdout);
    const suites = [xml.testsuites.testsuite].flat();
    const regressions = suites.find((s: { '@_name': string }) => s['@_name'] === 'hookshadow check: regressions');
    expect(regressions['@_failures']).toBe('1');
    expect(regressions.testcase.failure['@_message']).toMatch(/^deterministic: two replays/);
  });

  it('exits 0 on passing checks, and 2 on an invalid checks file naming file:line:col', async () => {
    const ok = await runCli(['check', '--flows', 'fixtures/flows', '--store', STORE, '--seed', '3', '--runs', '20', '--format', 'json', '--no-save'], { cwd: ROOT });
    expect(ok.code).toBe(0);
    const report = JSON.parse(ok.stdout) as CheckReport;
    expect(report.seed).toBe(3);
    expect(report.properties.filter((p) => p.status === 'passed')).toHaveLength(5);

    const bad = join(tmp, 'bad-checks.yaml');
    await writeFile(bad, 'properties:\n  determinstic: true\ninvariants:\n  - name: x\n    meaning: y\n');
    const failed = await runCli(['check', '--flows', 'fixtures/flows', '--checks', bad, '--no-save'], { cwd: ROOT });
    expect(failed.code).toBe(2);
    expect(failed.stderr).toContain('HS_ERR_CHECKS_INVALID');
    expect(failed.stderr).toContain(`${bad}:2:3: unknown key "determinstic" in properties (did you mean "deterministic"?)`);
    expect(failed.stderr).toMatch(new RegExp(`${bad}:4:5: missing "sql"`));
  });
});

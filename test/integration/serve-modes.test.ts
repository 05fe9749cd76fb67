import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Mode } from '../../replayer/flows/model.js';
import { resolveServeConfig } from '../../serve/config.js';
import { startServe, type RunningServe } from '../../serve/server.js';
import { settingsPath } from '../../serve/settings.js';

/**
 * A model-based test of serve's mode state machine against the real app (fast-check
 * `commands`, requests by `inject`): random global and per-flow flips, forced or not,
 * and restarts with and without the upstreams live flows need. After every step the
 * app, the settings file and a simple model agree: no half-state (the dispatcher
 * exists exactly when a flow is not off), every refused write rolled back, the
 * history complete.
 */

const FLOWS = ['assign-agent', 'request-review', 'retry-agent'] as const;
const MODES: Mode[] = ['off', 'dry-run', 'live'];
const TOKEN = 'model-test-token-0123456789';
const UPSTREAMS = { github: 'http://127.0.0.1:9', gitea: 'http://127.0.0.1:9/api/v1', forgejo: 'http://127.0.0.1:9/api/v1', agents: 'http://127.0.0.1:9' };

interface Model {
  global: Mode;
  overrides: Partial<Record<(typeof FLOWS)[number], Mode>>;
  caps: boolean;
  history: number;
}

interface Real {
  store: string;
  serve: RunningServe;
}

const effective = (m: Pick<Model, 'global' | 'overrides'>) => Object.fromEntries(FLOWS.map((f) => [f, m.overrides[f] ?? m.global])) as Record<string, Mode>;

async function boot(store: string, caps: boolean): Promise<RunningServe> {
  const config = await resolveServeConfig({
    inline: {
      store,
      port: 0,
      log_level: 'silent',
      // Never called: no delivery is sent in this test.
      legacy: { url: 'http://127.0.0.1:9/webhook' },
      upstreams: caps ? UPSTREAMS : {},
      flows: { dir: join(import.meta.dirname, '../../fixtures/flows'), mode: 'off' },
      serve: { admin_token: TOKEN, settle_ms: 0 },
    },
    env: {},
  });
  return startServe(config);
}

async function inject(real: Real, method: 'GET' | 'PUT', url: string, payload?: unknown) {
  const res = await real.serve.app.inject({ method, url, headers: { authorization: `Bearer ${TOKEN}` }, ...(payload ? { payload: payload as object } : {}) });
  return { status: res.statusCode, body: res.json() as any };
}

/** The app, the file on disk and the model agree. */
async function agree(model: Model, real: Real): Promise<void> {
  const state = await inject(real, 'GET', '/api/flows/mode');
  expect(state.body.effective).toEqual(effective(model));
  expect(state.body.history).toHaveLength(model.history);
  expect(state.body.dispatcher).toBe(Object.values(effective(model)).some((m) => m !== 'off'));
  expect(real.serve.context.dispatcherAlive()).toBe(state.body.dispatcher);
  const file = JSON.parse(await readFile(settingsPath(real.store), 'utf8'));
  expect(effective({ global: file.mode, overrides: file.flows })).toEqual(effective(model));
  expect(file.history).toHaveLength(model.history);
  expect(file.history.map((e: { seq: number }) => e.seq)).toEqual(Array.from({ length: model.history }, (_, i) => i + 1));
}

/** What the model says a flip answers, and the model after it. */
function expectFlip(model: Model, scope: 'global' | 'flow', flow: (typeof FLOWS)[number] | null, to: Mode, force: boolean): { status: number; code?: string; changed?: boolean; next: Model } {
  const before = effective(model);
  const next: Model = scope === 'global' ? { ...model, global: to } : { ...model, overrides: { ...model.overrides, [flow!]: to } };
  const after = effective(next);
  const from = scope === 'global' ? model.global : before[flow!];
  if (from === to && FLOWS.every((f) => after[f] === before[f])) return { status: 200, changed: false, next: model };
  const goingLive = FLOWS.some((f) => after[f] === 'live' && before[f] !== 'live');
  // The gate's defaults (7 days, 500 deliveries) can never be met here: only a forced flip goes live.
  if (goingLive && !force) return { status: 409, code: 'HS_ERR_CUTOVER_BLOCKED', next: model };
  if (!model.caps && FLOWS.some((f) => after[f] === 'live')) return { status: 409, code: 'HS_ERR_CAPABILITIES_MISSING', next: model };
  return { status: 200, changed: true, next: { ...next, history: model.history + 1 } };
}

class Flip implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly flow: (typeof FLOWS)[number] | null,
    readonly to: Mode,
    readonly force: boolean,
  ) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    const expected = expectFlip(model, this.flow ? 'flow' : 'global', this.flow, this.to, this.force);
    const res = await inject(real, 'PUT', this.flow ? `/api/flows/${this.flow}/mode` : '/api/flows/mode', { mode: this.to, force: this.force, who: 'model' });
    expect(res.status).toBe(expected.status);
    if (expected.code) {
      expect(res.body.code).toBe(expected.code);
      if (expected.code === 'HS_ERR_CAPABILITIES_MISSING') expect(res.body.missing.length).toBeGreaterThan(0);
      if (expected.code === 'HS_ERR_CUTOVER_BLOCKED') expect(res.body.reasons.length).toBeGreaterThan(0);
    } else expect(res.body.changed).toBe(expected.changed);
    Object.assign(model, expected.next);
    await agree(model, real);
  }
  toString = () => `${this.flow ?? 'global'} → ${this.to}${this.force ? ' (force)' : ''}`;
}

class Restart implements fc.AsyncCommand<Model, Real> {
  constructor(readonly caps: boolean) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    await real.serve.stop();
    real.serve = await boot(real.store, this.caps);
    model.caps = this.caps;
    // A live flow whose upstreams are gone comes back in dry-run, with a history entry each.
    if (!this.caps) {
      for (const f of FLOWS) {
        if (effective(model)[f] === 'live') {
          model.overrides = { ...model.overrides, [f]: 'dry-run' };
          model.history += 1;
        }
      }
    }
    await agree(model, real);
  }
  toString = () => `restart (${this.caps ? 'with' : 'without'} upstreams)`;
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'hookshadow-modes-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('serve mode state machine (model-based)', () => {
  it('never leaves a half-state, rolls back every refused write, and keeps a complete history', async () => {
    const mode = fc.constantFrom(...MODES);
    const commands = [
      fc.tuple(mode, fc.boolean()).map(([to, force]) => new Flip(null, to, force)),
      fc.tuple(fc.constantFrom(...FLOWS), mode, fc.boolean()).map(([flow, to, force]) => new Flip(flow, to, force)),
      fc.boolean().map((caps) => new Restart(caps)),
    ];
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 14 }), async (cmds) => {
        const store = join(tmp, `run-${run++}`);
        const real: Real = { store, serve: await boot(store, true) };
        const model: Model = { global: 'off', overrides: {}, caps: true, history: 0 };
        try {
          await agree(model, real);
          await fc.asyncModelRun(() => ({ model, real }), cmds);
        } finally {
          await real.serve.stop();
        }
      }),
      { numRuns: 25, seed: 20261122 },
    );
  }, 120_000);
});

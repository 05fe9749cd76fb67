import fc from 'fast-check';
import { parsePayload } from '../../core/payload.js';
import type { StoredDelivery } from '../../replayer/source.js';
import type { CasePlan, Mutation, Origin } from './case.js';
import { keyPaths, pathsWhere, getAt } from './payload-tree.js';
import { githubEventShapes, githubPayloadArbitrary } from './schema-payloads.js';

/**
 * The generator of cases (specs/checks.md § Cases). Everything shrinks toward the plain
 * sample: mutations toward none, `keep` flags toward 0 (the key dropped), so a shrunk
 * counterexample is a real delivery with the fewest changes and the fewest keys.
 */

/** Most payloads have fewer keys; past this many, the rest are never dropped. */
export const MAX_DROPPABLE_KEYS = 400;

/** What the samples say is plausible: the values mutations draw from. */
export interface Pools {
  actions: string[];
  labels: string[];
  logins: string[];
}

// Common actions of issue, pull-request and comment events, beyond what the samples show.
const ACTIONS = ['opened', 'edited', 'closed', 'reopened', 'assigned', 'unassigned', 'labeled', 'unlabeled', 'created', 'deleted', 'synchronize', 'review_requested', 'transferred'];

const unique = (xs: Iterable<string>) => [...new Set(xs)].sort();

export function poolsOf(samples: readonly StoredDelivery[]): Pools {
  const actions = new Set(ACTIONS);
  const labels = new Set(['agent-running', 'bug']);
  const logins = new Set<string>();
  for (const s of samples) {
    if (s.action) actions.add(s.action);
    const { payload } = parsePayload(s.body_encoding === 'utf8' ? s.body : null, s.content_type);
    for (const p of pathsWhere(payload, (v) => typeof v === 'string')) {
      const key = p[p.length - 1];
      const v = getAt(payload, p) as string;
      if (key === 'login') logins.add(v);
      if (key === 'name' && p.includes('labels')) labels.add(v);
    }
  }
  if (logins.size === 0) logins.add('octocat');
  return { actions: unique(actions), labels: unique(labels), logins: unique(logins) };
}

/** Texts that have broken bots: empty, huge, unicode, and slash commands in their many spellings. */
const textValue = fc.oneof(
  fc.constantFrom('', '/retry', '/retry\r\n', 'please\n/retry now', ' /retry', '/RETRY', '/retry-all', '`/retry`', '> /retry', '🚀 /retry', '\u202e/retry', 'ﬁx /retry'),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.integer({ min: 1_000, max: 70_000 }).map((n) => 'x'.repeat(n)),
);

export function mutationArbitrary(pools: Pools): fc.Arbitrary<Mutation> {
  const index = fc.nat({ max: 1_000 });
  return fc.oneof(
    fc.record({ op: fc.constant('action' as const), value: fc.constantFrom(...pools.actions) }),
    fc.record({ op: fc.constant('label.add' as const), name: fc.oneof(fc.constantFrom(...pools.labels), fc.string({ minLength: 1, maxLength: 20 })) }),
    fc.record({ op: fc.constant('label.remove' as const), at: index }),
    fc.record({ op: fc.constant('assignee.add' as const), login: fc.constantFrom(...pools.logins) }),
    fc.record({ op: fc.constant('assignee.remove' as const), at: index }),
    fc.record({ op: fc.constant('reviewer.add' as const), login: fc.constantFrom(...pools.logins) }),
    fc.record({ op: fc.constant('reviewer.remove' as const), at: index }),
    fc.record({ op: fc.constant('text' as const), at: index, value: textValue }),
    fc.record({ op: fc.constant('reorder' as const), at: index, seed: fc.nat() }),
    fc.record({ op: fc.constant('midnight' as const), offsetMs: fc.integer({ min: -2_000, max: 2_000 }) }),
    fc.record({ op: fc.constant('redeliver' as const), afterMs: fc.integer({ min: 1, max: 3 * 86_400_000 }) }),
  );
}

export interface CaseArbitraryOptions {
  /** Add payloads generated from the GitHub webhook schemas (default: when there are GitHub samples, or no samples at all). */
  schemas?: boolean;
  maxMutations?: number;
}

/**
 * Plans over the samples (smallest first, so shrinking the index moves to smaller
 * deliveries) and, for GitHub, over payloads generated from the published schemas.
 */
export function caseArbitrary(samples: readonly StoredDelivery[], opts: CaseArbitraryOptions = {}): fc.Arbitrary<CasePlan> {
  const origins: fc.WeightedArbitrary<Origin>[] = [];
  if (samples.length > 0) origins.push({ weight: 4, arbitrary: fc.nat({ max: samples.length - 1 }).map((index) => ({ kind: 'sample' as const, index })) });
  const schemas = opts.schemas ?? (samples.length === 0 || samples.some((s) => s.source === 'github'));
  if (schemas) {
    const shapes = githubEventShapes();
    const seen = new Set(samples.map((s) => `${s.event}.${s.action}`));
    // Shapes the captures hold are covered by samples; the schemas add the rest, the captured events' shapes first.
    const events = new Set(samples.map((s) => s.event));
    const wanted = shapes.filter((s) => !seen.has(`${s.event}.${s.action}`)).sort((a, b) => Number(events.has(b.event)) - Number(events.has(a.event)));
    const arbs = wanted.map((s) => githubPayloadArbitrary(s.event, s.action)?.map((payload) => ({ kind: 'schema' as const, event: s.event, action: s.action, payload })));
    const present = arbs.filter((a): a is fc.Arbitrary<Origin & { kind: 'schema' }> => a !== undefined);
    if (present.length > 0) origins.push({ weight: 1, arbitrary: fc.oneof(...present) });
  }
  const maxKeys = Math.min(MAX_DROPPABLE_KEYS, Math.max(1, ...samples.map((s) => keyPaths(payloadOf(s), MAX_DROPPABLE_KEYS).length)));
  const pools = poolsOf(samples);
  return fc.record({
    origin: fc.oneof(...origins),
    // One key in 40 dropped per case; each flag shrinks to 0, so shrinking drops every key the failure does not need.
    keep: fc.array(fc.noBias(fc.nat({ max: 39 })), { minLength: maxKeys, maxLength: maxKeys }),
    mutations: fc.array(mutationArbitrary(pools), { maxLength: opts.maxMutations ?? 4 }),
  });
}

function payloadOf(s: StoredDelivery): unknown {
  return parsePayload(s.body_encoding === 'utf8' ? s.body : null, s.content_type).payload;
}

import { createHash } from 'node:crypto';
import type { Source } from '../../core/capture-schema.js';
import { parsePayload } from '../../core/payload.js';
import { deliveryFacts } from '../../recorder/sources.js';
import type { StoredDelivery } from '../../replayer/source.js';
import { formatPath } from '../json-path.js';
import { getAt, keyPaths, pathsWhere, reorderKeys, replaceAt, type JsonPath } from './payload-tree.js';
import { githubRequiredKeys } from './schema-payloads.js';

/**
 * What one property run checks, and how it was made: a real delivery (or a payload
 * generated from a published schema), some keys dropped, then a list of mutations.
 * Plans are plain data: fast-check generates and shrinks them, reports print them,
 * and a saved counterexample records them. specs/checks.md § Cases.
 */

export type Mutation =
  | { op: 'action'; value: string }
  | { op: 'label.add'; name: string }
  | { op: 'label.remove'; at: number }
  | { op: 'assignee.add'; login: string }
  | { op: 'assignee.remove'; at: number }
  | { op: 'reviewer.add'; login: string }
  | { op: 'reviewer.remove'; at: number }
  | { op: 'text'; at: number; value: string }
  | { op: 'reorder'; at: number; seed: number }
  | { op: 'midnight'; offsetMs: number }
  | { op: 'redeliver'; afterMs: number };

export type Origin = { kind: 'sample'; index: number } | { kind: 'schema'; event: string; action: string | null; payload: Record<string, unknown> };

export interface CasePlan {
  origin: Origin;
  /** One entry per key of the origin's payload, depth first: 0 drops that key. */
  keep: number[];
  mutations: Mutation[];
}

/** A materialized case: the deliveries to run in order (a redelivery repeats the first's id, later). */
export interface CheckCase {
  deliveries: StoredDelivery[];
  /** `sample <delivery id>`, `schema <event>.<action>`, or `fixture <dir>`. */
  origin: string;
  dropped: string[];
  mutations: Mutation[];
}

type Payload = Record<string, unknown>;

/** The issue or pull request a delivery is about, where its labels and assignees live. */
function subjectPath(p: Payload): JsonPath | null {
  for (const k of ['issue', 'pull_request']) if (p[k] && typeof p[k] === 'object') return [k];
  return null;
}

const pushTo = (p: Payload, path: JsonPath, item: unknown): Payload => replaceAt(p, path, (old) => [...(Array.isArray(old) ? old : []), item]) as Payload;
const removeFrom = (p: Payload, path: JsonPath, at: number): Payload =>
  replaceAt(p, path, (old) => (Array.isArray(old) && old.length > 0 ? old.filter((_, i) => i !== at % old.length) : old)) as Payload;

/** A user object shaped like one the payload already has (its sender), under another login. */
function userLike(p: Payload, login: string): Payload {
  const sender = (p.sender && typeof p.sender === 'object' ? p.sender : { type: 'User' }) as Payload;
  return { ...sender, login, id: idOf(login) };
}

const idOf = (text: string) => parseInt(createHash('sha256').update(text).digest('hex').slice(0, 8), 16);

/** Hash-ranked key order: the same seed always gives the same permutation. */
const keyRank = (seed: number) => (path: JsonPath, key: string) => idOf(`${seed}\0${path.join('\0')}\0${key}`);

function applyToPayload(p: Payload, m: Mutation): Payload {
  const subject = subjectPath(p);
  switch (m.op) {
    case 'action':
      return { ...p, action: m.value };
    case 'label.add': {
      if (!subject) return p;
      const labels = getAt(p, [...subject, 'labels']);
      const template = Array.isArray(labels) && labels[0] && typeof labels[0] === 'object' ? (labels[0] as Payload) : { color: 'ededed', default: false, description: null };
      return pushTo(p, [...subject, 'labels'], { ...template, id: idOf(m.name), name: m.name });
    }
    case 'label.remove':
      return subject ? removeFrom(p, [...subject, 'labels'], m.at) : p;
    case 'assignee.add': {
      if (!subject) return p;
      const user = userLike(p, m.login);
      const withList = pushTo(p, [...subject, 'assignees'], user);
      // An `assigned` delivery names the new assignee at the top level (GitHub) or on the subject (Gitea).
      const top = 'assignee' in p ? { ...withList, assignee: user } : withList;
      return replaceAt(top, [...subject, 'assignee'], () => user) as Payload;
    }
    case 'assignee.remove':
      return subject ? removeFrom(p, [...subject, 'assignees'], m.at) : p;
    case 'reviewer.add':
      return p.pull_request ? pushTo(p, ['pull_request', 'requested_reviewers'], userLike(p, m.login)) : p;
    case 'reviewer.remove':
      return p.pull_request ? removeFrom(p, ['pull_request', 'requested_reviewers'], m.at) : p;
    case 'text': {
      const strings = pathsWhere(p, (v) => typeof v === 'string');
      return strings.length === 0 ? p : (replaceAt(p, strings[m.at % strings.length]!, () => m.value) as Payload);
    }
    case 'reorder': {
      const lists = pathsWhere(p, (v) => Array.isArray(v) && v.length > 1);
      if (lists.length === 0) return p;
      const rank = keyRank(m.seed);
      return replaceAt(p, lists[m.at % lists.length]!, (old) => [...(old as unknown[])].map((v, i) => ({ v, r: rank([], String(i)) })).sort((a, b) => a.r - b.r).map((x) => x.v)) as Payload;
    }
    case 'midnight':
    case 'redeliver':
      return p;
  }
}

const DAY_US = 86_400_000_000;

/** The delivery row for a payload: body re-encoded as JSON, identity columns recomputed the way the recorder does. */
function withPayload(base: StoredDelivery, payload: Payload, receivedAtUs: number): StoredDelivery {
  const headers = base.headers ? (JSON.parse(base.headers) as Record<string, string>) : {};
  const facts = deliveryFacts(base.source as Source, headers, payload);
  return {
    ...base,
    event: facts.event ?? base.event,
    action: facts.action,
    repository: facts.repository,
    received_at_us: receivedAtUs,
    headers: JSON.stringify({ ...headers, 'content-type': 'application/json' }),
    body: JSON.stringify(payload),
    body_encoding: 'utf8',
    content_type: 'application/json',
  };
}

/** The origin's delivery: a sample as stored, or a schema payload dressed as a GitHub delivery. */
export function originDelivery(origin: Origin, samples: readonly StoredDelivery[]): { delivery: StoredDelivery; payload: Payload; label: string } {
  if (origin.kind === 'sample') {
    const delivery = samples[origin.index % samples.length]!;
    const { payload } = parsePayload(delivery.body_encoding === 'utf8' ? delivery.body : null, delivery.content_type);
    return { delivery, payload: (payload && typeof payload === 'object' ? payload : {}) as Payload, label: `sample ${delivery.delivery_id}` };
  }
  const id = `check-${createHash('sha256').update(JSON.stringify(origin.payload)).digest('hex').slice(0, 24)}`;
  const headers = { 'x-github-event': origin.event, 'x-github-delivery': id, 'content-type': 'application/json', 'user-agent': 'GitHub-Hookshot/hookshadow-check' };
  const delivery: StoredDelivery = {
    delivery_id: id,
    source: 'github',
    event: origin.event,
    action: origin.action,
    // A fixed instant, so a schema case is the same delivery in every run.
    received_at_us: Date.UTC(2026, 0, 15, 12) * 1000,
    headers: JSON.stringify(headers),
    body: JSON.stringify(origin.payload),
    body_encoding: 'utf8',
    content_type: 'application/json',
    repository: null,
    reads: [],
    writes: [],
  };
  return { delivery, payload: origin.payload, label: `schema ${origin.event}${origin.action ? `.${origin.action}` : ''}` };
}

/**
 * Which keys the payload's published schema requires (GitHub's, which Gitea and Forgejo
 * payloads mirror); null when there is none for the event, and then only empty values
 * (null, "", [], {}) count as optional.
 */
function requiredKeys(d: StoredDelivery): ReturnType<typeof githubRequiredKeys> {
  return d.event ? githubRequiredKeys(d.event, d.action) : null;
}

const isEmpty = (v: unknown) => v === null || v === '' || (Array.isArray(v) ? v.length === 0 : typeof v === 'object' && Object.keys(v as object).length === 0);

const jsonPointer = (path: JsonPath) => path.map((k) => `/${String(k).replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');

/** Builds the deliveries a plan describes. */
export function materialize(plan: CasePlan, samples: readonly StoredDelivery[]): CheckCase {
  const { delivery, payload: original, label } = originDelivery(plan.origin, samples);
  const keys = keyPaths(original, plan.keep.length);
  let payload = original;
  const dropped: string[] = [];
  // Parents come before their children, and only object keys drop (no array index shifts):
  // a key under one already dropped is gone, and is not listed again.
  const required = requiredKeys(delivery);
  for (const [i, key] of keys.entries()) {
    const value = getAt(payload, key);
    if (plan.keep[i] !== 0 || value === undefined) continue;
    const without = replaceAt(payload, key, () => undefined) as Payload;
    // Only optional fields drop: a forge never omits a required one, so a flow need not survive that.
    const parent = key.slice(0, -1);
    if (required ? required(without, jsonPointer(parent), String(key[key.length - 1])) : !isEmpty(value)) continue;
    payload = without;
    dropped.push(formatPath(key));
  }
  let receivedAtUs = delivery.received_at_us;
  const redeliveries: number[] = [];
  for (const m of plan.mutations) {
    if (m.op === 'midnight') receivedAtUs = (Math.floor(receivedAtUs / DAY_US) + 1) * DAY_US + m.offsetMs * 1000;
    else if (m.op === 'redeliver') redeliveries.push(m.afterMs * 1000);
    else payload = applyToPayload(payload, m);
  }
  const first = plan.mutations.length === 0 && dropped.length === 0 ? delivery : withPayload(delivery, payload, receivedAtUs);
  let at = first.received_at_us;
  const again = redeliveries.map((after) => ({ ...first, received_at_us: (at += Math.max(1000, after)) }));
  return { deliveries: [first, ...again], origin: label, dropped, mutations: plan.mutations };
}

/** Every key of every object in a payload, in a hash-ranked order; used by the irrelevant-fields transform. */
export const shuffledKeys = (payload: unknown, seed: number): unknown => reorderKeys(payload, keyRank(seed));

/** A one-line description of a case, for reports: origin, drops and mutations. */
export function describeCase(c: CheckCase): string {
  const parts = [c.origin];
  if (c.dropped.length > 0) parts.push(`dropped ${c.dropped.join(', ')}`);
  for (const m of c.mutations) parts.push(describeMutation(m));
  return parts.join('; ');
}

function describeMutation(m: Mutation): string {
  switch (m.op) {
    case 'text':
      return `text #${m.at} = ${JSON.stringify(m.value.length > 60 ? `${m.value.slice(0, 57)}...` : m.value)}${m.value.length > 60 ? ` (${m.value.length} chars)` : ''}`;
    case 'midnight':
      return `received at UTC midnight ${m.offsetMs >= 0 ? '+' : ''}${m.offsetMs} ms`;
    case 'redeliver':
      return `redelivered ${m.afterMs} ms later`;
    default: {
      const { op, ...rest } = m;
      return `${op} ${Object.values(rest).map((v) => JSON.stringify(v)).join(' ')}`;
    }
  }
}

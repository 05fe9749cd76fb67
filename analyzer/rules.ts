import { readFile } from 'node:fs/promises';
import { Ajv } from 'ajv';
import { RE2JS } from 're2js';
import { canonicalJson } from '../core/effects.js';
import { DIVERGENCE_CLASSES, type Divergence } from '../core/divergence-schema.js';
import { HsError } from '../core/errors.js';
import { parseYamlSource, schemaProblems, type Position } from '../core/yaml-source.js';
import type { ToleranceAt } from './compare.js';
import { parsePathPattern, pathMatches, updateAt, type PathPattern, type Segment } from './json-path.js';

/**
 * The rules file of `hookshadow analyze --rules FILE` (specs/divergence.md § Rules):
 * `normalize` rules rewrite args on both sides before they are compared; `expect`
 * rules mark known, documented differences as expected. Each rule counts what it
 * touched, so rules that no longer match anything are reported as stale.
 */

const stringOrList = { anyOf: [{ type: 'string', minLength: 1 }, { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 }] };
const RULES_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    normalize: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['path'],
        properties: {
          id: { type: 'string', minLength: 1 },
          description: { type: 'string' },
          kind: stringOrList,
          target: stringOrList,
          path: { type: 'string', minLength: 1 },
          ignore: { const: true },
          replace: {
            type: 'object',
            additionalProperties: false,
            required: ['pattern', 'with'],
            properties: { pattern: { type: 'string', minLength: 1 }, with: { type: 'string' } },
          },
          trim: { type: 'boolean' },
          case_fold: { type: 'boolean' },
          as_set: { const: true },
          tolerance: { type: 'number', minimum: 0 },
        },
      },
    },
    expect: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'reason', 'owner'],
        properties: {
          id: { type: 'string', minLength: 1 },
          class: { anyOf: [{ enum: DIVERGENCE_CLASSES }, { type: 'array', items: { enum: DIVERGENCE_CLASSES }, minItems: 1 }] },
          kind: stringOrList,
          target: stringOrList,
          path: stringOrList,
          flow: stringOrList,
          node: stringOrList,
          reason: { type: 'string', minLength: 1 },
          owner: { type: 'string', minLength: 1 },
          expires: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}$' },
        },
      },
    },
  },
} as const;
const validateRules = new Ajv({ allErrors: true, strict: false }).compile(RULES_SCHEMA);

type Action =
  | { type: 'ignore' }
  | { type: 'replace'; re: RE2JS; with: string }
  | { type: 'text'; trim: boolean; caseFold: boolean }
  | { type: 'set' }
  | { type: 'tolerance'; value: number };

export interface NormalizeRule {
  id: string;
  kind: Glob | null;
  target: Glob | null;
  path: PathPattern;
  action: Action;
  /** Values this rule was applied to (or, for tolerance, numbers it compared). */
  hits: number;
}

export interface ExpectRule {
  id: string;
  reason: string;
  owner: string;
  expires: string | null;
  /** Past its `expires` day: it suppresses nothing and is reported. */
  expired: boolean;
  match: Partial<Record<'class' | 'kind' | 'target' | 'path' | 'flow' | 'node', Glob>>;
  suppressed: number;
}

export interface Rules {
  file: string | null;
  normalize: NormalizeRule[];
  expect: ExpectRule[];
}

export const NO_RULES = (): Rules => ({ file: null, normalize: [], expect: [] });

/** Shell-style patterns (`*` any run of characters, `?` one), compiled to RE2: no pattern can backtrack. */
export interface Glob {
  test(value: string | null): boolean;
}

export function glob(patterns: string | string[]): Glob {
  const list = Array.isArray(patterns) ? patterns : [patterns];
  const source = list.map((p) => p.split(/([*?])/).map((part) => (part === '*' ? '.*' : part === '?' ? '.' : part ? RE2JS.quote(part) : '')).join('')).join('|');
  const re = RE2JS.compile(`^(?:${source})$`, RE2JS.DOTALL);
  return { test: (value) => value !== null && re.matcher(value).matches() };
}

/** Loads and checks a rules file; every problem is reported at once as `file:line:col: message`. `now` decides expiry. */
export async function loadRules(file: string, now: Date): Promise<Rules> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new HsError('HS_ERR_RULES_INVALID', `Cannot read rules file ${file}: ${(err as Error).message}`, { cause: err });
  }
  return parseRules(text, file, now);
}

export function parseRules(text: string, file: string, now: Date): Rules {
  const problems: (Position & { message: string })[] = [];
  const fail: () => never = () => {
    throw new HsError('HS_ERR_RULES_INVALID', `${problems.length} problem(s) in ${file}:\n${problems.map((p) => `${file}:${p.line}:${p.col}: ${p.message}`).join('\n')}`, {
      details: { problems: problems.map((p) => ({ file, ...p })) },
    });
  };
  const parsed = parseYamlSource(text);
  if (!parsed.ok) {
    problems.push(...parsed.errors);
    fail();
  }
  const raw = (parsed.value ?? {}) as { normalize?: any[]; expect?: any[] };
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    problems.push({ line: 1, col: 1, message: 'a rules file is a mapping with `normalize` and/or `expect` lists' });
    fail();
  }
  if (!validateRules(raw)) {
    problems.push(...schemaProblems(validateRules, parsed.loc, 'rules'));
    fail();
  }
  const loc = parsed.loc;
  const ids = new Set<string>();
  const uniqueId = (id: string, at: (string | number)[]) => {
    if (ids.has(id)) problems.push({ ...loc.at(at), message: `duplicate rule id "${id}"` });
    ids.add(id);
  };

  const normalize: NormalizeRule[] = (raw.normalize ?? []).map((r, i): NormalizeRule => {
    const at = ['normalize', i];
    const id = r.id ?? `normalize[${i}]`;
    uniqueId(id, [...at, 'id']);
    let path: PathPattern = [];
    try {
      path = parsePathPattern(r.path);
      if (path.length === 0) problems.push({ ...loc.at([...at, 'path']), message: 'path "$" would normalize the whole args object; name a field, e.g. "$.body"' });
    } catch (err) {
      problems.push({ ...loc.at([...at, 'path']), message: (err as Error).message });
    }
    const actions = (['ignore', 'replace', 'as_set', 'tolerance'] as const).filter((k) => r[k] !== undefined);
    const text = r.trim === true || r.case_fold === true;
    if (actions.length + (text ? 1 : 0) !== 1) {
      problems.push({ ...loc.at(at), message: 'a normalize rule needs exactly one of: ignore, replace, trim/case_fold, as_set, tolerance' });
    }
    let action: Action = { type: 'ignore' };
    if (r.replace) {
      try {
        action = { type: 'replace', re: RE2JS.compile(r.replace.pattern), with: r.replace.with };
      } catch (err) {
        problems.push({ ...loc.at([...at, 'replace', 'pattern']), message: `RE2 refuses the pattern: ${(err as Error).message}` });
      }
    } else if (r.as_set) action = { type: 'set' };
    else if (r.tolerance !== undefined) action = { type: 'tolerance', value: r.tolerance };
    else if (text) action = { type: 'text', trim: r.trim === true, caseFold: r.case_fold === true };
    return { id, kind: r.kind ? glob(r.kind) : null, target: r.target ? glob(r.target) : null, path, action, hits: 0 };
  });

  const today = now.toISOString().slice(0, 10);
  const expect: ExpectRule[] = (raw.expect ?? []).map((r, i): ExpectRule => {
    const at = ['expect', i];
    uniqueId(r.id, [...at, 'id']);
    if (r.expires !== undefined && Number.isNaN(Date.parse(`${r.expires}T00:00:00Z`))) {
      problems.push({ ...loc.at([...at, 'expires']), message: `expires "${r.expires}" is not a date (YYYY-MM-DD)` });
    }
    const match: ExpectRule['match'] = {};
    for (const key of ['class', 'kind', 'target', 'path', 'flow', 'node'] as const) if (r[key] !== undefined) match[key] = glob(r[key]);
    // A rule is good through its `expires` day (UTC), and expired from the next.
    return { id: r.id, reason: r.reason, owner: r.owner, expires: r.expires ?? null, expired: r.expires !== undefined && r.expires < today, match, suppressed: 0 };
  });

  if (problems.length > 0) fail();
  return { file, normalize, expect };
}

const applies = (rule: NormalizeRule, kind: string, target: string) => (!rule.kind || rule.kind.test(kind)) && (!rule.target || rule.target.test(target));

/** Args with every applicable normalize rule applied (a copy; the input is not changed). */
export function normalizeArgs(rules: Rules, kind: string, target: string, args: Record<string, unknown>): Record<string, unknown> {
  if (rules.normalize.length === 0) return args;
  const out = structuredClone(args);
  for (const rule of rules.normalize) {
    if (rule.action.type === 'tolerance' || !applies(rule, kind, target)) continue;
    const action = rule.action;
    let changed = false;
    updateAt(out, rule.path, (value) => {
      const next = applyAction(action, value);
      // A rule is used when it changes a value, not merely when its path exists.
      if (next === undefined || (next !== value && canonicalJson(next) !== canonicalJson(value))) changed = true;
      return next;
    });
    if (changed) rule.hits++;
  }
  return out;
}

function applyAction(action: Exclude<Action, { type: 'tolerance' }>, value: unknown): unknown {
  switch (action.type) {
    case 'ignore':
      return undefined;
    case 'replace':
      return typeof value === 'string' ? action.re.matcher(value).replaceAll(action.with) : value;
    case 'text': {
      if (typeof value !== 'string') return value;
      const v = action.trim ? value.trim() : value;
      return action.caseFold ? v.toLowerCase() : v;
    }
    case 'set': {
      // Sorting by canonical form makes order irrelevant; duplicates still count, as in a multiset.
      if (!Array.isArray(value)) return value;
      const keyed = value.map((v) => [canonicalJson(v), v] as const);
      return keyed.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v);
    }
  }
}

/** The numeric tolerance the rules allow at a path of this kind and target's args. */
export function toleranceFor(rules: Rules, kind: string, target: string): ToleranceAt {
  const rs = rules.normalize.filter((r) => r.action.type === 'tolerance' && applies(r, kind, target));
  if (rs.length === 0) return () => false;
  return (path: readonly Segment[], a: number, b: number) => {
    const rule = rs.find((r) => pathMatches(r.path, path));
    if (!rule || Math.abs(a - b) > (rule.action as { value: number }).value) return false;
    rule.hits++; // it made two different numbers equal
    return true;
  };
}

/** Runs `fn` without letting it count toward rule usage (noise detection compares the flows with themselves). */
export async function withoutCounting<T>(rules: Rules, fn: () => Promise<T>): Promise<T> {
  const saved = [...rules.normalize.map((r) => r.hits), ...rules.expect.map((r) => r.suppressed)];
  try {
    return await fn();
  } finally {
    rules.normalize.forEach((r, i) => (r.hits = saved[i]!));
    rules.expect.forEach((r, i) => (r.suppressed = saved[rules.normalize.length + i]!));
  }
}

/** The first unexpired expect rule matching the divergence (`expect:<id>`), or null. Counts the suppression. */
export function expectedBy(rules: Rules, d: Divergence): string | null {
  if (d.class === 'match') return null;
  for (const rule of rules.expect) {
    if (rule.expired) continue;
    const m = rule.match;
    if (m.class && !m.class.test(d.class)) continue;
    if (m.kind && !m.kind.test(d.kind)) continue;
    if (m.target && !m.target.test(d.target)) continue;
    if (m.path && !m.path.test(d.path)) continue;
    if (m.flow && !m.flow.test(d.flow)) continue;
    if (m.node && !m.node.test(d.node_id)) continue;
    rule.suppressed++;
    return `expect:${rule.id}`;
  }
  return null;
}

/** Rules past their expiry, and rules that matched nothing in this analysis: both are reported, and fail CI under --fail-on. */
export function staleRules(rules: Rules): { expired: string[]; unused: string[] } {
  return {
    expired: rules.expect.filter((r) => r.expired).map((r) => r.id),
    unused: [...rules.normalize.filter((r) => r.hits === 0).map((r) => r.id), ...rules.expect.filter((r) => !r.expired && r.suppressed === 0).map((r) => r.id)],
  };
}

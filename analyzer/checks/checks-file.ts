import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { Ajv } from 'ajv';
import { HsError } from '../../core/errors.js';
import { closest, parseYamlSource, schemaProblems, type Position } from '../../core/yaml-source.js';
import { glob, type Glob } from '../rules.js';
import type { Invariant } from './invariants.js';
import { PROPERTY_NAMES, type PropertyName } from './properties.js';

/**
 * The checks file (specs/checks.md § The checks file): which properties apply to which
 * flows, the SQL invariants, and the legacy oracle. Without one, every property but
 * legacy-parity applies to every flow.
 */

export interface PropertyScope {
  enabled: boolean;
  /** Flow-name globs; null: every flow. */
  flows: Glob | null;
}

export interface ChecksConfig {
  file: string | null;
  properties: Record<PropertyName, PropertyScope>;
  invariants: (Invariant & { flows: Glob | null })[];
  legacy: { module: string; settleMs: number; rules: string | null; routes: string[] } | null;
}

const flowsList = { anyOf: [{ type: 'string', minLength: 1 }, { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 }] };

const SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    properties: {
      type: 'object',
      additionalProperties: false,
      properties: Object.fromEntries(
        PROPERTY_NAMES.map((n) => [n, { anyOf: [{ type: 'boolean' }, { type: 'object', additionalProperties: false, properties: { flows: flowsList } }] }]),
      ),
    },
    invariants: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'meaning', 'sql'],
        properties: { name: { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]*$' }, meaning: { type: 'string', minLength: 1 }, sql: { type: 'string', minLength: 1 }, flows: flowsList },
      },
    },
    legacy: {
      type: 'object',
      additionalProperties: false,
      required: ['module'],
      properties: {
        module: { type: 'string', minLength: 1 },
        settle_ms: { type: 'integer', minimum: 0, maximum: 60_000 },
        rules: { type: 'string', minLength: 1 },
        routes: { type: 'array', items: { type: 'string', minLength: 1 } },
      },
    },
  },
} as const;

const validate = new Ajv({ allErrors: true, strict: false }).compile(SCHEMA);

export function defaultChecks(): ChecksConfig {
  const properties = Object.fromEntries(PROPERTY_NAMES.map((n) => [n, { enabled: n !== 'legacy-parity', flows: null }])) as Record<PropertyName, PropertyScope>;
  return { file: null, properties, invariants: [], legacy: null };
}

export async function loadChecks(file: string): Promise<ChecksConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new HsError('HS_ERR_CHECKS_INVALID', `Cannot read the checks file ${file}: ${(err as Error).message}`, { cause: err });
  }
  return parseChecks(text, file);
}

/** Parses a checks file; every problem is reported at once as `file:line:col: message`. Relative paths resolve from the file's directory. */
export function parseChecks(text: string, file: string): ChecksConfig {
  const problems: (Position & { message: string })[] = [];
  const fail = (): never => {
    throw new HsError('HS_ERR_CHECKS_INVALID', `${problems.length} problem(s) in ${file}:\n${problems.map((p) => `${file}:${p.line}:${p.col}: ${p.message}`).join('\n')}`, {
      details: { problems: problems.map((p) => ({ file, ...p })) },
    });
  };
  const parsed = parseYamlSource(text);
  if (!parsed.ok) {
    problems.push(...parsed.errors);
    return fail();
  }
  const raw = (parsed.value ?? {}) as Record<string, any>;
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    problems.push({ line: 1, col: 1, message: 'a checks file is a mapping with `properties`, `invariants` and/or `legacy`' });
    return fail();
  }
  if (!validate(raw)) {
    for (const p of schemaProblems(validate, parsed.loc, 'checks')) {
      // An unknown property name is the likeliest typo: suggest the closest.
      const name = /unknown key "([^"]+)"/.exec(p.message)?.[1];
      const hint = name ? closest(name, [...PROPERTY_NAMES]) : null;
      problems.push({ ...p, message: hint ? `${p.message} (did you mean "${hint}"?)` : p.message });
    }
    return fail();
  }
  const loc = parsed.loc;
  const config = defaultChecks();
  config.file = file;
  const base = dirname(file);
  for (const [name, value] of Object.entries((raw.properties ?? {}) as Record<string, boolean | { flows?: string | string[] }>)) {
    config.properties[name as PropertyName] = typeof value === 'boolean' ? { enabled: value, flows: null } : { enabled: true, flows: value.flows ? glob(value.flows) : null };
  }
  const names = new Set<string>();
  config.invariants = ((raw.invariants ?? []) as { name: string; meaning: string; sql: string; flows?: string | string[] }[]).map((inv, i) => {
    const at = loc.at(['invariants', i, 'name']);
    if (names.has(inv.name)) problems.push({ ...at, message: `duplicate invariant name "${inv.name}"` });
    names.add(inv.name);
    return { name: inv.name, meaning: inv.meaning, sql: inv.sql.trim().replace(/;\s*$/, ''), at: `${file}:${loc.at(['invariants', i, 'sql']).line}:${loc.at(['invariants', i, 'sql']).col}`, flows: inv.flows ? glob(inv.flows) : null };
  });
  if (raw.legacy) {
    const l = raw.legacy as { module: string; settle_ms?: number; rules?: string; routes?: string[] };
    config.legacy = { module: resolve(base, l.module), settleMs: l.settle_ms ?? 50, rules: l.rules ? resolve(base, l.rules) : null, routes: (l.routes ?? []).map((r) => resolve(base, r)) };
    // Naming an oracle turns legacy-parity on, unless the file turns it off.
    if (raw.properties?.['legacy-parity'] === undefined) config.properties['legacy-parity'].enabled = true;
  } else if (config.properties['legacy-parity'].enabled) {
    problems.push({ ...loc.at(['properties', 'legacy-parity']), message: 'legacy-parity needs a legacy oracle: add `legacy: { module: ... }`' });
  }
  if (problems.length > 0) fail();
  return config;
}

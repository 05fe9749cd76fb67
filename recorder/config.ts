import { readFile } from 'node:fs/promises';
import { Ajv } from 'ajv';
import { parseDocument } from 'yaml';
import { SOURCES, type Source } from '../core/capture-schema.js';
import { HsError } from '../core/errors.js';
import { defaultInstanceId } from '../core/store/writer.js';

/** The recorder's settings, as in the YAML config file (snake_case keys, the same names everywhere). */
export interface RecorderConfig {
  store: string;
  host: string;
  port: number;
  instance: string;
  legacy: { url: string | null; timeout_ms: number };
  upstreams: Record<string, string>;
  /** Several secrets per source allow rotation: a signature valid under any of them is valid. */
  secrets: Partial<Record<Source, string[]>>;
  signature_policy: 'reject' | 'flag';
  body_limit_bytes: number;
  wal: { max_segment_bytes: number; max_segment_age_ms: number };
  attribution: { window_ms: number };
  egress: { timeout_ms: number; max_recorded_body_bytes: number };
  redaction: {
    mode: 'mask' | 'hmac';
    key: string | null;
    headers: string[];
    query_params: string[];
    body_paths: string[];
  };
  log_level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}

export const DEFAULT_CONFIG: RecorderConfig = {
  store: './.hookshadow/store',
  host: '127.0.0.1',
  port: 8080,
  instance: defaultInstanceId(),
  legacy: { url: null, timeout_ms: 30_000 }, // 30 s, GitHub's own delivery timeout is 10 s
  upstreams: {},
  secrets: {},
  signature_policy: 'reject',
  body_limit_bytes: 25 * 1024 * 1024, // 25 MiB, GitHub's maximum payload
  wal: {
    max_segment_bytes: 32 * 1024 * 1024, // 32 MiB: each roll's memory peak grows with it
    max_segment_age_ms: 60_000, // 1 min: how stale Parquet may be behind the WAL
  },
  attribution: { window_ms: 30_000 }, // 30 s after a delivery, its repo/number attributes calls
  egress: {
    timeout_ms: 30_000,
    max_recorded_body_bytes: 25 * 1024 * 1024, // 25 MiB; a larger response is passed on whole but recorded truncated
  },
  redaction: { mode: 'mask', key: null, headers: [], query_params: [], body_paths: [] },
  log_level: 'info',
};

const stringList = { type: 'array', items: { type: 'string' } } as const;
const secretList = { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 } as const;
const positiveInt = { type: 'integer', minimum: 1 } as const;

const CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    store: { type: 'string', minLength: 1 },
    host: { type: 'string', minLength: 1 },
    port: { type: 'integer', minimum: 0, maximum: 65535 },
    instance: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$' },
    legacy: {
      type: 'object',
      additionalProperties: false,
      properties: { url: { type: ['string', 'null'], pattern: '^https?://' }, timeout_ms: positiveInt },
    },
    upstreams: {
      type: 'object',
      propertyNames: { pattern: '^[A-Za-z0-9][A-Za-z0-9_-]*$' },
      additionalProperties: { type: 'string', pattern: '^https?://' },
    },
    secrets: {
      type: 'object',
      propertyNames: { enum: [...SOURCES] },
      // An empty secret would let anyone sign (HMAC with an empty key): refused.
      additionalProperties: { anyOf: [{ type: 'string', minLength: 1 }, secretList] },
    },
    signature_policy: { enum: ['reject', 'flag'] },
    body_limit_bytes: positiveInt,
    wal: {
      type: 'object',
      additionalProperties: false,
      properties: { max_segment_bytes: { type: 'integer', minimum: 4096 }, max_segment_age_ms: { type: 'integer', minimum: 10 } },
    },
    attribution: { type: 'object', additionalProperties: false, properties: { window_ms: { type: 'integer', minimum: 0 } } },
    egress: {
      type: 'object',
      additionalProperties: false,
      properties: { timeout_ms: positiveInt, max_recorded_body_bytes: { type: 'integer', minimum: 0 } },
    },
    redaction: {
      type: 'object',
      additionalProperties: false,
      properties: {
        mode: { enum: ['mask', 'hmac'] },
        key: { type: ['string', 'null'] },
        headers: stringList,
        query_params: stringList,
        body_paths: stringList,
      },
    },
    log_level: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] },
  },
} as const;

const validate = new Ajv({ allErrors: true }).compile(CONFIG_SCHEMA);

/** A partial config, as found in a file, the environment or flags; merged over the defaults. */
export type ConfigLayer = { [K in keyof RecorderConfig]?: unknown };

/**
 * Builds the effective config: defaults, then the YAML file, then environment
 * variables, then flags. Validated once, then frozen.
 */
export function resolveConfig(layers: ConfigLayer[], where = 'configuration'): Readonly<RecorderConfig> {
  let merged: Record<string, unknown> = structuredClone(DEFAULT_CONFIG) as unknown as Record<string, unknown>;
  for (const layer of layers) merged = deepMerge(merged, layer as Record<string, unknown>);
  if (!validate(merged)) {
    const problems = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}${e.params && 'allowedValues' in e.params ? ` (${(e.params.allowedValues as unknown[]).join(', ')})` : ''}`);
    throw new HsError('HS_ERR_CONFIG_INVALID', `Invalid ${where}:\n  ${problems.join('\n  ')}`, { details: { problems } });
  }
  const config = merged as unknown as RecorderConfig;
  for (const [source, value] of Object.entries(config.secrets)) {
    (config.secrets as Record<string, string[]>)[source] = typeof value === 'string' ? [value] : (value as string[]);
  }
  if (config.redaction.mode === 'hmac' && !config.redaction.key) {
    throw new HsError('HS_ERR_CONFIG_INVALID', 'redaction.mode is "hmac" but no redaction.key is set (or HOOKSHADOW_REDACTION_KEY).');
  }
  return deepFreeze(config);
}

/** Reads a YAML config file; syntax errors name file:line:col. */
export async function loadConfigFile(path: string): Promise<ConfigLayer> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new HsError('HS_ERR_CONFIG_INVALID', `Cannot read config file ${path}: ${(err as Error).message}`, { cause: err });
  }
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    const lines = doc.errors.map((e) => `${path}:${e.linePos?.[0]?.line ?? 0}:${e.linePos?.[0]?.col ?? 0}: ${e.message.split('\n')[0]}`);
    throw new HsError('HS_ERR_CONFIG_INVALID', `Invalid YAML in config file:\n  ${lines.join('\n  ')}`);
  }
  const value = doc.toJS() as unknown;
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new HsError('HS_ERR_CONFIG_INVALID', `${path}: the config file must be a YAML mapping of settings.`);
  }
  return value as ConfigLayer;
}

/** Secrets and keys from the environment, so they need not sit in a file or a process listing. */
export function configFromEnv(env: NodeJS.ProcessEnv): ConfigLayer {
  const secrets: Record<string, string[]> = {};
  for (const source of SOURCES) {
    const value = env[`HOOKSHADOW_SECRET_${source.toUpperCase()}`];
    // A comma-separated list supports rotation (old and new secret at once).
    const list = value?.split(',').map((s) => s.trim()).filter(Boolean) ?? [];
    if (list.length > 0) secrets[source] = list;
  }
  const layer: ConfigLayer = {};
  if (Object.keys(secrets).length > 0) layer.secrets = secrets;
  if (env.HOOKSHADOW_REDACTION_KEY) layer.redaction = { key: env.HOOKSHADOW_REDACTION_KEY };
  return layer;
}

/** Parses repeated `NAME=VALUE` flags, keeping every value of a repeated name. */
export function parsePairs(pairs: string[], flag: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0 || eq === pair.length - 1) throw new HsError('HS_ERR_USAGE', `${flag} expects NAME=VALUE with both parts non-empty, got ${JSON.stringify(pair.replace(/=.*/, '=…'))}.`);
    (out[pair.slice(0, eq)] ??= []).push(pair.slice(eq + 1));
  }
  return out;
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    const b = out[k];
    const bothObjects = isPlainObject(b) && isPlainObject(v);
    // Secrets and upstreams from a later layer add to, rather than replace, the earlier ones.
    out[k] = bothObjects ? deepMerge(b, v) : v;
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

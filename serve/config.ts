import { randomBytes } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { Ajv } from 'ajv';
import { HsError } from '../core/errors.js';
import { PACKAGE_ROOT } from '../core/version.js';
import { configFromEnv, loadConfigFile, resolveConfig, type ConfigLayer, type RecorderConfig } from '../recorder/config.js';
import { MODES, type Mode } from '../replayer/flows/model.js';
import { DEFAULT_GATE, type GateConfig } from './gate.js';

/**
 * `hookshadow serve`'s configuration (specs/modes.md § Configuration): the recorder's
 * keys as for `record`, plus `flows`, `cutover`, `fallback` and `serve`. Without a
 * file, serve runs the demo: the fixture flows in dry-run in front of the demo legacy bot.
 */

export interface ServeSettings {
  flows: { dir: string; mode: Mode; modes: Record<string, Mode>; ops: string[] };
  cutover: GateConfig;
  /** Automatic fallback of a live flow to dry-run; null: off. */
  fallback: { max_divergence_rate: number; min_runs: number; window_runs: number } | null;
  serve: {
    settle_ms: number;
    queue_size: number;
    segment_seconds: number;
    admin_token: string;
    rules: string | null;
    routes: string[];
  };
}

export interface ServeConfig {
  recorder: Readonly<RecorderConfig>;
  serve: ServeSettings;
  /** No legacy handler configured: serve starts the demo bot and forge stub (the built-in defaults). */
  demo: boolean;
  /** The admin token was generated for this run (no config or environment gave one). */
  generatedToken: boolean;
}

const SERVE_KEYS = ['flows', 'cutover', 'fallback', 'serve'] as const;
const mode = { enum: [...MODES] };

const SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    flows: {
      type: 'object',
      additionalProperties: false,
      properties: { dir: { type: 'string', minLength: 1 }, mode, modes: { type: 'object', additionalProperties: mode }, ops: { type: 'array', items: { type: 'string' } } },
    },
    cutover: {
      type: 'object',
      additionalProperties: false,
      properties: { min_days: { type: 'number', minimum: 0 }, min_deliveries: { type: 'integer', minimum: 0 }, max_divergence_rate: { type: 'number', minimum: 0, maximum: 1 } },
    },
    fallback: {
      type: ['object', 'null'],
      additionalProperties: false,
      required: ['max_divergence_rate'],
      properties: { max_divergence_rate: { type: 'number', minimum: 0, maximum: 1 }, min_runs: { type: 'integer', minimum: 1 }, window_runs: { type: 'integer', minimum: 1 } },
    },
    serve: {
      type: 'object',
      additionalProperties: false,
      properties: {
        settle_ms: { type: 'integer', minimum: 0 },
        queue_size: { type: 'integer', minimum: 1 },
        segment_seconds: { type: 'integer', minimum: 1 },
        admin_token: { type: 'string', minLength: 16 },
        rules: { type: 'string' },
        routes: { type: 'array', items: { type: 'string' } },
      },
    },
  },
} as const;

const validate = new Ajv({ allErrors: true }).compile(SCHEMA);

export const DEMO_FLOWS = resolve(PACKAGE_ROOT, 'fixtures', 'flows');

/**
 * Merges, in order: defaults, the config file, the environment (`HOOKSHADOW_ADMIN_TOKEN`, secrets),
 * then flags. Relative paths in the file resolve from its directory.
 */
export async function resolveServeConfig(opts: {
  file?: string;
  /** A config given as an object instead of a file (tests, embedding); relative paths resolve from the working directory. */
  inline?: Record<string, unknown>;
  env: NodeJS.ProcessEnv;
  flags?: ConfigLayer & { serve?: Partial<ServeSettings['serve']>; flows?: Partial<ServeSettings['flows']> };
}): Promise<ServeConfig> {
  const fileLayer: Record<string, any> = opts.file ? ((await loadConfigFile(opts.file)) as Record<string, any>) : structuredClone(opts.inline ?? {});
  const base = opts.file ? dirname(resolve(opts.file)) : process.cwd();
  const serveLayer: Record<string, any> = {};
  const recorderLayer: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fileLayer)) ((SERVE_KEYS as readonly string[]).includes(k) ? serveLayer : recorderLayer)[k] = v;
  if (!validate(serveLayer)) {
    const problems = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`);
    throw new HsError('HS_ERR_CONFIG_INVALID', `Invalid serve configuration${opts.file ? ` in ${opts.file}` : ''}:\n  ${problems.join('\n  ')}`, { details: { problems } });
  }
  const { serve: serveFlags, flows: flowFlags, ...recorderFlags } = opts.flags ?? {};
  const recorder = resolveConfig([recorderLayer as ConfigLayer, configFromEnv(opts.env), recorderFlags as ConfigLayer], opts.file ? `config ${opts.file}` : 'configuration');
  const demo = !recorder.legacy.url;
  const rel = (p: string) => resolve(base, p);
  const envToken = opts.env.HOOKSHADOW_ADMIN_TOKEN;
  const token = serveFlags?.admin_token ?? envToken ?? serveLayer.serve?.admin_token;
  const flows = { ...serveLayer.flows, ...flowFlags };
  const serve: ServeSettings = {
    flows: {
      dir: flows.dir ? rel(flows.dir) : DEMO_FLOWS,
      // No config at all is the demo, in dry-run so a newcomer sees it work; a configured serve starts off.
      mode: flows.mode ?? (demo && !flows.dir ? 'dry-run' : 'off'),
      modes: flows.modes ?? {},
      ops: (flows.ops ?? []).map(rel),
    },
    cutover: { ...DEFAULT_GATE, ...serveLayer.cutover },
    fallback: serveLayer.fallback ? { min_runs: 20, window_runs: 100, ...serveLayer.fallback } : null,
    serve: {
      settle_ms: 2_000,
      queue_size: 10_000,
      segment_seconds: 300,
      rules: null,
      routes: [],
      ...serveLayer.serve,
      ...Object.fromEntries(Object.entries(serveFlags ?? {}).filter(([, v]) => v !== undefined)),
      admin_token: token ?? randomBytes(24).toString('base64url'),
    },
  };
  if (serveLayer.serve?.rules) serve.serve.rules = rel(serveLayer.serve.rules);
  if (serveLayer.serve?.routes) serve.serve.routes = (serveLayer.serve.routes as string[]).map(rel);
  if (envToken !== undefined && envToken.length < 16) throw new HsError('HS_ERR_CONFIG_INVALID', 'HOOKSHADOW_ADMIN_TOKEN must be at least 16 characters.');
  return { recorder, serve, demo, generatedToken: token === undefined };
}

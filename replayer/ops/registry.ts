import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { HsError } from '../../core/errors.js';
import { agentOps } from './agent.js';
import { forgeOps } from './forge.js';
import { httpOps } from './http.js';
import { pureOps } from './pure.js';
import type { ArgsSchema, OpDefinition } from './types.js';

/** An op with its argument validators compiled once. */
export interface RegisteredOp {
  def: OpDefinition;
  /** Validates resolved arguments at run time. */
  validate: ValidateFunction;
  /** Validates the arguments as written, where any `${{ ... }}` string may stand for any value. */
  validateWritten: ValidateFunction;
}

export type OpRegistry = ReadonlyMap<string, RegisteredOp>;

export const BUILTIN_OPS: readonly OpDefinition[] = [...forgeOps, ...agentOps, ...httpOps, ...pureOps];

const TEMPLATE = { type: 'string', pattern: '\\$\\{\\{' };

/** The same schema, but every value below the root may also be a template string (resolved later). */
function templateTolerant(schema: ArgsSchema, root = true): ArgsSchema {
  const out: ArgsSchema = { ...schema };
  if (schema.properties) {
    out.properties = Object.fromEntries(Object.entries(schema.properties as Record<string, ArgsSchema>).map(([k, v]) => [k, templateTolerant(v, false)]));
  }
  if (schema.items && typeof schema.items === 'object') out.items = templateTolerant(schema.items as ArgsSchema, false);
  return root ? out : { anyOf: [out, TEMPLATE] };
}

export function createOpRegistry(ops: readonly OpDefinition[] = BUILTIN_OPS): OpRegistry {
  const ajv = new Ajv({ allErrors: true, strict: false });
  const registry = new Map<string, RegisteredOp>();
  for (const def of ops) {
    if (registry.has(def.name)) throw new HsError('HS_ERR_CONFIG_INVALID', `Two ops are named "${def.name}"; op names must be unique.`);
    registry.set(def.name, { def, validate: ajv.compile(def.args), validateWritten: ajv.compile(templateTolerant(def.args)) });
  }
  return registry;
}

/** Ajv's errors as one readable line: `number must be integer; unknown argument "nmber"`. */
export function describeArgErrors(errors: ErrorObject[] | null | undefined): string {
  const seen = new Set<string>();
  for (const e of errors ?? []) {
    if (e.keyword === 'anyOf') continue;
    const where = e.instancePath ? e.instancePath.slice(1).replaceAll('/', '.') : '';
    const line =
      e.keyword === 'additionalProperties'
        ? `unknown argument "${where ? `${where}.` : ''}${(e.params as { additionalProperty: string }).additionalProperty}"`
        : e.keyword === 'required'
          ? `missing argument "${(e.params as { missingProperty: string }).missingProperty}"`
          : e.keyword === 'pattern' && (e.params as { pattern: string }).pattern === TEMPLATE.pattern
            ? ''
            : `${where || 'arguments'} ${e.message}`;
    if (line) seen.add(line);
  }
  return [...seen].join('; ');
}

/**
 * Loads users' ops: each module (JavaScript, or TypeScript through tsx) default-exports
 * an op definition or an array of them. Module paths are resolved from `baseDir`.
 */
export async function loadUserOps(modules: readonly string[], baseDir: string): Promise<OpDefinition[]> {
  const out: OpDefinition[] = [];
  for (const spec of modules) {
    const file = isAbsolute(spec) ? spec : resolve(baseDir, spec);
    let mod: { default?: unknown };
    try {
      if (/\.[cm]?ts$/.test(file)) {
        const { tsImport } = await import('tsx/esm/api');
        mod = (await tsImport(pathToFileURL(file).href, import.meta.url)) as { default?: unknown };
      } else {
        mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
      }
    } catch (err) {
      throw new HsError('HS_ERR_CONFIG_INVALID', `Could not load ops module ${file}: ${(err as Error).message}`, { cause: err });
    }
    // A .ts file outside an ESM package compiles as CommonJS: its default export arrives wrapped once more.
    let exported = mod.default;
    if (exported && !Array.isArray(exported) && typeof exported === 'object' && 'default' in exported && !('name' in exported)) exported = (exported as { default: unknown }).default;
    const defs = Array.isArray(exported) ? exported : [exported];
    for (const def of defs) {
      const d = def as Partial<OpDefinition> | undefined;
      if (!d || typeof d.name !== 'string' || !d.args || !d.effectClass || d.capability === undefined) {
        throw new HsError('HS_ERR_CONFIG_INVALID', `${file} must default-export an op definition (or an array of them) with name, effectClass, capability and args.`);
      }
      out.push(d as OpDefinition);
    }
  }
  return out;
}

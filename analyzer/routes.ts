/**
 * Route maps: how the analyzer turns the legacy handler's captured HTTP calls into
 * effects (core/effects.ts), so they compare with the flows' intents by kind, target
 * and args. specs/routes.md describes the YAML format; the built-in maps are
 * analyzer/routes/*.yaml.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Pair, type YAMLMap } from 'yaml';
import { httpEffect, type Effect } from '../core/effects.js';
import { HsError } from '../core/errors.js';
import { PACKAGE_ROOT } from '../core/version.js';

/** One HTTP call the legacy handler made: `path` is relative to the upstream's base URL and may hold a query. */
export interface LegacyCall {
  upstream: string;
  method: string;
  path: string;
  body: unknown;
}

/** An effect and the route that produced it (`POST /repos/{owner}/{repo}/issues`), or null when no route matched. */
export interface MappedEffect extends Effect {
  route: string | null;
}

/** Loaded, compiled route maps. */
export interface RouteMaps {
  /** Every file loaded, the built-in ones first. */
  readonly files: string[];
  /** The call as an effect: by the first route that matches, else `httpEffect` with `route: null`. */
  map(call: LegacyCall): MappedEffect;
}

/** The shipped maps. They are read from the package's source tree: tsc does not copy YAML into dist/. */
export const BUILTIN_ROUTE_FILES: string[] = ['github', 'gitea', 'agents'].map((name) => join(PACKAGE_ROOT, 'analyzer', 'routes', `${name}.yaml`));

/** One problem in a route map file. */
export interface RouteProblem {
  file: string;
  line: number;
  col: number;
  message: string;
}

/** `file:line:col: message`. */
export function formatRouteProblem(p: RouteProblem): string {
  return `${p.file}:${p.line}:${p.col}: ${p.message}`;
}

/** One route map file's text; `builtin` files rank after users' files. */
export interface RouteMapSource {
  file: string;
  text: string;
  builtin: boolean;
}

/** Loads the built-in maps, then `userFiles`; throws HS_ERR_ROUTES_INVALID listing every problem in every file. */
export async function loadRouteMaps(userFiles: string[] = []): Promise<RouteMaps> {
  const problems: RouteProblem[] = [];
  const sources: RouteMapSource[] = [];
  for (const [file, builtin] of [...BUILTIN_ROUTE_FILES.map((f) => [f, true] as const), ...userFiles.map((f) => [f, false] as const)]) {
    try {
      sources.push({ file, text: await readFile(file, 'utf8'), builtin });
    } catch (err) {
      problems.push({ file, line: 1, col: 1, message: `cannot read the route map: ${(err as Error).message}` });
    }
  }
  return compileRouteMaps(sources, problems);
}

/**
 * Compiles route map files (no I/O). Routes of users' files are tried before the
 * built-in ones, each group in file order, so a user's route overrides a built-in one.
 */
export function compileRouteMaps(sources: RouteMapSource[], problems: RouteProblem[] = []): RouteMaps {
  const maps = sources.map((s) => compileFile(s, problems)).filter((m): m is MapFile => m !== null);

  // Files with the same api share their routes and their upstreams.
  const upstreamsOf = new Map<string, Set<string>>();
  const routeCount = new Map<string, number>();
  for (const m of maps) {
    const set = upstreamsOf.get(m.api) ?? new Set<string>();
    for (const u of m.upstreams) set.add(u);
    upstreamsOf.set(m.api, set);
    routeCount.set(m.api, (routeCount.get(m.api) ?? 0) + m.routes.length);
  }
  // Checked only in otherwise valid maps: a file dropped for its problems would make its api look empty.
  const builtinApis = [...new Set(maps.filter((m) => m.builtin).map((m) => m.api))];
  for (const m of problems.length === 0 ? maps : []) {
    if (!routeCount.get(m.api)) {
      problems.push({ ...m.apiAt, message: `no route map has routes for api "${m.api}"; bind upstreams to a built-in api (${builtinApis.join(', ')}) or add routes` });
    }
  }
  if (problems.length > 0) {
    throw new HsError('HS_ERR_ROUTES_INVALID', `${problems.length} problem(s) in route maps; fix them and run again:\n${problems.map(formatRouteProblem).join('\n')}`, {
      details: { problems },
    });
  }

  // upstream → method → segment count → candidate routes, in the order they are tried.
  const index = new Map<string, Map<string, CompiledRoute[][]>>();
  for (const m of [...maps.filter((f) => !f.builtin), ...maps.filter((f) => f.builtin)]) {
    for (const upstream of upstreamsOf.get(m.api)!) {
      const byMethod = index.get(upstream) ?? new Map<string, CompiledRoute[][]>();
      index.set(upstream, byMethod);
      for (const r of m.routes) {
        const bySize = byMethod.get(r.method) ?? [];
        byMethod.set(r.method, bySize);
        (bySize[r.segments.length] ??= []).push(r);
      }
    }
  }

  return {
    files: sources.map((s) => s.file),
    map(call: LegacyCall): MappedEffect {
      const byMethod = index.get(call.upstream);
      if (byMethod) {
        const candidates = byMethod.get(call.method.toUpperCase());
        if (candidates) {
          const segs = splitPath(call.path);
          for (const r of candidates[segs.length] ?? []) {
            const effect = apply(r, segs, call.body);
            if (effect) return effect;
          }
        }
      }
      return { ...httpEffect(call.upstream, call.method, call.path, call.body), route: null };
    },
  };
}

// ---------------------------------------------------------------------------
// Matching

/** Reads one value of a call: a decoded path parameter or a part of the JSON body; undefined when absent. */
type Source = (params: readonly string[], body: unknown) => unknown;

/** One effect arg; when its source is absent the route does not match (`required`), the arg is left out, or it takes a default. */
interface CompiledArg {
  name: string;
  source: Source;
  absent: 'required' | 'omit' | 'default';
  fallback?: unknown;
}

interface CompiledRoute {
  /** `METHOD /path/{param}`: the `route` of the effects it produces. */
  route: string;
  method: string;
  /** One entry per path segment: the literal it must equal, or null for a parameter. */
  segments: (string | null)[];
  /** The indexes of the parameter segments, in the order of `params`. */
  paramAt: number[];
  when: { source: Source; equals: unknown }[];
  kind: string;
  /** Literal text and sources, concatenated. */
  target: (string | Source)[];
  /** The effect's args one by one, or one source whose value (a JSON object) is the args. */
  args: CompiledArg[] | Source;
}

/** Path segments without the query string; `/` and `` have none. */
function splitPath(path: string): string[] {
  const q = path.indexOf('?');
  const p = q < 0 ? path : path.slice(0, q);
  const start = p.startsWith('/') ? 1 : 0;
  return p.length <= start ? [] : p.slice(start).split('/');
}

/** A percent-decoded path segment, or null when its encoding is malformed. */
function decodeSegment(s: string): string | null {
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return null;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The effect when `r` matches the call, else null. `segs` already has the route's length. */
function apply(r: CompiledRoute, segs: string[], body: unknown): MappedEffect | null {
  for (let i = 0; i < r.segments.length; i++) {
    const literal = r.segments[i];
    if (literal !== null && literal !== segs[i]) return null;
  }
  const params: string[] = [];
  for (const i of r.paramAt) {
    const value = decodeSegment(segs[i]!);
    if (value === null) return null;
    params.push(value);
  }
  for (const c of r.when) if (c.source(params, body) !== c.equals) return null;

  let target = '';
  for (const part of r.target) {
    if (typeof part === 'string') target += part;
    else {
      const v = part(params, body);
      if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') return null;
      target += String(v);
    }
  }

  let args: Record<string, unknown>;
  if (typeof r.args === 'function') {
    const v = r.args(params, body);
    if (!isObject(v)) return null;
    args = v;
  } else {
    args = {};
    for (const a of r.args) {
      const v = a.source(params, body);
      if (v !== undefined) args[a.name] = v;
      else if (a.absent === 'required') return null;
      else if (a.absent === 'default') args[a.name] = a.fallback;
    }
  }
  return { kind: r.kind, target, args, route: r.route };
}

// ---------------------------------------------------------------------------
// Loading

/** One compiled file. */
interface MapFile {
  api: string;
  upstreams: string[];
  routes: CompiledRoute[];
  builtin: boolean;
  /** Where `api` is written, for problems about the file as a whole. */
  apiAt: { file: string; line: number; col: number };
}

const METHODS = ['GET', 'HEAD', 'OPTIONS', 'POST', 'PUT', 'PATCH', 'DELETE'];
/** Api and upstream names: as the recorder's `--upstream NAME=URL`. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;
const PARAM = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** A body field name in a source (`body.a.b`): no dots, spaces, braces or `?`. */
const FIELD = /^[^.\s{}?]+$/;
const SOURCES_HELP = 'use body, body.<field>[.<field>…] or path.<param>';

/**
 * Compiles one file, walking the YAML nodes so every problem has a position; returns
 * null when the file has problems (each pushed to `problems`).
 */
function compileFile(src: RouteMapSource, problems: RouteProblem[]): MapFile | null {
  const before = problems.length;
  const lines = new LineCounter();
  const doc = parseDocument(src.text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const at = (node: unknown) => {
    const pos = lines.linePos((node as { range?: [number] } | null)?.range?.[0] ?? 0);
    return { file: src.file, line: pos.line, col: pos.col };
  };
  const report = (node: unknown, message: string) => problems.push({ ...at(node), message });

  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const pos = e.linePos?.[0] ?? lines.linePos(e.pos[0]);
      problems.push({ file: src.file, line: pos.line, col: pos.col, message: e.message.split('\n')[0]! });
    }
    return null;
  }
  const root = deref(doc, doc.contents);
  if (!isMap(root)) {
    report(root, 'a route map must be a mapping with api, upstreams and routes');
    return null;
  }
  const top = fields(doc, root, ['api', 'upstreams', 'routes'], 'a route map', report);

  const apiNode = top.get('api');
  const api = name(apiNode, 'api', report);
  if (!apiNode) report(root, 'missing "api" (the name of the API the routes describe, e.g. github)');

  let upstreams = api === null ? [] : [api];
  const upNode = top.get('upstreams');
  if (upNode !== undefined) {
    if (!isSeq(upNode) || upNode.items.length === 0) report(upNode, 'upstreams must be a non-empty list of upstream names');
    else upstreams = upNode.items.map((item) => name(deref(doc, item), 'an upstream', report) ?? '');
  }

  const routes: CompiledRoute[] = [];
  const routesNode = top.get('routes');
  if (routesNode !== undefined) {
    if (!isSeq(routesNode)) report(routesNode, 'routes must be a list of routes');
    else {
      for (const item of routesNode.items) {
        const route = compileRoute(doc, deref(doc, item), report);
        if (route) routes.push(route);
      }
    }
  }
  if (problems.length > before || api === null) return null;
  return { api, upstreams, routes, builtin: src.builtin, apiAt: at(apiNode) };
}

type Report = (node: unknown, message: string) => void;

/** A node with aliases (`*anchor`) resolved. */
function deref(doc: Document, node: unknown): unknown {
  return isAlias(node) ? node.resolve(doc) : node;
}

/** A mapping's values by key; keys outside `allowed` are reported. */
function fields(doc: Document, map: YAMLMap, allowed: string[], what: string, report: Report): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const pair of map.items as Pair[]) {
    const key = isScalar(pair.key) ? String(pair.key.value) : null;
    if (key === null || !allowed.includes(key)) report(pair.key, `unknown key ${key === null ? '' : `"${key}" `}in ${what} (allowed: ${allowed.join(', ')})`);
    else out.set(key, deref(doc, pair.value));
  }
  return out;
}

/** The string value of a scalar node, or null (after reporting) when it is anything else. */
function text(node: unknown, what: string, report: Report): string | null {
  if (node === undefined) return null;
  if (isScalar(node) && typeof node.value === 'string' && node.value !== '') return node.value;
  report(node, `${what} must be a non-empty string`);
  return null;
}

function name(node: unknown, what: string, report: Report): string | null {
  const value = text(node, what, report);
  if (value !== null && !NAME.test(value)) {
    report(node, `${what} "${value}" is not a name (letters, digits, _ and -)`);
    return null;
  }
  return value;
}

function compileRoute(doc: Document, node: unknown, report: Report): CompiledRoute | null {
  if (!isMap(node)) {
    report(node, 'a route must be a mapping with route, kind, target and args');
    return null;
  }
  const f = fields(doc, node, ['route', 'when', 'kind', 'target', 'args'], 'a route', report);
  for (const key of ['route', 'kind', 'target']) if (!f.has(key)) report(node, `missing "${key}" in a route`);

  const pattern = f.has('route') ? compilePattern(f.get('route'), report) : null;
  const params = pattern?.params ?? null;
  const kind = text(f.get('kind'), 'kind', report);
  if (kind !== null && !/^[A-Za-z][\w-]*(\.[\w-]+)*$/.test(kind)) report(f.get('kind'), `kind "${kind}" is not dotted names, e.g. issue.comment`);

  // Without a valid pattern the parameter names are unknown: check the rest for syntax only.
  const source = (node: unknown, value: string) => compileSource(node, value, params, report);

  const targetText = text(f.get('target'), 'target', report);
  const target = targetText === null ? null : compileTarget(f.get('target'), targetText, params, report);

  const when: CompiledRoute['when'] = [];
  const whenNode = f.get('when');
  if (whenNode !== undefined) {
    if (!isMap(whenNode)) report(whenNode, 'when must be a mapping of source: value, e.g. { body.state: closed }');
    else {
      for (const pair of whenNode.items as Pair[]) {
        const key = text(pair.key, 'a when key', report);
        const value = deref(doc, pair.value);
        const src = key === null ? null : source(pair.key, key);
        if (!isScalar(value) || (value.value !== null && !['string', 'number', 'boolean'].includes(typeof value.value))) {
          report(value ?? pair.key, `a when value must be a string, number, boolean or null`);
        } else if (src) {
          // Path parameters are strings: `path.number: 12` means "12".
          when.push({ source: src, equals: key!.startsWith('path.') && value.value !== null ? String(value.value) : value.value });
        }
      }
    }
  }

  let args: CompiledRoute['args'] | null = [];
  const argsNode = f.get('args');
  if (argsNode !== undefined) {
    if (isScalar(argsNode) && typeof argsNode.value === 'string') args = source(argsNode, argsNode.value);
    else if (!isMap(argsNode)) {
      report(argsNode, 'args must be a mapping of arg: source, or one source whose value is the args (e.g. body)');
      args = null;
    } else {
      for (const pair of argsNode.items as Pair[]) {
        const arg = compileArg(doc, pair, source, report);
        if (arg) (args as CompiledArg[]).push(arg);
      }
    }
  }

  if (!pattern || kind === null || !target || !args) return null;
  const { route, method, segments, paramAt } = pattern;
  return { route, method, segments, paramAt, when, kind, target, args };
}

type Pattern = Pick<CompiledRoute, 'route' | 'method' | 'segments' | 'paramAt'> & { params: string[] };

/** `METHOD /literal/{param}/…`: one parameter per whole segment. */
function compilePattern(node: unknown, report: Report): Pattern | null {
  const value = text(node, 'route', report);
  if (value === null) return null;
  const m = /^([A-Za-z]+) +(\/\S*)$/.exec(value.trim());
  if (!m) {
    report(node, `route "${value}" is not METHOD /path, e.g. POST /repos/{owner}/{repo}/issues`);
    return null;
  }
  const [, method, path] = m as unknown as [string, string, string];
  let ok = true;
  if (!METHODS.includes(method)) {
    report(node, `route method "${method}" is not one of ${METHODS.join(', ')}`);
    ok = false;
  }
  if (/[?#]/.test(path)) {
    report(node, `route "${value}" has a query string or fragment; routes match the path only (the query is ignored)`);
    ok = false;
  }
  const params: string[] = [];
  const paramAt: number[] = [];
  const segments = splitPath(path).map((seg, i) => {
    const param = /^\{(.*)\}$/.exec(seg)?.[1];
    if (param === undefined) {
      if (seg === '' || /[{}]/.test(seg)) {
        report(node, `route segment "${seg}" must be a literal or one whole {param}`);
        ok = false;
      }
      return seg;
    }
    if (!PARAM.test(param) || params.includes(param)) {
      report(node, params.includes(param) ? `route parameter {${param}} appears twice` : `route parameter {${param}} is not a name (letters, digits, _)`);
      ok = false;
    }
    params.push(param);
    paramAt.push(i);
    return null;
  });
  return ok ? { route: `${method} ${path}`, method, segments, paramAt, params } : null;
}

/**
 * A source: `body` (the whole body), `body.a.b` (a field; a number indexes a list) or
 * `path.<param>`. `params` is null when the route's pattern is invalid.
 */
function compileSource(node: unknown, value: string, params: string[] | null, report: Report): Source | null {
  const [root, ...rest] = value.split('.');
  if (root === 'body' && rest.every((f) => FIELD.test(f))) {
    if (rest.length === 0) return (_p, body) => body;
    return (_p, body) => {
      let v = body;
      for (const field of rest) {
        // Own properties only: `body.constructor` must not reach Object.prototype.
        if (v === null || typeof v !== 'object' || !Object.hasOwn(v, field)) return undefined;
        v = (v as Record<string, unknown>)[field];
      }
      return v;
    };
  }
  if (root === 'path' && rest.length === 1) {
    const i = params?.indexOf(rest[0]!) ?? 0;
    if (i >= 0) return (p) => p[i];
    report(node, `"${value}" names no parameter of the route (it has ${params!.length ? params!.map((p) => `{${p}}`).join(', ') : 'none'})`);
    return null;
  }
  report(node, `"${value}" is not a source: ${SOURCES_HELP}`);
  return null;
}

/** `{param}` and `{body.field}` placeholders in literal text. */
function compileTarget(node: unknown, value: string, params: string[] | null, report: Report): (string | Source)[] | null {
  const parts: (string | Source)[] = [];
  let ok = true;
  let last = 0;
  const literal = (s: string) => {
    if (/[{}]/.test(s)) {
      report(node, `target "${value}" has an unmatched brace; placeholders are {param} or {body.field}`);
      ok = false;
    } else if (s) parts.push(s);
  };
  for (const m of value.matchAll(/\{([^{}]*)\}/g)) {
    literal(value.slice(last, m.index));
    last = m.index + m[0].length;
    const inner = m[1]!;
    if (inner.startsWith('body.')) {
      const src = compileSource(node, inner, params, report);
      if (src) parts.push(src);
      else ok = false;
    } else if (params === null || params.includes(inner)) {
      const i = params?.indexOf(inner) ?? 0;
      parts.push((p) => p[i]);
    } else {
      report(node, `target names {${inner}}, which is not a parameter of the route (it has ${params.length ? params.map((p) => `{${p}}`).join(', ') : 'none'})`);
      ok = false;
    }
  }
  literal(value.slice(last));
  return ok ? parts : null;
}

/** `name: source`, `name: source?` (optional) or `name: { from: source, default: value }`. */
function compileArg(doc: Document, pair: Pair, source: (node: unknown, value: string) => Source | null, report: Report): CompiledArg | null {
  const name = text(pair.key, 'an arg name', report);
  const node = deref(doc, pair.value);
  if (name === null) return null;
  if (isScalar(node) && typeof node.value === 'string') {
    const optional = node.value.endsWith('?');
    const src = source(node, optional ? node.value.slice(0, -1) : node.value);
    return src && { name, source: src, absent: optional ? 'omit' : 'required' };
  }
  if (isMap(node)) {
    const f = fields(doc, node, ['from', 'default'], `arg "${name}"`, report);
    const from = text(f.get('from'), `arg "${name}" from`, report);
    if (!f.has('from') || !f.has('default')) report(node, `arg "${name}" needs both from and default`);
    const src = from === null ? null : source(f.get('from'), from);
    const fallback = f.get('default');
    if (!src || !(isScalar(fallback) || isMap(fallback) || isSeq(fallback))) return null;
    return { name, source: src, absent: 'default', fallback: fallback.toJS(doc) as unknown };
  }
  report(node ?? pair.key, `arg "${name}" must be a source (${SOURCES_HELP}, with ? when optional) or { from, default }`);
  return null;
}

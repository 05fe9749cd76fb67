import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import { HsError, type ErrorCode } from '../../core/errors.js';
import type { EffectClass } from '../../core/effects.js';
import { describeArgErrors, type OpRegistry } from '../ops/registry.js';
import { effectClassOf, type OpDefinition } from '../ops/types.js';
import { compileExpression, ExpressionError, type CompiledExpression } from './expressions.js';
import { formatProblem, type CompiledFlow, type CompiledNode, type CompiledTrigger, type FlowProblem, type OnError } from './model.js';
import { FLOW_SCHEMA } from './schema.js';
import { compileValue, expressionsIn } from './values.js';

type Path = (string | number)[];

const validateFlowShape = new Ajv({ allErrors: true, strict: false }).compile(FLOW_SCHEMA);

/** Positions inside one YAML file: a path of keys/indexes to line:col. */
class Locator {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  /** The node at `path` (or its key when `key` is true); falls back to the nearest existing ancestor. */
  private find(path: Path, key: boolean): YamlNode | null {
    let node: unknown = this.doc.contents;
    let keyNode: unknown = null;
    for (const seg of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === seg);
        if (!pair) break;
        keyNode = pair.key;
        node = pair.value;
      } else if (isSeq(node) && typeof seg === 'number' && node.items[seg]) {
        keyNode = null;
        node = node.items[seg];
      } else break;
    }
    return ((key && keyNode) || node) as YamlNode | null;
  }

  at(path: Path, opts: { key?: boolean; offset?: number } = {}): { line: number; col: number } {
    const node = this.find(path, opts.key ?? false);
    let start = node?.range?.[0] ?? 0;
    if (opts.offset && isScalar(node) && typeof node.value === 'string' && !node.value.includes('\n')) {
      const quoted = node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE';
      start += (quoted ? 1 : 0) + opts.offset;
    }
    const pos = this.lines.linePos(start);
    return { line: pos.line, col: pos.col };
  }
}

function list(value: unknown): string[] | null {
  if (value === undefined) return null;
  return Array.isArray(value) ? (value as string[]) : [value as string];
}

function closest(name: string, candidates: Iterable<string>): string | null {
  let best: string | null = null;
  let bestScore = Infinity;
  for (const c of candidates) {
    const d = editDistance(name, c);
    if (d < bestScore) [best, bestScore] = [c, d];
  }
  return best !== null && bestScore <= Math.max(2, Math.floor(name.length / 4)) ? best : null;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}

function ajvPath(e: ErrorObject): Path {
  return e.instancePath
    .split('/')
    .slice(1)
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s.replaceAll('~1', '/').replaceAll('~0', '~')));
}

/**
 * Compiles one flow file. Returns the flow, or null when it has problems; every
 * problem found is pushed to `problems`, so a user fixes them all in one pass.
 */
export function compileFlow(text: string, file: string, ops: OpRegistry, problems: FlowProblem[]): CompiledFlow | null {
  const before = problems.length;
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const report = (code: ErrorCode, message: string, at: { line: number; col: number }) => problems.push({ file, ...at, code, message });

  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const pos = e.linePos?.[0] ?? lines.linePos(e.pos[0]);
      report('HS_ERR_FLOW_YAML', e.message.split('\n')[0]!, { line: pos.line, col: pos.col });
    }
    return null;
  }
  const loc = new Locator(doc, lines);
  const raw = doc.toJS() as Record<string, any> | null;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
    report('HS_ERR_FLOW_INVALID', 'a flow file must be a mapping with name, on and nodes', { line: 1, col: 1 });
    return null;
  }
  if (!validateFlowShape(raw)) {
    for (const e of validateFlowShape.errors ?? []) {
      if (e.keyword === 'anyOf') continue;
      const path = ajvPath(e);
      if (e.keyword === 'additionalProperties') {
        const key = (e.params as { additionalProperty: string }).additionalProperty;
        report('HS_ERR_FLOW_INVALID', `unknown key "${key}"${path.length ? ` in ${path.join('.')}` : ''}`, loc.at([...path, key], { key: true }));
      } else if (e.keyword === 'required') {
        report('HS_ERR_FLOW_INVALID', `missing "${(e.params as { missingProperty: string }).missingProperty}"${path.length ? ` in ${path.join('.')}` : ''}`, loc.at(path));
      } else {
        report('HS_ERR_FLOW_INVALID', `${path.join('.') || 'flow'} ${e.message}`, loc.at(path));
      }
    }
    return null;
  }

  const expression = (source: string, path: Path): CompiledExpression | null => {
    try {
      return compileExpression(source);
    } catch (err) {
      report('HS_ERR_EXPRESSION', (err as Error).message, loc.at(path, { offset: (err as ExpressionError).offset }));
      return null;
    }
  };

  const triggers: CompiledTrigger[] = (Array.isArray(raw.on) ? raw.on : [raw.on]).map((t: Record<string, unknown>, i: number) => {
    const path: Path = Array.isArray(raw.on) ? ['on', i] : ['on'];
    const cond = typeof t.if === 'string' ? expression(t.if, [...path, 'if']) : null;
    if (cond && cond.nodeRefs.length > 0) report('HS_ERR_NODE_REFERENCE', `a trigger's condition runs before any node; it cannot read nodes.${cond.nodeRefs[0]}`, loc.at([...path, 'if']));
    return { sources: list(t.source), events: list(t.event), actions: list(t.action), if: cond };
  });

  const rawNodes = raw.nodes as Record<string, any>[];
  const ids = new Set<string>();
  const nodes: CompiledNode[] = [];
  rawNodes.forEach((n, i) => {
    const path: Path = ['nodes', i];
    if (ids.has(n.id)) report('HS_ERR_FLOW_INVALID', `duplicate node id "${n.id}"`, loc.at([...path, 'id']));
    ids.add(n.id);
    const op = ops.get(n.op);
    if (!op) {
      const hint = closest(n.op, ops.keys());
      report('HS_ERR_UNKNOWN_OP', `unknown op "${n.op}"${hint ? ` (did you mean "${hint}"?)` : ''}; \`hookshadow flows ops\` lists them`, loc.at([...path, 'op']));
    }
    const args = n.with ?? {};
    if (op && !op.validateWritten(args)) {
      report('HS_ERR_OP_ARGS', `bad arguments for ${n.op}: ${describeArgErrors(op.validateWritten.errors)}`, loc.at([...path, n.with ? 'with' : 'op']));
    }
    const withValue = compileValue(args, (p, err) => report('HS_ERR_EXPRESSION', err.message, loc.at([...path, 'with', ...p], { offset: err.offset })));
    const needs = list(n.needs) ?? [];
    needs.forEach((dep, k) => {
      if (!rawNodes.some((m) => m.id === dep)) {
        const hint = closest(dep, rawNodes.map((m) => m.id as string));
        report('HS_ERR_UNKNOWN_NODE', `needs unknown node "${dep}"${hint ? ` (did you mean "${hint}"?)` : ''}`, loc.at(Array.isArray(n.needs) ? [...path, 'needs', k] : [...path, 'needs']));
      }
    });
    nodes.push({
      id: n.id,
      op: op!,
      effectClass: op ? staticEffectClass(op.def, args) : 'mutate',
      with: withValue,
      if: typeof n.if === 'string' ? expression(n.if, [...path, 'if']) : null,
      foreach: typeof n.foreach === 'string' ? expression(n.foreach, [...path, 'foreach']) : null,
      needs,
      onError: (n.on_error ?? 'stop') as OnError,
      line: loc.at(path).line,
    });
  });
  if (problems.length > before) return null;

  const order = topologicalOrder(nodes, (cycle) => {
    const first = rawNodes.findIndex((m) => m.id === cycle[0]);
    report('HS_ERR_FLOW_CYCLE', `nodes form a cycle: ${[...cycle, cycle[0]].join(' → ')}`, loc.at(['nodes', first, 'needs']));
  });
  if (!order) return null;

  // Every nodes.<id> an expression reads must have run before it in the execution order.
  const ranBefore = new Set<string>();
  for (const node of order) {
    const i = rawNodes.findIndex((m) => m.id === node.id);
    const exprs: [CompiledExpression, Path][] = [
      ...(node.if ? ([[node.if, ['nodes', i, 'if']]] as [CompiledExpression, Path][]) : []),
      ...(node.foreach ? ([[node.foreach, ['nodes', i, 'foreach']]] as [CompiledExpression, Path][]) : []),
      ...expressionsIn(node.with).map(([e, p]) => [e, ['nodes', i, 'with', ...p]] as [CompiledExpression, Path]),
    ];
    for (const [expr, path] of exprs) {
      for (const ref of expr.nodeRefs) {
        if (!ids.has(ref)) report('HS_ERR_UNKNOWN_NODE', `\`${expr.source}\` reads nodes.${ref}, and there is no node "${ref}"`, loc.at(path));
        else if (ref === node.id) report('HS_ERR_NODE_REFERENCE', `\`${expr.source}\` reads the node's own output`, loc.at(path));
        else if (!ranBefore.has(ref)) {
          report('HS_ERR_NODE_REFERENCE', `\`${expr.source}\` reads nodes.${ref}, which does not run before "${node.id}"; add "${ref}" to its needs or move it up`, loc.at(path));
        }
      }
    }
    ranBefore.add(node.id);
  }
  if (problems.length > before) return null;

  return {
    name: raw.name as string,
    description: ((raw as { description?: string }).description) ?? '',
    file,
    version: createHash('sha256').update(text).digest('hex').slice(0, 12),
    triggers,
    nodes: order,
  };
}

/** The effect class from the arguments as written: literal values decide, templates leave it to run time. */
function staticEffectClass(def: OpDefinition, args: Record<string, unknown>): EffectClass {
  if (typeof def.effectClass === 'string') return def.effectClass;
  const literal = Object.values(args).every((v) => typeof v !== 'string' || !v.includes('${{'));
  try {
    return literal ? effectClassOf(def, args) : 'mutate';
  } catch {
    return 'mutate';
  }
}

/** Kahn's algorithm, the earliest ready node in the file first; calls `onCycle` with one cycle's node ids when there is one. */
function topologicalOrder(nodes: CompiledNode[], onCycle: (cycle: string[]) => void): CompiledNode[] | null {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const deps = (n: CompiledNode) => n.needs;
  const done = new Set<string>();
  const order: CompiledNode[] = [];
  while (order.length < nodes.length) {
    const next = nodes.find((n) => !done.has(n.id) && deps(n).every((d) => done.has(d)));
    if (!next) {
      // Walk unfinished dependencies from any blocked node until one repeats: that is a cycle.
      const seen: string[] = [];
      let cur = nodes.find((n) => !done.has(n.id))!;
      while (!seen.includes(cur.id)) {
        seen.push(cur.id);
        cur = byId.get(deps(cur).find((d) => !done.has(d))!)!;
      }
      onCycle(seen.slice(seen.indexOf(cur.id)));
      return null;
    }
    done.add(next.id);
    order.push(next);
  }
  return order;
}

/** The flows of a directory (`*.yaml`, `*.yml`, recursively), or every problem in them. */
export interface LoadedFlows {
  flows: CompiledFlow[];
  problems: FlowProblem[];
  /** SHA-256 over every flow file's path and bytes: names the exact flow set a replay ran. */
  digest: string;
}

export async function loadFlowsDir(dir: string, ops: OpRegistry): Promise<LoadedFlows> {
  let files: string[];
  try {
    files = (await readdir(dir, { recursive: true, withFileTypes: true }))
      .filter((e) => e.isFile() && /\.ya?ml$/.test(e.name))
      .map((e) => join(e.parentPath, e.name))
      .sort();
  } catch (err) {
    throw new HsError('HS_ERR_FLOWS_INVALID', `Cannot read the flows directory ${dir}: ${(err as Error).message}. Pass --flows DIR with your flow YAML files.`, { cause: err });
  }
  if (files.length === 0) throw new HsError('HS_ERR_FLOWS_INVALID', `${dir} holds no flow files (*.yaml, *.yml).`);
  const problems: FlowProblem[] = [];
  const flows: CompiledFlow[] = [];
  const digest = createHash('sha256');
  for (const file of files) {
    const text = await readFile(file, 'utf8');
    digest.update(`${relative(dir, file)}\0${text}\0`);
    const flow = compileFlow(text, file, ops, problems);
    if (!flow) continue;
    const clash = flows.find((f) => f.name === flow.name);
    if (clash) problems.push({ file, line: 1, col: 1, code: 'HS_ERR_FLOW_INVALID', message: `flow name "${flow.name}" is also used by ${clash.file}` });
    else flows.push(flow);
  }
  return { flows, problems, digest: digest.digest('hex') };
}

/** Loads flows and throws one HS_ERR_FLOWS_INVALID listing every problem (for commands that need valid flows). */
export async function loadFlowsOrThrow(dir: string, ops: OpRegistry): Promise<LoadedFlows> {
  const loaded = await loadFlowsDir(dir, ops);
  if (loaded.problems.length > 0) {
    throw new HsError('HS_ERR_FLOWS_INVALID', `${loaded.problems.length} problem(s) in ${dir}; fix them and run again:\n${loaded.problems.map(formatProblem).join('\n')}`, {
      details: { problems: loaded.problems },
    });
  }
  return loaded;
}

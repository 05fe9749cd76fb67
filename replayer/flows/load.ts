import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { Ajv } from 'ajv';
import { HsError, type ErrorCode } from '../../core/errors.js';
import { closest, parseYamlSource, schemaProblems, type YamlPath } from '../../core/yaml-source.js';
import type { EffectClass } from '../../core/effects.js';
import { describeArgErrors, type OpRegistry } from '../ops/registry.js';
import { effectClassOf, type OpDefinition } from '../ops/types.js';
import { compileExpression, ExpressionError, type CompiledExpression } from './expressions.js';
import { formatProblem, type CompiledFlow, type CompiledNode, type CompiledTrigger, type FlowProblem, type OnError } from './model.js';
import { durationUs, FLOW_SCHEMA } from './schema.js';
import { compileString, compileValue, expressionsIn, type CompiledValue } from './values.js';

type Path = YamlPath;

const validateFlowShape = new Ajv({ allErrors: true, strict: false }).compile(FLOW_SCHEMA);

function list(value: unknown): string[] | null {
  if (value === undefined) return null;
  return Array.isArray(value) ? (value as string[]) : [value as string];
}

/**
 * Compiles one flow file. Returns the flow, or null when it has problems; every
 * problem found is pushed to `problems`, so a user fixes them all in one pass.
 */
export function compileFlow(text: string, file: string, ops: OpRegistry, problems: FlowProblem[]): CompiledFlow | null {
  const before = problems.length;
  const report = (code: ErrorCode, message: string, at: { line: number; col: number }) => problems.push({ file, ...at, code, message });

  const parsed = parseYamlSource(text);
  if (!parsed.ok) {
    for (const e of parsed.errors) report('HS_ERR_FLOW_YAML', e.message, e);
    return null;
  }
  const loc = parsed.loc;
  const raw = parsed.value as Record<string, any> | null;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
    report('HS_ERR_FLOW_INVALID', 'a flow file must be a mapping with name, on and nodes', { line: 1, col: 1 });
    return null;
  }
  if (!validateFlowShape(raw)) {
    for (const p of schemaProblems(validateFlowShape, loc, 'flow')) report('HS_ERR_FLOW_INVALID', p.message, p);
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

  const dedup = compileDedup((raw as { dedup?: { key?: string; window?: string } }).dedup as { key?: string; window?: string } | undefined, (code, message, path, offset) => report(code, message, loc.at(path, offset === undefined ? undefined : { offset })));

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
    dedup,
    nodes: order,
  };
}

/** A redelivery keeps its delivery id, so that is the default key. */
const DEFAULT_DEDUP = { key: '${{ delivery.id }}', window: '24h' };

function compileDedup(
  raw: { key?: string; window?: string } | undefined,
  report: (code: ErrorCode, message: string, path: Path, offset?: number) => void,
): CompiledFlow['dedup'] {
  if (!raw) return null;
  const source = raw.key ?? DEFAULT_DEDUP.key;
  let key: CompiledValue;
  try {
    key = compileString(source);
  } catch (err) {
    report('HS_ERR_EXPRESSION', (err as Error).message, ['dedup', 'key'], (err as ExpressionError).offset);
    return null;
  }
  const reads = expressionsIn(key).flatMap(([e]) => e.nodeRefs);
  if (reads.length > 0) report('HS_ERR_NODE_REFERENCE', `the dedup key is computed before any node runs; it cannot read nodes.${reads[0]}`, ['dedup', 'key']);
  return { key, windowUs: durationUs(raw.window ?? DEFAULT_DEDUP.window) };
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

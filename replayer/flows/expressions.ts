import { RE2JS } from 're2js';
import { Environment, type ParseResult } from '@marcbachmann/cel-js';

/**
 * Expressions are CEL (`@marcbachmann/cel-js`; specs/flows.md says why). Each is
 * parsed and type-checked once, when a flow loads; a delivery only evaluates it.
 * CEL cannot loop unboundedly, call out, or reach anything but the variables below.
 */

/** The variables every expression sees. `item`/`index` are only set inside `foreach`. */
export const EXPRESSION_VARIABLES = ['delivery', 'nodes', 'flow', 'now', 'item', 'index'] as const;

// Patterns are RE2 (linear time, as the CEL spec intends): a delivery's text cannot make a flow's regex backtrack.
const re2Cache = new Map<string, RE2JS>();
function re2(pattern: string): RE2JS {
  let re = re2Cache.get(pattern);
  if (!re) re2Cache.set(pattern, (re = RE2JS.compile(pattern)));
  return re;
}

const env = new Environment({ homogeneousAggregateLiterals: false, enableOptionalTypes: true })
  .registerVariable('delivery', 'map')
  .registerVariable('nodes', 'map')
  .registerVariable('flow', 'map')
  .registerVariable('now', 'google.protobuf.Timestamp')
  .registerVariable('item', 'dyn')
  .registerVariable('index', 'int')
  .registerFunction('string.re2(string): bool', (text: string, pattern: string) => re2(pattern).matcher(text).find());

export interface ExpressionScope {
  delivery: Record<string, unknown>;
  nodes: Record<string, unknown>;
  flow: Record<string, unknown>;
  now: Date;
  item?: unknown;
  index?: bigint;
}

export interface CompiledExpression {
  source: string;
  /** Node ids the expression reads through `nodes.<id>`. */
  nodeRefs: string[];
  /**
   * What it reads of the delivery: each longest field chain from `delivery`
   * (`["payload", "issue", "number"]`; `[]` when it reads `delivery` whole). Whatever
   * sits at the end of a chain may be read in full (a macro over a map reads its keys).
   */
  deliveryReads: string[][];
  evaluate(scope: ExpressionScope): unknown;
}

/** A problem in an expression, with the character offset inside its source. */
export class ExpressionError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
    this.name = 'ExpressionError';
  }
}

interface AstNode {
  op: string;
  args: unknown;
  pos?: number;
}

function firstLine(message: string): string {
  return message.split('\n')[0]!.trim();
}

const FIELD_OPS = new Set(['.', '.?', '[]', '[?]']);

/** `delivery.a.?b["c"]` as `["a", "b", "c"]`; null when the chain does not start at `delivery` or an index is not a literal string. */
function deliveryChain(node: AstNode): string[] | null {
  if (node.op === 'id') return node.args === 'delivery' ? [] : null;
  if (!FIELD_OPS.has(node.op) || !Array.isArray(node.args)) return null;
  const [target, field] = node.args as [AstNode, unknown];
  const key = typeof field === 'string' ? field : (field as AstNode | undefined)?.op === 'value' && typeof (field as AstNode).args === 'string' ? ((field as AstNode).args as string) : null;
  const head = target ? deliveryChain(target) : null;
  return head && key !== null ? [...head, key] : head;
}

/** The computed indexes inside a delivery chain (`delivery.payload[nodes.k.output]`) are expressions of their own. */
function inspectIndexes(node: AstNode, out: Inspection): void {
  if (!FIELD_OPS.has(node.op) || !Array.isArray(node.args)) return;
  const [target, field] = node.args as [AstNode, unknown];
  if (field && typeof field === 'object' && (field as AstNode).op !== 'value') inspect(field, out);
  if (target) inspectIndexes(target, out);
}

interface Inspection {
  nodeRefs: Set<string>;
  deliveryReads: string[][];
}

/** Walks the tree: collects `<id>` of every `nodes.<id>` and the delivery chains read, and refuses what the engine does not allow. */
function inspect(node: unknown, out: Inspection): void {
  if (Array.isArray(node)) {
    for (const n of node) inspect(n, out);
    return;
  }
  if (!node || typeof node !== 'object') return;
  const n = node as AstNode;
  const chain = n.op === 'id' || FIELD_OPS.has(n.op) ? deliveryChain(n) : null;
  if (chain) {
    // The longest chain only: its prefixes are walked through, not read whole.
    out.deliveryReads.push(chain);
    inspectIndexes(n, out);
    return;
  }
  if (n.op === '.' && Array.isArray(n.args)) {
    const [target, field] = n.args as [AstNode, unknown];
    if (target?.op === 'id' && target.args === 'nodes' && typeof field === 'string') out.nodeRefs.add(field);
  }
  if ((n.op === 'rcall' || n.op === 'call') && Array.isArray(n.args)) {
    const [name, , args] = n.args as [string, unknown, AstNode[] | undefined];
    if (name === 'matches') {
      throw new ExpressionError('use .re2("pattern") instead of .matches(): matches() here uses backtracking JavaScript regexes, re2() guarantees linear time', n.pos ?? 0);
    }
    const pattern = Array.isArray(args) ? args[0] : undefined;
    if (name === 're2' && pattern?.op === 'value' && typeof pattern.args === 'string') {
      try {
        re2(pattern.args);
      } catch (err) {
        throw new ExpressionError(`invalid RE2 pattern ${JSON.stringify(pattern.args)}: ${(err as Error).message}`, pattern.pos ?? 0);
      }
    }
  }
  inspect(n.args, out);
}

/** Parses and type-checks; throws ExpressionError with the offset of the problem. */
export function compileExpression(source: string): CompiledExpression {
  let program: ParseResult;
  try {
    program = env.parse(source);
  } catch (err) {
    throw new ExpressionError(`syntax error in \`${source}\`: ${firstLine((err as Error).message)}`, (err as { node?: AstNode }).node?.pos ?? 0);
  }
  const checked = program.check();
  if (!checked.valid) {
    const error = checked.error as (Error & { node?: AstNode }) | undefined;
    throw new ExpressionError(`invalid expression \`${source}\`: ${firstLine(error?.message ?? 'type error')}`, error?.node?.pos ?? 0);
  }
  const refs: Inspection = { nodeRefs: new Set(), deliveryReads: [] };
  try {
    inspect(program.ast, refs);
  } catch (err) {
    const e = err as ExpressionError;
    throw new ExpressionError(`invalid expression \`${source}\`: ${e.message}`, e.offset);
  }
  return {
    source,
    nodeRefs: [...refs.nodeRefs],
    deliveryReads: refs.deliveryReads,
    evaluate: (scope) => toPlain(program(scope as unknown as Record<string, unknown>)),
  };
}

/** CEL values as plain JSON-able values: ints (bigint) become numbers when safe, maps become objects. */
export function toPlain(value: unknown): unknown {
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (Array.isArray(value)) return value.map(toPlain);
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [String(k), toPlain(v)]));
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  if (value && typeof value === 'object') {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) return value;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = toPlain(v);
    return out;
  }
  return value;
}

import { compileExpression, ExpressionError, type CompiledExpression, type ExpressionScope } from './expressions.js';

/**
 * A `with:` value, compiled: literals stay literals, `${{ expr }}` strings become
 * expressions. A string that is exactly one `${{ expr }}` keeps the expression's type
 * (a number stays a number); anything else is string interpolation.
 */
export type CompiledValue =
  | { kind: 'literal'; value: unknown }
  | { kind: 'expr'; expr: CompiledExpression }
  | { kind: 'template'; parts: (string | CompiledExpression)[] }
  | { kind: 'array'; items: CompiledValue[] }
  | { kind: 'object'; entries: [string, CompiledValue][] };

const TEMPLATE = /\$\{\{([\s\S]*?)\}\}/g;

/** Where in a string a template's expression failed: the offset of the problem inside the string. */
export class TemplateError extends ExpressionError {}

export function compileString(text: string): CompiledValue {
  const parts: (string | CompiledExpression)[] = [];
  let last = 0;
  for (const m of text.matchAll(TEMPLATE)) {
    if (m.index > last) parts.push(text.slice(last, m.index));
    const inner = m[1]!;
    const lead = inner.length - inner.trimStart().length;
    try {
      parts.push(compileExpression(inner.trim()));
    } catch (err) {
      const e = err as ExpressionError;
      throw new TemplateError(e.message, m.index + 3 + lead + (e.offset ?? 0));
    }
    last = m.index + m[0].length;
  }
  if (parts.length === 0) return { kind: 'literal', value: text };
  if (last < text.length) parts.push(text.slice(last));
  if (parts.length === 1 && typeof parts[0] !== 'string') return { kind: 'expr', expr: parts[0]! };
  return { kind: 'template', parts };
}

/** Compiles a parsed YAML value; `onError` receives each failing string's path and error, so all are reported. */
export function compileValue(value: unknown, onError: (path: (string | number)[], err: ExpressionError) => void, path: (string | number)[] = []): CompiledValue {
  if (typeof value === 'string') {
    try {
      return compileString(value);
    } catch (err) {
      onError(path, err as ExpressionError);
      return { kind: 'literal', value };
    }
  }
  if (Array.isArray(value)) return { kind: 'array', items: value.map((v, i) => compileValue(v, onError, [...path, i])) };
  if (value && typeof value === 'object') {
    return { kind: 'object', entries: Object.entries(value).map(([k, v]) => [k, compileValue(v, onError, [...path, k])]) };
  }
  return { kind: 'literal', value };
}

export function resolveValue(value: CompiledValue, scope: ExpressionScope): unknown {
  switch (value.kind) {
    case 'literal':
      return value.value;
    case 'expr':
      return value.expr.evaluate(scope);
    case 'template':
      return value.parts.map((p) => (typeof p === 'string' ? p : stringify(p.evaluate(scope)))).join('');
    case 'array':
      return value.items.map((v) => resolveValue(v, scope));
    case 'object':
      return Object.fromEntries(value.entries.map(([k, v]) => [k, resolveValue(v, scope)]));
  }
}

function stringify(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** Every expression inside a compiled value, with the path of the string it sits in (for reference checks). */
export function expressionsIn(value: CompiledValue, path: (string | number)[] = []): [CompiledExpression, (string | number)[]][] {
  switch (value.kind) {
    case 'literal':
      return [];
    case 'expr':
      return [[value.expr, path]];
    case 'template':
      return value.parts.filter((p): p is CompiledExpression => typeof p !== 'string').map((e) => [e, path]);
    case 'array':
      return value.items.flatMap((v, i) => expressionsIn(v, [...path, i]));
    case 'object':
      return value.entries.flatMap(([k, v]) => expressionsIn(v, [...path, k]));
  }
}

import { createTwoFilesPatch } from 'diff';
import type { Segment } from './json-path.js';

/** One difference between two JSON values; `undefined` on a side means the key or element is absent there. */
export interface ValueDifference {
  path: Segment[];
  legacy: unknown;
  flow: unknown;
}

/** Whether two different numbers at a path count as equal (a tolerance rule allows it). */
export type ToleranceAt = (path: readonly Segment[], legacy: number, flow: number) => boolean;

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Field-by-field differences between two JSON values, at the deepest path where they
 * part: objects by key (sorted, so the order is stable), arrays by index, anything else
 * by value (numbers within the tolerance at their path count as equal).
 */
export function compareValues(legacy: unknown, flow: unknown, tolerance: ToleranceAt = () => false): ValueDifference[] {
  const out: ValueDifference[] = [];
  const walk = (a: unknown, b: unknown, path: Segment[]): void => {
    if (isObject(a) && isObject(b)) {
      const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
      for (const k of keys) walk(a[k], b[k], [...path, k]);
      return;
    }
    if (Array.isArray(a) && Array.isArray(b)) {
      for (let i = 0; i < Math.max(a.length, b.length); i++) walk(a[i], b[i], [...path, i]);
      return;
    }
    if (a === b) return;
    if (typeof a === 'number' && typeof b === 'number' && tolerance(path, a, b)) return;
    out.push({ path, legacy: a, flow: b });
  };
  walk(legacy, flow, []);
  return out;
}

/** Strings long or multi-line enough that a unified diff says more than the two values side by side. */
const LONG_TEXT = 80;

export function textDiff(legacy: unknown, flow: unknown): string | null {
  if (typeof legacy !== 'string' || typeof flow !== 'string') return null;
  if (legacy.length < LONG_TEXT && flow.length < LONG_TEXT && !legacy.includes('\n') && !flow.includes('\n')) return null;
  const patch = createTwoFilesPatch('legacy', 'flow', ensureNewline(legacy), ensureNewline(flow), '', '', { context: 3 });
  // Drop the `Index:`/`===` preamble: the two file names say which side is which.
  return patch.slice(patch.indexOf('--- legacy'));
}

// Without a final newline, `diff` adds "\ No newline at end of file" to both sides: noise for comment bodies.
const ensureNewline = (s: string) => (s.endsWith('\n') ? s : `${s}\n`);

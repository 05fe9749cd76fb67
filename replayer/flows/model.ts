import type { ErrorCode } from '../../core/errors.js';
import type { EffectClass } from '../../core/effects.js';
import type { RegisteredOp } from '../ops/registry.js';
import type { CompiledExpression } from './expressions.js';
import type { CompiledValue } from './values.js';

export const MODES = ['off', 'dry-run', 'live'] as const;
export type Mode = (typeof MODES)[number];

export const ON_ERROR = ['stop', 'continue'] as const;
export type OnError = (typeof ON_ERROR)[number];

/** One `on:` entry. A null list matches anything. */
export interface CompiledTrigger {
  sources: string[] | null;
  events: string[] | null;
  actions: string[] | null;
  if: CompiledExpression | null;
}

export interface CompiledNode {
  id: string;
  op: RegisteredOp;
  /** Known before running when the op's class is fixed or all its top-level arguments are literals; else `mutate` (the cautious guess). */
  effectClass: EffectClass;
  with: CompiledValue;
  if: CompiledExpression | null;
  foreach: CompiledExpression | null;
  /** This node runs after each of them, and only when each finished ok (or planned). */
  needs: string[];
  onError: OnError;
  line: number;
}

/** `dedup:`: the flow runs once per key within the window; a repeat is a `duplicate` run. */
export interface CompiledDedup {
  key: CompiledValue;
  windowUs: number;
}

/** A flow ready to run: expressions compiled, nodes in execution order (needs first, then file order). */
export interface CompiledFlow {
  name: string;
  description: string;
  file: string;
  /** First 12 hex digits of the SHA-256 of the file's bytes. */
  version: string;
  triggers: CompiledTrigger[];
  dedup: CompiledDedup | null;
  nodes: CompiledNode[];
}

/** One problem found while loading flows, positioned in its file. */
export interface FlowProblem {
  file: string;
  line: number;
  col: number;
  code: ErrorCode;
  message: string;
}

export function formatProblem(p: FlowProblem): string {
  return `${p.file}:${p.line}:${p.col}: ${p.code}: ${p.message}`;
}

import type { Effect, EffectClass, HttpRequestIntent } from '../../core/effects.js';

/** A JSON Schema (draft 2020-12 subset that ajv understands) for an op's `with:` arguments. */
export type ArgsSchema = Record<string, unknown>;

/** What an op may know about the run it is part of. Everything here is deterministic in replay. */
export interface OpContext {
  /** The delivery's source (`github`, `gitea`, ...): forge ops default to it. */
  source: string;
  flow: string;
  nodeId: string;
  /** Deterministic id for synthetic outputs: the same delivery, flow and node give the same id. */
  syntheticId(prefix: string): string;
  /** Microseconds since the epoch: the delivery's `received_at` in replay. */
  nowUs: number;
}

/** What `log` and friends may write to; injected so tests can see it and replay can stay quiet. */
export interface OpLogger {
  info(obj: Record<string, unknown>, msg: string): void;
}

/**
 * One operation a flow node can run. Ops declare everything the engine and the
 * analyzer need to reason about them without running them: the effect class, the
 * capability, the argument schema, and for reads and mutations the exact request.
 */
export interface OpDefinition<A = any> {
  name: string;
  description: string;
  /** Fixed, or computed from the arguments (`http.request` is a read for GET, a mutation for POST). */
  effectClass: EffectClass | ((args: A) => EffectClass);
  /** The capability the op needs to run live (`forge`, `agent-queue`, `http`), or null for pure ops. */
  capability: string | null;
  args: ArgsSchema;
  /** Reads and mutations: the HTTP request the op sends. */
  request?(args: A, ctx: OpContext): HttpRequestIntent;
  /** Mutations: the effect in the shared model. */
  intent?(args: A, ctx: OpContext): Effect;
  /** Mutations in dry-run: the output downstream nodes see in place of the real response. */
  synthetic?(args: A, ctx: OpContext): unknown;
  /** Pure ops: the output. Throwing fails the node. */
  run?(args: A, ctx: OpContext & { logger: OpLogger }): unknown;
}

export function effectClassOf(op: OpDefinition, args: unknown): EffectClass {
  return typeof op.effectClass === 'function' ? op.effectClass(args) : op.effectClass;
}

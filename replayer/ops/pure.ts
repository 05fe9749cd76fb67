import { HsError } from '../../core/errors.js';
import type { OpDefinition } from './types.js';

/** Ops that only compute: they need no capability and behave the same in every mode. */
export const pureOps: OpDefinition[] = [
  {
    name: 'set',
    description: 'Output its arguments: name intermediate values once and reuse them as nodes.<id>.output.',
    effectClass: 'pure',
    capability: null,
    args: { type: 'object' },
    run: (a: Record<string, unknown>) => a,
  },
  {
    name: 'log',
    description: 'Write a message to the run log; output the message.',
    effectClass: 'pure',
    capability: null,
    args: { type: 'object', additionalProperties: false, required: ['message'], properties: { message: { type: 'string' }, data: {} } },
    run: (a: { message: string; data?: unknown }, ctx) => {
      ctx.logger.info({ flow: ctx.flow, node: ctx.nodeId, data: a.data }, a.message);
      return { message: a.message };
    },
  },
  {
    name: 'fail',
    description: 'Fail the node with a message (with on_error it decides whether the flow stops).',
    effectClass: 'pure',
    capability: null,
    args: { type: 'object', additionalProperties: false, required: ['message'], properties: { message: { type: 'string', minLength: 1 } } },
    run: (a: { message: string }) => {
      throw new HsError('HS_ERR_NODE_FAILED', a.message);
    },
  },
];

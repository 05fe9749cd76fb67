import { queueTarget } from '../../core/effects.js';
import type { OpDefinition } from './types.js';

interface EnqueueArgs {
  queue: string;
  ref: string;
  repo?: string;
  number?: number;
  data?: Record<string, unknown>;
  upstream?: string;
}

/** The job body: anything in `data`, then the named fields (which `data` cannot override, so target and args agree). */
function job(a: EnqueueArgs): Record<string, unknown> {
  return { ...a.data, queue: a.queue, ref: a.ref, ...(a.repo !== undefined ? { repo: a.repo } : {}), ...(a.number !== undefined ? { number: a.number } : {}) };
}

/** `agent.enqueue`: POST a job to the agent-queue API (`<agents upstream>/jobs`). */
export const agentOps: OpDefinition[] = [
  {
    name: 'agent.enqueue',
    description: 'Queue an agent job; the output carries the job_id the queue assigned.',
    effectClass: 'mutate',
    capability: 'agent-queue',
    args: {
      type: 'object',
      additionalProperties: false,
      required: ['queue', 'ref'],
      properties: {
        queue: { type: 'string', minLength: 1 },
        ref: { type: 'string', minLength: 1 },
        repo: { type: 'string' },
        number: { type: 'integer' },
        data: { type: 'object' },
        upstream: { type: 'string', description: 'upstream to call; default "agents"' },
      },
    },
    request: (a: EnqueueArgs) => ({ upstream: a.upstream ?? 'agents', method: 'POST', path: '/jobs', body: job(a) }),
    intent: (a: EnqueueArgs) => ({ kind: 'agent.enqueue', target: queueTarget(a.queue), args: job(a) }),
    synthetic: (a: EnqueueArgs, ctx) => ({ job_id: ctx.syntheticId('job'), queue: a.queue, status: 'dry-run' }),
  },
];

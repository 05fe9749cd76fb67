import { httpEffect } from '../../core/effects.js';
import type { OpDefinition } from './types.js';

interface HttpArgs {
  upstream: string;
  method: string;
  path: string;
  body?: unknown;
}

const READS = ['GET', 'HEAD', 'OPTIONS'];

/** `http.request`: any call to a configured upstream; a read for GET/HEAD/OPTIONS, a mutation otherwise. */
export const httpOps: OpDefinition[] = [
  {
    name: 'http.request',
    description: 'Call a configured upstream. GET, HEAD and OPTIONS are reads; other methods are mutations.',
    effectClass: (a: HttpArgs) => (READS.includes(a.method.toUpperCase()) ? 'read' : 'mutate'),
    capability: 'http',
    args: {
      type: 'object',
      additionalProperties: false,
      required: ['upstream', 'method', 'path'],
      properties: {
        upstream: { type: 'string', minLength: 1 },
        method: { enum: ['GET', 'HEAD', 'OPTIONS', 'POST', 'PUT', 'PATCH', 'DELETE'] },
        path: { type: 'string', pattern: '^/' },
        body: {},
      },
    },
    request: (a: HttpArgs) => ({ upstream: a.upstream, method: a.method.toUpperCase(), path: a.path, body: a.body ?? null }),
    intent: (a: HttpArgs) => httpEffect(a.upstream, a.method, a.path, a.body ?? null),
    synthetic: (a: HttpArgs, ctx) => ({ status: 200, id: ctx.syntheticId('http'), upstream: a.upstream, path: a.path }),
  },
];

import { createRequire } from 'node:module';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { githubEventShapes, githubPayloadArbitrary } from '../../analyzer/checks/schema-payloads.js';

// Validated independently of the module: the published schema as shipped, its own ajv.
const published = createRequire(import.meta.url)('@octokit/webhooks-schemas') as { definitions: Record<string, unknown> };
const ajv = new Ajv({ allErrors: true, strict: false });
addFormats.default(ajv);
ajv.addSchema({ definitions: published.definitions }, 'webhooks');
const validatorFor = (definition: string) => ajv.getSchema(`webhooks#/definitions/${definition}`)!;

const SEED = 20261121;
const SHAPES = [
  { event: 'issues', action: 'assigned' },
  { event: 'issue_comment', action: 'created' },
  { event: 'pull_request', action: 'opened' },
] as const;

describe('githubEventShapes', () => {
  it('lists the events with actions the checker covers, and push without one', () => {
    const shapes = githubEventShapes();

    for (const shape of SHAPES) expect(shapes).toContainEqual(shape);
    expect(shapes).toContainEqual({ event: 'push', action: null });
    expect(shapes.filter((s) => s.event === 'push')).toHaveLength(1);
  });

  it('is sorted by event then action, the same on every call', () => {
    const shapes = githubEventShapes();
    const key = (s: { event: string; action: string | null }) => `${s.event}\u0000${s.action ?? ''}`;

    expect(shapes.map(key)).toEqual(shapes.map(key).sort());
    expect(new Set(shapes.map(key)).size).toBe(shapes.length);
    expect(githubEventShapes()).toEqual(shapes);
  });
});

describe('githubPayloadArbitrary', () => {
  it.each(SHAPES)('makes $event/$action payloads that the published schema accepts', ({ event, action }) => {
    const validate = validatorFor(`${event}$${action}`);

    const payloads = fc.sample(githubPayloadArbitrary(event, action)!, { seed: SEED, numRuns: 15 });

    for (const payload of payloads) {
      expect(validate(payload), ajv.errorsText(validate.errors)).toBe(true);
      expect(payload.action).toBe(action);
      expect(payload).toMatchObject({ repository: { full_name: expect.any(String) }, sender: { login: expect.any(String) } });
      // Plain JSON: nothing a JSON body could not carry.
      expect(JSON.parse(JSON.stringify(payload))).toStrictEqual(payload);
    }
  });

  it('makes push payloads, which have no action', () => {
    const validate = validatorFor('push$event');

    const [payload] = fc.sample(githubPayloadArbitrary('push', null)!, { seed: SEED, numRuns: 1 });

    expect(validate(payload), ajv.errorsText(validate.errors)).toBe(true);
    expect(payload).not.toHaveProperty('action');
  });

  it('gives the same payloads for the same fast-check seed, and others for another', () => {
    const sample = (seed: number) => fc.sample(githubPayloadArbitrary('issues', 'assigned')!, { seed, numRuns: 5 });

    expect(sample(SEED)).toEqual(sample(SEED));
    expect(sample(SEED + 1)).not.toEqual(sample(SEED));
  });

  it('replays the payloads fc.assert saw from its seed', () => {
    const seen = (): unknown[] => {
      const payloads: unknown[] = [];
      fc.assert(
        fc.property(githubPayloadArbitrary('pull_request', 'opened')!, (payload) => {
          payloads.push(payload);
        }),
        { seed: SEED, numRuns: 5 },
      );
      return payloads;
    };

    expect(seen()).toEqual(seen());
  });

  it('gives null for a shape the schemas do not describe', () => {
    expect(githubPayloadArbitrary('no_such_event', 'opened')).toBeNull();
    expect(githubPayloadArbitrary('issues', 'no_such_action')).toBeNull();
    expect(githubPayloadArbitrary('issues', null)).toBeNull();
    expect(githubPayloadArbitrary('push', 'opened')).toBeNull();
  });
});

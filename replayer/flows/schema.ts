/** The shape of a flow file (the meaning is in specs/flows.md). Ops' arguments are checked by each op's own schema. */

const stringOrList = { anyOf: [{ type: 'string', minLength: 1 }, { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 }] };

const trigger = {
  type: 'object',
  additionalProperties: false,
  properties: { source: stringOrList, event: stringOrList, action: stringOrList, if: { type: 'string', minLength: 1 } },
};

/** `90s`, `30m`, `24h`, `7d`. */
export const DURATION_PATTERN = '^[1-9][0-9]*(s|m|h|d)$';
const DURATION_UNITS_US: Record<string, number> = { s: 1e6, m: 60e6, h: 3600e6, d: 86_400e6 };
export const durationUs = (text: string): number => Number(text.slice(0, -1)) * DURATION_UNITS_US[text.slice(-1)]!;

export const NODE_ID_PATTERN = '^[a-z_][a-z0-9_]*$';
export const FLOW_NAME_PATTERN = '^[a-z0-9][a-z0-9._-]*$';

export const FLOW_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'on', 'nodes'],
  properties: {
    name: { type: 'string', pattern: FLOW_NAME_PATTERN },
    description: { type: 'string' },
    on: { anyOf: [trigger, { type: 'array', items: trigger, minItems: 1 }] },
    dedup: {
      type: 'object',
      additionalProperties: false,
      properties: { key: { type: 'string', minLength: 1 }, window: { type: 'string', pattern: DURATION_PATTERN } },
    },
    nodes: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'op'],
        properties: {
          id: { type: 'string', pattern: NODE_ID_PATTERN },
          op: { type: 'string', minLength: 1 },
          description: { type: 'string' },
          with: { type: 'object' },
          if: { type: 'string', minLength: 1 },
          foreach: { type: 'string', minLength: 1 },
          needs: stringOrList,
          on_error: { enum: ['stop', 'continue'] },
        },
      },
    },
  },
} as const;

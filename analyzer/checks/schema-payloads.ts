/**
 * GitHub webhook payloads generated from the published JSON Schemas
 * (`@octokit/webhooks-schemas`) as fast-check arbitraries, so `hookshadow check` can
 * cover event shapes that captured traffic never showed.
 *
 * The package ships one `schema.json`: a root `oneOf` over one definition per event.
 * An event with actions is `<event>_event`, a `oneOf` of `$ref`s to `<event>$<action>`;
 * an event without actions is a single `<event>$event`. Every other definition
 * (`repository`, `user`, `pull-request`, ...) is shared through `#/definitions/...` refs.
 *
 * json-schema-faker turns a shape's schema into a value, seeded from fast-check. Each
 * payload is then checked against the published schema with ajv, so a faker quirk
 * cannot hand a property an invalid payload.
 */
import { createRequire } from 'node:module';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import fc from 'fast-check';
import { generateSync, type GenerateOptions, type JsonSchema } from 'json-schema-faker';

/** One payload shape the schemas describe: an event and, for events that have them, an action. */
export interface GithubEventShape {
  event: string;
  action: string | null;
}

/** The (event, action) pairs the schemas describe, sorted by event then action (null first). */
export function githubEventShapes(): GithubEventShape[] {
  return catalog().shapes.map(({ event, action }) => ({ event, action }));
}

/**
 * Payloads valid against the schema of that event and action, deterministic under
 * fast-check's seed. Null when the schemas have no such shape, or when no payload valid
 * against it can be made (in 7.6.1, `secret_scanning_alert_location`/`created`: its
 * `location` forbids every property its `oneOf` branches require).
 */
export function githubPayloadArbitrary(event: string, action: string | null): fc.Arbitrary<Record<string, unknown>> | null {
  const shape = catalog().shapes.find((s) => s.event === event && s.action === action);
  if (shape === undefined) return null;
  const generator = shapeGenerator(shape);
  if (!generator.satisfiable) return null;
  // The seed is the only input: shrinking it would just pick another unrelated payload.
  return fc.noShrink(fc.noBias(fc.integer())).map((seed) => {
    const payload = generator.payload(seed);
    if (payload === null) {
      throw new Error(`no payload valid against ${shape.definition} in ${MAX_ATTEMPTS} attempts from seed ${seed}: ${generator.lastError()} (a json-schema-faker regression?)`);
    }
    return payload;
  });
}

/**
 * Whether the schema of that event and action requires a key: `required(payload, at, key)`
 * is true when `payload` (which lacks the key) draws a "missing" complaint for `key` in the
 * object at JSON pointer `at`. Null when the schemas have no such shape. Other complaints
 * are ignored: a captured payload (redacted, trimmed) need not be valid as a whole.
 */
export function githubRequiredKeys(event: string, action: string | null): ((payload: unknown, at: string, key: string) => boolean) | null {
  const shape = catalog().shapes.find((s) => s.event === event && s.action === action);
  if (shape === undefined) return null;
  const ajv = (completeValidator ??= createValidator(catalog().published, { allErrors: true }));
  const validate = ajv.getSchema(`webhooks${DEFINITIONS}${shape.definition}`) as ValidateFunction;
  return (payload, at, key) =>
    !validate(payload) && (validate.errors ?? []).some((e) => e.keyword === 'required' && e.instancePath === at && (e.params as { missingProperty?: string }).missingProperty === key);
}

// ---------------------------------------------------------------------------
// Internals

type SchemaNode = Record<string, unknown>;

interface Shape extends GithubEventShape {
  /** The definition in schema.json, e.g. `issues$assigned` or `push$event`. */
  definition: string;
}

interface Catalog {
  /** The published schema, as shipped: what payloads are validated against. */
  published: { definitions: Record<string, SchemaNode>; oneOf: unknown[] };
  /** The same definitions rewritten for json-schema-faker (see `forFaker`). */
  fakerDefinitions: Record<string, unknown>;
  shapes: Shape[];
}

interface ShapeGenerator {
  /** False when the probe found no valid payload: the shape is left out rather than failing every run. */
  satisfiable: boolean;
  /** A valid payload for this seed, or null when every attempt failed validation. */
  payload(seed: number): Record<string, unknown> | null;
  lastError(): string;
}

const DEFINITIONS = '#/definitions/';

/** Generation settings: every required property, optional ones half the time, short arrays. */
const FAKER_OPTIONS: GenerateOptions = {
  alwaysFakeOptionals: false,
  optionalsProbability: 0.5,
  maxItems: 2,
  // The default depth (5) turns deeper objects into null: pull_request.base.repo.owner needs 8.
  maxDepth: 10,
};

/** A payload that fails validation is regenerated from a derived seed, at most this many times. */
const MAX_ATTEMPTS = 8;
/** The golden-ratio step spreads retry seeds away from neighbouring fast-check seeds. */
const RETRY_SEED_STEP = 0x9e3779b9;

let loaded: Catalog | undefined;
let validator: Ajv | undefined;
let completeValidator: Ajv | undefined;
const generators = new Map<string, ShapeGenerator>();

/** Loads the schema on first use, once: it is 600 KB of JSON that most runs never need. */
function catalog(): Catalog {
  if (loaded !== undefined) return loaded;
  const published = createRequire(import.meta.url)('@octokit/webhooks-schemas') as Catalog['published'];
  loaded = { published, fakerDefinitions: forFaker(published.definitions) as Record<string, unknown>, shapes: listShapes(published) };
  return loaded;
}

function listShapes(published: Catalog['published']): Shape[] {
  const shapes: Shape[] = [];
  for (const ref of published.oneOf) {
    const name = definitionName(ref);
    const definition = published.definitions[name];
    if (definition === undefined) throw new Error(`@octokit/webhooks-schemas: the root oneOf names ${name}, which has no definition`);
    if (Array.isArray(definition.oneOf)) {
      // `<event>_event`: one `<event>$<action>` definition per action.
      for (const actionRef of definition.oneOf) shapes.push(splitShapeName(definitionName(actionRef)));
    } else {
      shapes.push(splitShapeName(name));
    }
  }
  return shapes.sort((a, b) => compareText(a.event, b.event) || compareText(a.action ?? '', b.action ?? '') || compareText(a.definition, b.definition));
}

function definitionName(ref: unknown): string {
  const target = isRecord(ref) ? ref.$ref : undefined;
  if (typeof target !== 'string' || !target.startsWith(DEFINITIONS)) {
    throw new Error(`@octokit/webhooks-schemas: expected a local $ref to a definition, found ${JSON.stringify(ref)}`);
  }
  return target.slice(DEFINITIONS.length);
}

/** `issues$assigned` is issues/assigned; `push$event` is push with no action. */
function splitShapeName(definition: string): Shape {
  const at = definition.indexOf('$');
  if (at <= 0) throw new Error(`@octokit/webhooks-schemas: definition ${definition} is not named <event>$<action> or <event>$event`);
  const suffix = definition.slice(at + 1);
  return { event: definition.slice(0, at), action: suffix === 'event' ? null : suffix, definition };
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function shapeGenerator(shape: Shape): ShapeGenerator {
  const known = generators.get(shape.definition);
  if (known !== undefined) return known;
  const { published, fakerDefinitions } = catalog();
  const ajv = (validator ??= createValidator(published));
  const validate = ajv.getSchema(`webhooks${DEFINITIONS}${shape.definition}`) as ValidateFunction | undefined;
  if (validate === undefined) throw new Error(`@octokit/webhooks-schemas: no definition ${shape.definition}`);
  // The faker resolves `#/definitions/...` refs against the root it is given.
  const root: JsonSchema = { $ref: `${DEFINITIONS}${shape.definition}`, definitions: fakerDefinitions };
  let lastError = '';

  const payload = (seed: number): Record<string, unknown> | null => {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const value = generateSync(root, { ...FAKER_OPTIONS, seed: (seed + attempt * RETRY_SEED_STEP) | 0 });
      // What a delivery carries is a JSON body: the round trip leaves no undefined, Date or -0 behind.
      const candidate: unknown = JSON.parse(JSON.stringify(value));
      if (validate(candidate) && isRecord(candidate) && (shape.action === null || candidate.action === shape.action)) return candidate;
      lastError = validate.errors ? ajv.errorsText(validate.errors) : `action is not ${shape.action}`;
    }
    return null;
  };

  const generator: ShapeGenerator = { satisfiable: payload(0) !== null, payload, lastError: () => lastError };
  generators.set(shape.definition, generator);
  return generator;
}

function createValidator(published: Catalog['published'], opts: { allErrors?: boolean } = {}): Ajv {
  // strict: false because the schema carries its own keyword (tsAdditionalProperties) for type generation.
  const ajv = new Ajv({ strict: false, ...opts });
  addFormats.default(ajv);
  // Definitions only: with the root's oneOf over every event, ajv compiles all 66 events
  // (1.5 s) to reach one definition; without it, about 100 ms for the first shape.
  ajv.addSchema({ definitions: published.definitions }, 'webhooks');
  return ajv;
}

// Keywords whose values are data, not schemas: never rewritten.
const DATA_KEYWORDS = new Set(['const', 'default', 'enum', 'examples']);

/**
 * A copy of the schema that json-schema-faker 0.6 generates valid values from. It merges
 * `allOf` members property by property and goes wrong in two ways this schema hits:
 * it intersects `type` without filtering `enum`, so `{type: [string, null], enum: [..., null]}`
 * narrowed by `{type: 'null'}` still yields strings (`active_lock_reason` of issues/unlocked);
 * and it resolves a `$ref` with sibling keywords by a shallow spread, so `{$ref: category}`
 * narrowed by `{properties: {is_answerable}}` loses every other property (discussion/answered).
 * Both rewrites accept exactly the instances the original accepts: a member's `{type: 'null'}`
 * property gains `const: null`, and a member's object property is wrapped in `allOf`, which
 * the faker merges only after resolving the `$ref`.
 */
function forFaker(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(forFaker);
  if (!isRecord(node)) return node;
  const copy: SchemaNode = {};
  for (const [key, value] of Object.entries(node)) copy[key] = DATA_KEYWORDS.has(key) ? value : forFaker(value);
  if (Array.isArray(copy.allOf)) copy.allOf = copy.allOf.map(narrowingMember);
  return copy;
}

function narrowingMember(member: unknown): unknown {
  if (!isRecord(member) || !isRecord(member.properties)) return member;
  const properties = Object.fromEntries(Object.entries(member.properties).map(([name, property]) => [name, narrowingProperty(property)]));
  return { ...member, properties };
}

function narrowingProperty(property: unknown): unknown {
  if (!isRecord(property)) return property;
  if (property.type === 'null' && !('const' in property) && !('enum' in property)) return { ...property, const: null };
  if (isRecord(property.properties)) return { allOf: [property] };
  return property;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

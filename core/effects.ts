/**
 * The effect model: one vocabulary for "what a webhook handler did to the world",
 * shared by the flow engine (a mutating node's intent) and the analyzer (the legacy
 * handler's captured HTTP calls, mapped by route maps). `specs/effects.md` lists the
 * kinds and their targets; this file is the single definition the code uses.
 */

export const EFFECT_CLASSES = ['pure', 'read', 'mutate'] as const;
/** `pure`: computes only. `read`: fetches from an upstream, changes nothing. `mutate`: changes the world. */
export type EffectClass = (typeof EFFECT_CLASSES)[number];

/** What changed, on what, with which arguments; e.g. `{ kind: "issue.comment", target: "octo/repo#12", args: { body } }`. */
export interface Effect {
  kind: string;
  target: string;
  args: Record<string, unknown>;
}

/** The exact HTTP request an op sends: `path` is relative to the upstream's base URL, as the recorder stores it. */
export interface HttpRequestIntent {
  upstream: string;
  method: string;
  path: string;
  body: unknown;
}

/** A mutating node's intent: the effect, plus the request that would carry it out. */
export interface Intent extends Effect {
  request: HttpRequestIntent;
}

/** The built-in effect kinds (users' ops may add more; see specs/effects.md). */
export const EFFECT_KINDS = [
  'issue.create',
  'issue.comment',
  'issue.labels.add',
  'issue.labels.remove',
  'issue.assign',
  'issue.unassign',
  'issue.close',
  'issue.reopen',
  'pr.review.request',
  'pr.merge',
  'agent.enqueue',
] as const;

/** Target of an issue or pull request (they share one number space): `owner/repo#N`. */
export function issueTarget(repo: string, number: number | string): string {
  return `${repo}#${number}`;
}

/** Target of an agent-queue job: `queue:<name>`. */
export function queueTarget(queue: string): string {
  return `queue:${queue}`;
}

/** An HTTP call no route map names: kind `http.<METHOD>`, target `<upstream>:<path without query>`. */
export function httpEffect(upstream: string, method: string, path: string, body: unknown): Effect {
  const args = body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : body === null || body === undefined ? {} : { body };
  return { kind: `http.${method.toUpperCase()}`, target: `${upstream}:${path.split('?')[0]}`, args };
}

/**
 * JSON with object keys sorted at every level: the byte-stable form intents and
 * outputs are written in, so the same replay gives byte-identical files.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  // Expression results may be bigints (CEL ints); JSON has one number type.
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Date) return value.toISOString();
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    const v = (value as Record<string, unknown>)[key];
    if (v !== undefined) out[key] = sortKeys(v);
  }
  return out;
}

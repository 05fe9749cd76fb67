import { createHmac, timingSafeEqual } from 'node:crypto';
import { SOURCES, type Source } from '../core/capture-schema.js';

export function isSource(value: string): value is Source {
  return (SOURCES as readonly string[]).includes(value);
}

type Headers = Record<string, string | string[] | undefined>;

function header(headers: Headers, ...names: string[]): string | null {
  for (const name of names) {
    const v = headers[name];
    const s = Array.isArray(v) ? v[0] : v;
    if (s) return s;
  }
  return null;
}

/** What each forge puts in its delivery headers, and how it signs. */
interface SourceSpec {
  eventHeaders: string[];
  deliveryHeaders: string[];
  /** null: no signature header present at all. */
  verify(raw: Buffer, headers: Headers, secrets: string[]): Promise<boolean>;
}

/** Compares a hex HMAC-SHA256 of the raw bytes with each secret's, in constant time. */
function verifyHexHmacValue(raw: Buffer, given: string, secrets: string[]): boolean {
  if (!/^[0-9a-fA-F]{64}$/.test(given)) return false;
  const givenBytes = Buffer.from(given, 'hex');
  let ok = false;
  for (const secret of secrets) {
    // Check every secret, so timing does not reveal which one matched.
    const expected = createHmac('sha256', secret).update(raw).digest();
    ok = timingSafeEqual(expected, givenBytes) || ok;
  }
  return ok;
}

/** Hex HMAC-SHA256 of the raw body, as Gitea and Forgejo send it. */
function verifyHexHmac(headerNames: string[]) {
  return async (raw: Buffer, headers: Headers, secrets: string[]): Promise<boolean> => {
    const given = header(headers, ...headerNames);
    return given !== null && verifyHexHmacValue(raw, given, secrets);
  };
}

/**
 * GitHub's `X-Hub-Signature-256: sha256=<hex>`, an HMAC of the raw bytes. Checked with
 * Node's HMAC and timingSafeEqual over the bytes themselves: @octokit/webhooks-methods
 * takes the body as a string, and decoding invalid UTF-8 to a string maps different
 * bodies to the same text, so one body's signature would validate another.
 */
async function verifyGitHub(raw: Buffer, headers: Headers, secrets: string[]): Promise<boolean> {
  const given = header(headers, 'x-hub-signature-256');
  return given !== null && given.startsWith('sha256=') && verifyHexHmacValue(raw, given.slice('sha256='.length), secrets);
}

/** GitLab sends the shared token itself in `X-Gitlab-Token`; compared in constant time over equal-length digests. */
async function verifyGitLabToken(_raw: Buffer, headers: Headers, secrets: string[]): Promise<boolean> {
  const given = header(headers, 'x-gitlab-token');
  if (!given) return false;
  const digest = (s: string) => createHmac('sha256', 'hookshadow-token-compare').update(s).digest();
  const givenDigest = digest(given);
  let ok = false;
  for (const secret of secrets) ok = timingSafeEqual(digest(secret), givenDigest) || ok;
  return ok;
}

const SPECS: Record<Source, SourceSpec> = {
  github: { eventHeaders: ['x-github-event'], deliveryHeaders: ['x-github-delivery'], verify: verifyGitHub },
  gitea: {
    eventHeaders: ['x-gitea-event', 'x-github-event'],
    deliveryHeaders: ['x-gitea-delivery', 'x-github-delivery'],
    verify: verifyHexHmac(['x-gitea-signature']),
  },
  forgejo: {
    eventHeaders: ['x-forgejo-event', 'x-gitea-event', 'x-github-event'],
    deliveryHeaders: ['x-forgejo-delivery', 'x-gitea-delivery', 'x-github-delivery'],
    verify: verifyHexHmac(['x-forgejo-signature', 'x-gitea-signature']),
  },
  gitlab: { eventHeaders: ['x-gitlab-event'], deliveryHeaders: ['x-gitlab-event-uuid'], verify: verifyGitLabToken },
  generic: {
    eventHeaders: ['x-hookshadow-event', 'x-event-type', 'x-github-event'],
    deliveryHeaders: ['x-hookshadow-delivery-id', 'x-delivery-id', 'x-request-id', 'x-github-delivery'],
    verify: verifyGitHub,
  },
};

/** The event name, delivery id and payload facts a delivery's headers and body tell. */
export interface DeliveryFacts {
  event: string | null;
  deliveryId: string | null;
  action: string | null;
  repository: string | null;
  issueNumber: number | null;
}

/** Reads a delivery's identity from its headers and (parsed) payload. */
export function deliveryFacts(source: Source, headers: Headers, payload: unknown): DeliveryFacts {
  const spec = SPECS[source];
  const p = (typeof payload === 'object' && payload !== null ? payload : {}) as Record<string, any>;
  let event = header(headers, ...spec.eventHeaders);
  let action: unknown = p.action;
  let repository: unknown = p.repository?.full_name;
  let number: unknown = p.issue?.number ?? p.pull_request?.number ?? p.number;
  if (source === 'gitlab') {
    // GitLab's header says "Issue Hook"; the payload's object_kind ("issue", "merge_request", "note") is the event.
    event = typeof p.object_kind === 'string' ? p.object_kind : event;
    action = p.object_attributes?.action ?? action;
    repository = p.project?.path_with_namespace ?? repository;
    number = p.object_attributes?.iid ?? p.merge_request?.iid ?? p.issue?.iid ?? null;
  }
  if (source === 'generic' && !event && typeof p.event === 'string') event = p.event;
  return {
    event,
    deliveryId: header(headers, ...spec.deliveryHeaders),
    action: typeof action === 'string' ? action : null,
    repository: typeof repository === 'string' ? repository : null,
    issueNumber: Number.isSafeInteger(number) ? (number as number) : null,
  };
}

/** Verifies a delivery's signature; null when no secret is configured for the source. */
export async function verifySignature(source: Source, raw: Buffer, headers: Headers, secrets: string[] | undefined): Promise<boolean | null> {
  if (!secrets || secrets.length === 0) return null;
  return SPECS[source].verify(raw, headers, secrets);
}

/** Every header a forge signs a delivery with: stripped before a delivery is re-signed. */
export const SIGNATURE_HEADERS = ['x-hub-signature-256', 'x-hub-signature', 'x-gitea-signature', 'x-forgejo-signature', 'x-gitlab-token'];

/** The signature headers a source would send for `raw` under `secret` (the inverse of verifySignature). */
export function signatureHeaders(source: Source, raw: Buffer, secret: string): Record<string, string> {
  const hex = () => createHmac('sha256', secret).update(raw).digest('hex');
  switch (source) {
    case 'github':
    case 'generic':
      return { 'x-hub-signature-256': `sha256=${hex()}` };
    case 'gitea':
      return { 'x-gitea-signature': hex() };
    case 'forgejo':
      return { 'x-forgejo-signature': hex(), 'x-gitea-signature': hex() };
    case 'gitlab':
      return { 'x-gitlab-token': secret };
  }
}

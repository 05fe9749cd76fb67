import type { Correlation } from '../core/capture-schema.js';

/** The header the recorder adds to forwarded deliveries and reads back on the legacy handler's calls. */
export const DELIVERY_HEADER = 'x-hookshadow-delivery';

export interface Attribution {
  delivery_id: string | null;
  correlation: Correlation;
}

interface Recent {
  deliveryId: string;
  receivedAtUs: number;
}

/** Recent deliveries kept per repository and issue; the newest within the window is the one inferred. */
const MAX_PER_SUBJECT = 8;

/** `owner/repo#N` from API paths (GitHub, Gitea/Forgejo `/api/v1`, GitLab `/projects/:id/...`) and web URLs in bodies. */
const PATH_SUBJECT = /\/repos\/([^/?#\s"]+)\/([^/?#\s"]+)\/(?:issues|pulls)\/(\d+)/;
const GITLAB_SUBJECT = /\/projects\/([^/?#\s"]+)\/(?:issues|merge_requests)\/(\d+)/;
const URL_SUBJECT = /https?:\/\/[^/\s"]+\/([^/\s"]+)\/([^/\s"]+)\/(?:issues|pull|pulls|-\/issues|-\/merge_requests)\/(\d+)/;

/** The repository and issue/PR number a call is about, if its path or body names one. */
export function callSubject(path: string, body: string | null): string | null {
  const p = PATH_SUBJECT.exec(path);
  if (p) return subjectKey(`${decode(p[1]!)}/${decode(p[2]!)}`, Number(p[3]));
  const g = GITLAB_SUBJECT.exec(path);
  if (g) return subjectKey(decode(g[1]!), Number(g[2]));
  const u = body ? URL_SUBJECT.exec(body) : null;
  if (u) return subjectKey(`${u[1]}/${u[2]}`, Number(u[3]));
  return null;
}

/** Percent-decodes a path segment; a malformed escape is kept as written rather than failing the call. */
function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

export function subjectKey(repository: string, number: number): string {
  return `${repository.toLowerCase()}#${number}`;
}

/**
 * Ties the legacy handler's calls to deliveries. A call carrying X-Hookshadow-Delivery
 * is `exact`; otherwise the most recent delivery about the same repository and
 * issue/PR, received within the window before the call, is `inferred`; else `none`.
 */
export function createAttributionIndex(windowUs: number, opts: { prune?: boolean } = {}) {
  const bySubject = new Map<string, Recent[]>();
  let lastPruneUs = 0;

  const prune = (nowUs: number) => {
    // Amortized: a sweep every quarter window keeps the index to about one window of subjects.
    if (opts.prune === false || nowUs - lastPruneUs < windowUs / 4) return;
    lastPruneUs = nowUs;
    for (const [key, list] of bySubject) {
      const kept = list.filter((r) => nowUs - r.receivedAtUs <= windowUs);
      if (kept.length === 0) bySubject.delete(key);
      else bySubject.set(key, kept);
    }
  };

  return {
    remember(deliveryId: string, repository: string | null, issueNumber: number | null, receivedAtUs: number): void {
      if (!repository || issueNumber === null) return;
      const key = subjectKey(repository, issueNumber);
      const list = bySubject.get(key) ?? [];
      list.push({ deliveryId, receivedAtUs });
      // Only the most recent deliveries about a subject can win; older ones need not be kept (bounded memory).
      if (list.length > MAX_PER_SUBJECT && opts.prune !== false) list.shift();
      bySubject.set(key, list);
      prune(receivedAtUs);
    },
    attribute(call: { headerDeliveryId: string | null; path: string; body: string | null; atUs: number }): Attribution {
      if (call.headerDeliveryId) return { delivery_id: call.headerDeliveryId, correlation: 'exact' };
      const key = callSubject(call.path, call.body);
      const candidates = key ? bySubject.get(key) : undefined;
      let best: Recent | null = null;
      for (const r of candidates ?? []) {
        const age = call.atUs - r.receivedAtUs;
        if (age >= 0 && age <= windowUs && (!best || r.receivedAtUs > best.receivedAtUs)) best = r;
      }
      return best ? { delivery_id: best.deliveryId, correlation: 'inferred' } : { delivery_id: null, correlation: 'none' };
    },
    size: () => bySubject.size,
  };
}

export type AttributionIndex = ReturnType<typeof createAttributionIndex>;

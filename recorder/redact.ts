import { createHmac } from 'node:crypto';
import type { RecorderConfig } from './config.js';

/** Header names that carry credentials, whatever the forge. */
const SENSITIVE_HEADER = /^(authorization|proxy-authorization|cookie|set-cookie)$|token|secret|password|passwd|api[-_]?key|credential|session/i;
/** Query parameters that carry credentials (access_token, private_token, client_secret, sig, ...). */
const SENSITIVE_PARAM = /token|secret|password|passwd|api[-_]?key|^key$|^sig$|signature|credential|session|^code$|^auth/i;

export interface Redacted<T> {
  value: T;
  /** What was redacted, e.g. `header:authorization`, `query:access_token`, `body:installation.token`. */
  redacted: string[];
}

/** Removes secrets before anything touches disk. One instance per config; pure apart from the HMAC key. */
export interface Redactor {
  headers(headers: Record<string, string | string[] | undefined>): Redacted<Record<string, string>>;
  path(pathWithQuery: string): Redacted<string>;
  /** Redacts configured JSON paths in place in the raw text, keeping every other byte as received. */
  body(text: string | null): Redacted<string | null>;
}

export function createRedactor(cfg: RecorderConfig['redaction']): Redactor {
  const extraHeaders = new Set(cfg.headers.map((h) => h.toLowerCase()));
  const extraParams = new Set(cfg.query_params.map((p) => p.toLowerCase()));
  const bodyPaths = cfg.body_paths.map((p) => p.split('.'));
  const key = cfg.key;
  const replace = (value: string): string =>
    cfg.mode === 'hmac' && key ? `hmac-sha256:${createHmac('sha256', key).update(value).digest('hex').slice(0, 32)}` : '[REDACTED]';

  return {
    headers(headers) {
      const out: Record<string, string> = {};
      const redacted: string[] = [];
      for (const [name, raw] of Object.entries(headers)) {
        if (raw === undefined) continue;
        const lower = name.toLowerCase();
        const value = Array.isArray(raw) ? raw.join(', ') : raw;
        if (SENSITIVE_HEADER.test(lower) || extraHeaders.has(lower)) {
          out[lower] = replace(value);
          redacted.push(`header:${lower}`);
        } else {
          out[lower] = value;
        }
      }
      return { value: out, redacted };
    },
    path(pathWithQuery) {
      const q = pathWithQuery.indexOf('?');
      if (q < 0) return { value: pathWithQuery, redacted: [] };
      const params = new URLSearchParams(pathWithQuery.slice(q + 1));
      const redacted: string[] = [];
      for (const name of new Set(params.keys())) {
        if (SENSITIVE_PARAM.test(name) || extraParams.has(name.toLowerCase())) {
          params.set(name, replace(params.getAll(name).join(',')));
          redacted.push(`query:${name}`);
        }
      }
      if (redacted.length === 0) return { value: pathWithQuery, redacted };
      return { value: `${pathWithQuery.slice(0, q)}?${params.toString()}`, redacted };
    },
    body(text) {
      if (text === null || bodyPaths.length === 0) return { value: text, redacted: [] };
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        return { value: text, redacted: [] };
      }
      let out = text;
      let reserialize = false;
      const redacted = new Set<string>();
      for (const path of bodyPaths) {
        const key = path[path.length - 1]!;
        // JSON.parse keeps only the last of duplicate keys; an earlier one would escape the in-place edit.
        if (key !== '*' && countKeyInText(out, key) > countKeyInTree(parsed, key)) reserialize = true;
        for (const value of valuesAt(parsed, path)) {
          redacted.add(`body:${path.join('.')}`);
          // In place where the literal can be found unambiguously, so the rest of the body stays byte-exact:
          // a string literal anywhere (the same secret elsewhere is a secret too), a number or boolean only after its key.
          const literal = JSON.stringify(value);
          const masked = JSON.stringify(replace(typeof value === 'string' ? value : literal));
          if (typeof value === 'string' && out.includes(literal)) {
            out = out.split(literal).join(masked);
          } else if ((typeof value === 'number' || typeof value === 'boolean') && key !== '*') {
            const pattern = new RegExp(`(${escapeRegExp(JSON.stringify(key))}\\s*:\\s*)${escapeRegExp(literal)}(?=\\s*[,}])`, 'g');
            const next = out.replace(pattern, (_m, prefix: string) => `${prefix}${masked}`);
            if (next === out) reserialize = true;
            out = next;
          } else {
            reserialize = true;
          }
        }
      }
      if (reserialize) {
        // A value written with other escapes, or a whole object: never keep a secret for the sake of byte-exactness.
        for (const path of bodyPaths) redactAt(parsed, path, (v) => replace(typeof v === 'string' ? v : JSON.stringify(v)));
        out = JSON.stringify(parsed);
        redacted.add('body:reserialized');
      }
      return { value: out, redacted: [...redacted] };
    },
  };
}

function countKeyInText(text: string, key: string): number {
  return text.match(new RegExp(`${escapeRegExp(JSON.stringify(key))}\\s*:`, 'g'))?.length ?? 0;
}

function countKeyInTree(node: unknown, key: string): number {
  if (typeof node !== 'object' || node === null) return 0;
  let n = 0;
  for (const [k, v] of Object.entries(node)) n += (k === key ? 1 : 0) + countKeyInTree(v, key);
  return n;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Replaces, in place, every value at a dotted path (`*` = every key or index). */
function redactAt(node: unknown, path: string[], replacement: (v: unknown) => string): void {
  if (typeof node !== 'object' || node === null || path.length === 0) return;
  const [head, ...rest] = path;
  const obj = node as Record<string, unknown>;
  const keys = head === '*' ? Object.keys(obj) : Object.hasOwn(obj, head!) ? [head!] : [];
  for (const k of keys) {
    if (rest.length === 0) obj[k] = replacement(obj[k]);
    else redactAt(obj[k], rest, replacement);
  }
}

/** Values at a dotted path; `*` matches every key or index at that level. */
function valuesAt(node: unknown, path: string[]): unknown[] {
  if (path.length === 0) return [node];
  if (typeof node !== 'object' || node === null) return [];
  const [head, ...rest] = path;
  const children = head === '*' ? Object.values(node) : [(node as Record<string, unknown>)[head!]];
  return children.filter((c) => c !== undefined).flatMap((c) => valuesAt(c, rest));
}

/**
 * Small, pure helpers over a parsed JSON payload: where its keys, strings and lists
 * are, and copies with one thing changed. Mutations and metamorphic transforms use
 * them; nothing here knows about webhooks.
 */

export type JsonPath = (string | number)[];
type Json = unknown;

const isObject = (v: Json): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Every object key's path, depth first in key order, up to `limit` paths. */
export function keyPaths(value: Json, limit = Infinity): JsonPath[] {
  const out: JsonPath[] = [];
  const walk = (v: Json, path: JsonPath) => {
    if (out.length >= limit) return;
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i]));
    else if (isObject(v)) {
      for (const [k, x] of Object.entries(v)) {
        if (out.length >= limit) return;
        out.push([...path, k]);
        walk(x, [...path, k]);
      }
    }
  };
  walk(value, []);
  return out;
}

/** Paths of the values that satisfy `test`, depth first. */
export function pathsWhere(value: Json, test: (v: Json) => boolean): JsonPath[] {
  const out: JsonPath[] = [];
  const walk = (v: Json, path: JsonPath) => {
    if (test(v)) out.push(path);
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i]));
    else if (isObject(v)) for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
  };
  walk(value, []);
  return out;
}

export function getAt(value: Json, path: JsonPath): Json {
  let v = value;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, Json>)[k];
  }
  return v;
}

/** A copy with the value at `path` replaced by `fn(old)`; `undefined` from `fn` deletes the key. Missing parents: unchanged. */
export function replaceAt(value: Json, path: JsonPath, fn: (old: Json) => Json): Json {
  if (path.length === 0) return fn(value);
  const [head, ...rest] = path;
  if (Array.isArray(value) && typeof head === 'number' && head < value.length) {
    const copy = [...value];
    const next = replaceAt(value[head], rest, fn);
    if (next === undefined) copy.splice(head, 1);
    else copy[head] = next;
    return copy;
  }
  if (isObject(value) && typeof head === 'string' && (head in value || rest.length === 0)) {
    const copy = { ...value };
    const next = replaceAt(value[head], rest, fn);
    if (next === undefined) delete copy[head];
    else copy[head] = next;
    return copy;
  }
  return value;
}

/** Is `prefix` a prefix of (or equal to) `path`? */
export function startsWith(path: JsonPath, prefix: readonly (string | number)[]): boolean {
  return prefix.length <= path.length && prefix.every((k, i) => String(path[i]) === String(k));
}

/**
 * A deep copy with every object's keys in a new order, decided by `rank(path, key)`;
 * values, arrays and their order are untouched.
 */
export function reorderKeys(value: Json, rank: (path: JsonPath, key: string) => number, path: JsonPath = []): Json {
  if (Array.isArray(value)) return value.map((x, i) => reorderKeys(x, rank, [...path, i]));
  if (!isObject(value)) return value;
  const keys = Object.keys(value).sort((a, b) => rank(path, a) - rank(path, b) || (a < b ? -1 : a > b ? 1 : 0));
  return Object.fromEntries(keys.map((k) => [k, reorderKeys(value[k], rank, [...path, k])]));
}

/** The JSON text size of a value, for comparing a counterexample before and after shrinking. */
export const jsonSize = (value: Json): number => JSON.stringify(value)?.length ?? 0;

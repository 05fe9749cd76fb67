/**
 * The JSON paths divergences name (`$.labels[0]`, `$.body`, `$["x-y"]`) and the
 * patterns rules match them with (`$.items[*].name`, `$.*`). Only this small subset:
 * member names, indexes and `*` wildcards; no filters, no recursion.
 */

export type Segment = string | number;

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function formatPath(segments: readonly Segment[]): string {
  let out = '$';
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else out += IDENT.test(s) ? `.${s}` : `[${JSON.stringify(s)}]`;
  }
  return out;
}

/** A compiled pattern: each segment a name, an index, or `*` (any one segment). */
export type PathPattern = (Segment | '*')[];

// One segment: `.name`, `.*`, `[3]`, `[*]` or `["any name"]`.
const TOKEN = /\.([A-Za-z_][A-Za-z0-9_]*|\*)|\[(\d+|\*|"(?:[^"\\]|\\.)*")\]/y;

/** Parses `$.a[0].b`-style patterns; throws with a message naming what is wrong. */
export function parsePathPattern(text: string): PathPattern {
  if (!text.startsWith('$')) throw new Error(`path "${text}" must start with "$" (e.g. "$.body" or "$.labels[*]")`);
  const out: PathPattern = [];
  TOKEN.lastIndex = 1;
  while (TOKEN.lastIndex < text.length) {
    const at = TOKEN.lastIndex;
    const m = TOKEN.exec(text);
    if (!m) throw new Error(`path "${text}" is not understood at column ${at + 1}: use .name, ["name"], [index] or * segments`);
    const [, name, bracket] = m;
    if (name !== undefined) out.push(name);
    else if (bracket === '*') out.push('*');
    else if (bracket!.startsWith('"')) out.push(JSON.parse(bracket!) as string);
    else out.push(Number(bracket));
  }
  return out;
}

/** Whether a concrete path is matched by the pattern exactly (same length) or, with `prefix`, lies under it. */
export function pathMatches(pattern: PathPattern, path: readonly Segment[], prefix = false): boolean {
  if (prefix ? path.length < pattern.length : path.length !== pattern.length) return false;
  return pattern.every((p, i) => p === '*' || p === path[i]);
}

/**
 * Applies `fn` to every value the pattern selects in `root`, replacing it with the
 * result (`undefined` deletes it). Returns whether anything was selected.
 * Mutates `root`: callers pass a private copy.
 */
export function updateAt(root: unknown, pattern: PathPattern, fn: (value: unknown) => unknown): boolean {
  if (pattern.length === 0) return false; // the args object itself is never replaced
  let hit = false;
  const walk = (parent: unknown, depth: number): void => {
    if (parent === null || typeof parent !== 'object') return;
    const seg = pattern[depth]!;
    const keys: Segment[] =
      seg === '*' ? (Array.isArray(parent) ? parent.map((_, i) => i) : Object.keys(parent)) : [seg];
    const last = depth === pattern.length - 1;
    // Deleting array elements while walking them would shift later indexes: collect, then splice from the end.
    const removed: number[] = [];
    for (const key of keys) {
      const container = parent as Record<string | number, unknown>;
      if (Array.isArray(parent) ? typeof key !== 'number' || key >= parent.length : typeof key !== 'string' || !Object.hasOwn(parent, key)) continue;
      if (!last) {
        walk(container[key], depth + 1);
        continue;
      }
      hit = true;
      const next = fn(container[key]);
      if (next === undefined) {
        if (Array.isArray(parent)) removed.push(key as number);
        else delete container[key];
      } else container[key] = next;
    }
    for (const i of removed.reverse()) (parent as unknown[]).splice(i, 1);
  };
  walk(root, 0);
  return hit;
}

import type { ErrorObject, ValidateFunction } from 'ajv';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node as YamlNode } from 'yaml';

/**
 * Loading a hand-written YAML file (flows, route maps, rules) so every problem is
 * reported at its line and column: parse with positions, check the shape with a JSON
 * schema, and turn each schema error into `file:line:col: message`.
 */

export type YamlPath = (string | number)[];

export interface Position {
  line: number;
  col: number;
}

/** Positions inside one YAML file: a path of keys/indexes to line:col. */
export class Locator {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  /** The node at `path` (or its key when `key` is true); falls back to the nearest existing ancestor. */
  private find(path: YamlPath, key: boolean): YamlNode | null {
    let node: unknown = this.doc.contents;
    let keyNode: unknown = null;
    for (const seg of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === seg);
        if (!pair) break;
        keyNode = pair.key;
        node = pair.value;
      } else if (isSeq(node) && typeof seg === 'number' && node.items[seg]) {
        keyNode = null;
        node = node.items[seg];
      } else break;
    }
    return ((key && keyNode) || node) as YamlNode | null;
  }

  /** Where `path` is; `offset` moves into a single-line string scalar (e.g. to an expression's error). */
  at(path: YamlPath, opts: { key?: boolean; offset?: number } = {}): Position {
    const node = this.find(path, opts.key ?? false);
    let start = node?.range?.[0] ?? 0;
    if (opts.offset && isScalar(node) && typeof node.value === 'string' && !node.value.includes('\n')) {
      const quoted = node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE';
      start += (quoted ? 1 : 0) + opts.offset;
    }
    const pos = this.lines.linePos(start);
    return { line: pos.line, col: pos.col };
  }
}

export type ParsedYaml = { ok: true; value: unknown; loc: Locator } | { ok: false; errors: (Position & { message: string })[] };

/** Parses YAML with positions; duplicate keys are errors. */
export function parseYamlSource(text: string): ParsedYaml {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      errors: doc.errors.map((e) => {
        const pos = e.linePos?.[0] ?? lines.linePos(e.pos[0]);
        return { line: pos.line, col: pos.col, message: e.message.split('\n')[0]! };
      }),
    };
  }
  return { ok: true, value: doc.toJS(), loc: new Locator(doc, lines) };
}

export function ajvPath(e: ErrorObject): YamlPath {
  return e.instancePath
    .split('/')
    .slice(1)
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s.replaceAll('~1', '/').replaceAll('~0', '~')));
}

/** Each schema error as a positioned, readable message (`unknown key "x" in routes.0`, `missing "kind"`, ...). */
export function schemaProblems(validate: ValidateFunction, loc: Locator, what: string): (Position & { message: string })[] {
  const out: (Position & { message: string })[] = [];
  for (const e of validate.errors ?? []) {
    if (e.keyword === 'anyOf' || e.keyword === 'oneOf') continue;
    const path = ajvPath(e);
    const where = path.length ? ` in ${path.join('.')}` : '';
    if (e.keyword === 'additionalProperties') {
      const key = (e.params as { additionalProperty: string }).additionalProperty;
      out.push({ ...loc.at([...path, key], { key: true }), message: `unknown key "${key}"${where}` });
    } else if (e.keyword === 'required') {
      out.push({ ...loc.at(path), message: `missing "${(e.params as { missingProperty: string }).missingProperty}"${where}` });
    } else {
      out.push({ ...loc.at(path), message: `${path.join('.') || what} ${e.message}` });
    }
  }
  return out;
}

/** The candidate closest to `name` by edit distance, when close enough to be a likely typo. */
export function closest(name: string, candidates: Iterable<string>): string | null {
  let best: string | null = null;
  let bestScore = Infinity;
  for (const c of candidates) {
    const d = editDistance(name, c);
    if (d < bestScore) [best, bestScore] = [c, d];
  }
  return best !== null && bestScore <= Math.max(2, Math.floor(name.length / 4)) ? best : null;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}

import { Lexer, type Token, type Tokens } from 'marked';
import { LineCounter, isMap, isScalar, parseDocument, type Document } from 'yaml';
import { HsError } from '../../core/errors.js';

/** Rows of a result table shown unless the block says `rows=N`. */
export const DEFAULT_MAX_ROWS = 50;
/** The most `rows=N` may ask for: a report is for reading, an export is `hookshadow sql`'s job. */
export const MAX_ROWS_LIMIT = 10_000;

const NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;
const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export interface ParamDecl {
  name: string;
  default: string | null;
}

/** A notebook, checked and split into the cells it will run, with 1-based source lines. */
export interface ParsedNotebook {
  file: string;
  title: string | null;
  /** Declared by the `params` block, in its order; empty without one. */
  params: ParamDecl[];
  cells: SourceCell[];
}

export type SourceCell =
  | { type: 'markdown'; line: number; markdown: string }
  | { type: 'params'; line: number }
  | { type: 'sql'; line: number; name: string | null; info: string; sql: string; maxRows: number }
  /** `data`: the index in `cells` of the sql block it draws. */
  | { type: 'chart'; line: number; data: number; spec: Record<string, unknown> };

interface Problem {
  line: number;
  message: string;
}

interface InfoString {
  lang: string;
  attrs: Map<string, string>;
  bad: string[];
}

/** `lang key=value key=value`: the first word picks the block type, the rest are its attributes. */
function parseInfo(info: string): InfoString {
  const [lang = '', ...words] = info.trim().split(/\s+/);
  const attrs = new Map<string, string>();
  const bad: string[] = [];
  for (const word of words) {
    const eq = word.indexOf('=');
    if (eq <= 0 || eq === word.length - 1 || attrs.has(word.slice(0, eq))) bad.push(word);
    else attrs.set(word.slice(0, eq), word.slice(eq + 1));
  }
  return { lang: lang.toLowerCase(), attrs, bad };
}

const BLOCK_ATTRS: Record<string, string[]> = { sql: ['name', 'rows'], 'vega-lite': ['data'], params: [] };

/**
 * Splits a notebook into prose, a params block, sql blocks and chart blocks, and
 * checks it before anything runs, reporting every problem at once as FILE:LINE.
 * Only top-level fenced blocks count: one inside a list or quote is an example.
 */
export function parseNotebook(source: string, file: string): ParsedNotebook {
  // marked normalizes line ends itself; doing it first keeps token.raw findable in the source.
  const text = source.replace(/\r\n?/g, '\n');
  const tokens = new Lexer({ gfm: true }).lex(text);
  const problems: Problem[] = [];
  const cells: SourceCell[] = [];
  const names = new Map<string, number>();
  let params: ParamDecl[] | null = null;
  let title: string | null = null;
  let prose: { line: number; parts: string[] } | null = null;
  let offset = 0;
  let lineOfOffset = 1;

  const flushProse = () => {
    const markdown = prose?.parts.join('').replace(/^\n+|\s+$/g, '') ?? '';
    if (prose && markdown !== '') cells.push({ type: 'markdown', line: prose.line, markdown });
    prose = null;
  };

  for (const token of tokens) {
    // Lines come from where each token's raw text sits in the source: marked's tokens carry no positions.
    const at = text.indexOf(token.raw, offset);
    const start = at >= 0 ? at : offset;
    lineOfOffset += countNewlines(text, offset, start);
    const line = lineOfOffset + leadingNewlines(token.raw);
    lineOfOffset += countNewlines(text, start, start + token.raw.length);
    offset = start + token.raw.length;

    if (title === null && token.type === 'heading' && (token as Tokens.Heading).depth === 1) title = (token as Tokens.Heading).text;
    const code = token.type === 'code' && isFenced(token) ? (token as Tokens.Code) : null;
    const block = code ? parseInfo(code.lang ?? '') : null;
    if (!code || !block || !Object.hasOwn(BLOCK_ATTRS, block.lang)) {
      prose ??= { line, parts: [] };
      prose.parts.push(token.raw);
      continue;
    }
    flushProse();
    const allowed = BLOCK_ATTRS[block.lang]!;
    for (const word of block.bad) problems.push({ line, message: `${block.lang} block: ${JSON.stringify(word)} is not KEY=VALUE (or repeats a key)` });
    for (const key of block.attrs.keys()) {
      if (!allowed.includes(key)) problems.push({ line, message: `${block.lang} block: unknown attribute ${JSON.stringify(key)}${allowed.length ? ` (it takes ${allowed.join(', ')})` : ''}` });
    }

    if (block.lang === 'params') {
      if (params !== null) problems.push({ line, message: 'a notebook has at most one params block' });
      params = parseParams(code.text, line + 1, problems);
      cells.push({ type: 'params', line });
    } else if (block.lang === 'sql') {
      const name = block.attrs.get('name') ?? null;
      if (name !== null && !NAME.test(name)) problems.push({ line, message: `sql block: name=${name} must be letters, digits, _ or -, starting with a letter or _` });
      else if (name !== null && names.has(name)) problems.push({ line, message: `sql block: name=${name} is already used by the sql block at line ${cellLine(cells, names.get(name)!)}` });
      if (code.text.trim() === '') problems.push({ line, message: 'sql block is empty' });
      const maxRows = parseRows(block.attrs.get('rows'), line, problems);
      if (name !== null) names.set(name, cells.length);
      cells.push({ type: 'sql', line, name, info: code.lang ?? 'sql', sql: code.text, maxRows });
    } else {
      const data = block.attrs.get('data');
      const index = data !== undefined ? names.get(data) : lastSqlCell(cells);
      if (index === undefined) {
        problems.push({
          line,
          message: data !== undefined ? `vega-lite block: data=${data} names no sql block above it` : 'vega-lite block comes before any sql block whose result it could draw',
        });
      }
      const spec = parseSpec(code.text, line + 1, problems);
      cells.push({ type: 'chart', line, data: index ?? -1, spec: spec ?? {} });
    }
  }
  flushProse();

  if (problems.length > 0) {
    throw new HsError('HS_ERR_NOTEBOOK_INVALID', problems.map((p) => `${file}:${p.line}: ${p.message}`).join('\n'), {
      details: { file, problems },
    });
  }
  return { file, title, params: params ?? [], cells };
}

function isFenced(token: Token): boolean {
  return /^ {0,3}(```|~~~)/.test(token.raw);
}

function countNewlines(text: string, from: number, to: number): number {
  let n = 0;
  for (let i = text.indexOf('\n', from); i !== -1 && i < to; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

function leadingNewlines(raw: string): number {
  return /^\n*/.exec(raw)![0].length;
}

function cellLine(cells: SourceCell[], index: number): number {
  return cells[index]!.line;
}

function lastSqlCell(cells: SourceCell[]): number | undefined {
  for (let i = cells.length - 1; i >= 0; i--) if (cells[i]!.type === 'sql') return i;
  return undefined;
}

function parseRows(value: string | undefined, line: number, problems: Problem[]): number {
  if (value === undefined) return DEFAULT_MAX_ROWS;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > MAX_ROWS_LIMIT) {
    problems.push({ line, message: `sql block: rows=${value} must be a whole number from 0 to ${MAX_ROWS_LIMIT}` });
    return DEFAULT_MAX_ROWS;
  }
  return n;
}

/** YAML (JSON is YAML too); lines are the file's, not the block's. */
function parseYaml(code: string, firstLine: number, what: string, problems: Problem[]): { doc: Document.Parsed; lineOf(offset?: number): number } | undefined {
  const lineCounter = new LineCounter();
  const doc = parseDocument(code, { lineCounter });
  const lineOf = (offset?: number) => firstLine + lineCounter.linePos(offset ?? 0).line - 1;
  const err = doc.errors[0];
  if (err) {
    // yaml's message ends with its own block-relative "at line N, column M:"; the FILE:LINE in front replaces it.
    const message = err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    problems.push({ line: lineOf(err.pos[0]), message: `${what} is not valid JSON or YAML: ${message}` });
    return undefined;
  }
  return { doc, lineOf };
}

function parseSpec(code: string, firstLine: number, problems: Problem[]): Record<string, unknown> | null {
  const parsed = parseYaml(code, firstLine, 'vega-lite block', problems);
  if (parsed === undefined) return null;
  const spec: unknown = parsed.doc.toJS();
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) {
    problems.push({ line: firstLine - 1, message: 'vega-lite block must be a Vega-Lite spec: a JSON or YAML object' });
    return null;
  }
  return spec as Record<string, unknown>;
}

function parseParams(code: string, firstLine: number, problems: Problem[]): ParamDecl[] {
  const parsed = parseYaml(code, firstLine, 'params block', problems);
  if (parsed === undefined) return [];
  const { doc, lineOf } = parsed;
  if (doc.contents === null) return [];
  if (!isMap(doc.contents)) {
    problems.push({ line: firstLine - 1, message: 'params block must map each parameter name to its default (or to nothing)' });
    return [];
  }
  const out: ParamDecl[] = [];
  for (const pair of doc.contents.items) {
    const line = lineOf(isScalar(pair.key) ? pair.key.range?.[0] : undefined);
    const name = isScalar(pair.key) ? String(pair.key.value) : '';
    const def = pair.value === null ? null : isScalar(pair.value) ? pair.value.value : undefined;
    if (!PARAM_NAME.test(name)) problems.push({ line, message: `params block: ${JSON.stringify(name)} is not a parameter name (letters, digits and _, not starting with a digit)` });
    else if (def === undefined) problems.push({ line, message: `params block: the default of ${name} must be a single value` });
    // Every value is bound as text (or NULL), whether it comes from here or from --param: one rule, casts in the SQL.
    else out.push({ name, default: def === null ? null : String(def) });
  }
  return out;
}

import { createTwoFilesPatch } from 'diff';
import { escapeXmlAttr, escapeXmlText } from '../report/escape.js';
import type { CheckReport, PropertyResult, RegressionResult } from './run.js';
import type { Failure } from './properties.js';

/**
 * `hookshadow check` reports: text for people, JSON for scripts (the CheckReport as
 * is), JUnit for CI (one suite for the regressions, one for the properties; a failed
 * property's body holds the shrunk delivery, the differing intents and the command
 * that reproduces it).
 */

const MAX_BODY_CHARS = 4_000;
const clip = (text: string, n = MAX_BODY_CHARS) => (text.length > n ? `${text.slice(0, n)}… (${text.length - n} more characters)` : text);

/** The two sides of a failure as a unified diff of their pretty JSON. */
export function failureDiff(f: Failure): string | null {
  if (!f.expected || !f.actual) return null;
  const pretty = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;
  return createTwoFilesPatch(f.expected.label, f.actual.label, pretty(f.expected.value), pretty(f.actual.value), undefined, undefined, { context: 3 })
    .split('\n')
    .slice(1)
    .join('\n');
}

function failureLines(p: PropertyResult): string[] {
  const ce = p.counterexample!;
  const lines = [
    `  ${ce.failure.message}`,
    `  case: ${ce.case}`,
    `  found after ${ce.found_after_runs} case(s) in ${(ce.search_ms / 1000).toFixed(1)} s; shrunk in ${ce.shrinks} step(s), ${(ce.shrink_ms / 1000).toFixed(1)} s: payload ${ce.original_size ?? '?'} → ${ce.shrunk_size} bytes`,
  ];
  for (const d of ce.deliveries) lines.push(`  delivery ${d.delivery_id} (${d.source} ${d.event ?? '-'}${d.action ? `.${d.action}` : ''}): ${clip(d.body ?? '', 600)}`);
  const diff = failureDiff(ce.failure);
  if (diff) lines.push(...clip(diff).split('\n').map((l) => `    ${l}`));
  if (ce.saved) lines.push(`  saved: ${ce.saved}`);
  lines.push(`  reproduce: ${ce.reproduce}`);
  return lines;
}

export function renderCheckText(r: CheckReport): string {
  const out: string[] = [`hookshadow check — seed ${r.seed}, ${r.runs} runs per property, ${r.samples} sampled deliveries, ${r.flows.length} flows`];
  if (r.regressions.length > 0) {
    out.push('', 'Regressions:');
    for (const g of r.regressions) out.push(`  ${mark(g.status)} ${g.property} ← ${g.fixture}${g.reason ? ` (${g.reason})` : ''}${g.failure ? `\n      ${g.failure.message}` : ''}`);
  }
  const searched = r.properties.filter((p) => p.runs > 0 || p.status !== 'skipped' || r.runs > 0);
  if (searched.length > 0) out.push('', 'Properties:');
  else out.push('', 'Properties: not searched (--runs 0).');
  for (const p of searched) {
    // A failed property's rate covers the search, not the shrinking after it.
    const searched = p.counterexample ? { runs: p.counterexample.found_after_runs, ms: p.counterexample.search_ms } : { runs: p.runs, ms: p.duration_ms };
    const rate = searched.ms > 0 ? ` · ${Math.round((searched.runs / searched.ms) * 1000)} runs/s` : '';
    out.push(`  ${mark(p.status)} ${p.name} — ${p.meaning} (${p.runs} runs${rate})${p.reason ? ` [${p.reason}]` : ''}`);
    if (p.status === 'failed') out.push(...failureLines(p));
  }
  const failed = r.properties.filter((p) => p.status === 'failed').length + r.regressions.filter((g) => g.status === 'failed').length;
  out.push('', failed === 0 ? `All checks passed in ${(r.duration_ms / 1000).toFixed(1)} s (seed ${r.seed}).` : `${failed} check(s) failed (seed ${r.seed}).`);
  return `${out.join('\n')}\n`;
}

const mark = (s: PropertyResult['status']) => (s === 'passed' ? '✓' : s === 'failed' ? '✗' : '-');

interface Case {
  classname: string;
  name: string;
  seconds: number;
  failure: { message: string; body: string } | null;
  skipped: string | null;
}

function suite(name: string, cases: Case[]): string {
  const attrs = `name="${escapeXmlAttr(name)}" tests="${cases.length}" failures="${cases.filter((c) => c.failure).length}" skipped="${cases.filter((c) => c.skipped).length}" time="${cases.reduce((n, c) => n + c.seconds, 0).toFixed(3)}"`;
  const body = cases.map((c) => {
    const open = `    <testcase classname="${escapeXmlAttr(c.classname)}" name="${escapeXmlAttr(c.name)}" time="${c.seconds.toFixed(3)}"`;
    if (c.failure) return `${open}>\n      <failure message="${escapeXmlAttr(clip(c.failure.message, 200))}">${escapeXmlText(c.failure.body)}</failure>\n    </testcase>`;
    if (c.skipped) return `${open}>\n      <skipped message="${escapeXmlAttr(c.skipped)}"/>\n    </testcase>`;
    return `${open}/>`;
  });
  return `  <testsuite ${attrs}>\n${body.join('\n')}\n  </testsuite>`;
}

export function renderCheckJUnit(r: CheckReport): string {
  const regression = (g: RegressionResult): Case => ({
    classname: 'regressions',
    name: `${g.property} ${g.fixture}`,
    seconds: g.duration_ms / 1000,
    failure: g.failure ? { message: g.failure.message, body: [g.failure.message, failureDiff(g.failure) ?? ''].join('\n') } : null,
    skipped: g.status === 'skipped' ? (g.reason ?? 'skipped') : null,
  });
  const property = (p: PropertyResult): Case => ({
    classname: 'properties',
    name: p.name,
    seconds: p.duration_ms / 1000,
    failure: p.counterexample ? { message: p.counterexample.failure.message, body: failureLines(p).join('\n') } : null,
    skipped: p.status === 'skipped' ? (p.reason ?? 'skipped') : null,
  });
  const suites = [suite('hookshadow check: properties', r.properties.map(property))];
  if (r.regressions.length > 0) suites.unshift(suite('hookshadow check: regressions', r.regressions.map(regression)));
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="hookshadow check (seed ${r.seed})">\n${suites.join('\n')}\n</testsuites>\n`;
}

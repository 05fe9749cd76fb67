/**
 * `hookshadow analyze --format junit`: the analysis as JUnit XML, so a CI system shows
 * each divergent delivery as a failed test.
 *
 * - One `<testsuite>` per flow (in `by_flow` order, then flows only differences name,
 *   sorted), and one `<testcase>` per (flow, delivery): classname the flow, name the
 *   delivery id and its event. A delivery that concerns two flows is a case in each.
 * - A case fails when any of its differences is unexpected; the failure body lists
 *   every difference, expected ones marked.
 * - A case whose differences were all expected by a rule PASSES, with the differences
 *   and the rules that expected them in `<system-out>`. Not `<skipped>`: the delivery
 *   was compared and the result is accepted; skipping would claim it was not checked
 *   and would hide rule suppressions among genuinely skipped tests.
 * - Differences with no flow (`missing_in_flow` with no single flow run) go to the
 *   suite `(no flow)`; legacy effects tied to no delivery to `(unattributed)`, one case
 *   per effect; rules to `(rules)`, where expired and unused rules fail.
 * - When the analyzer cut the delivery list (`--limit`), a suite `(not listed)` holds
 *   one skipped case saying how many deliveries have no case.
 * - Flow errors are failures like any other difference, not `<error>`s: the harness
 *   itself ran fine, and one kind of result keeps the counts simple to read.
 */
import type { Divergence } from '../../core/divergence-schema.js';
import type { AnalysisResult, FlowSummary } from '../result.js';
import { describeDifference, differenceSides, eventLabel, percent, plural, truncate, valueJson } from './describe.js';
import { escapeXmlAttr, escapeXmlText } from './escape.js';

/** Suite names for what belongs to no flow. Parentheses keep them apart from flow ids. */
export const NO_FLOW_SUITE = '(no flow)';
export const UNATTRIBUTED_SUITE = '(unattributed)';
export const RULES_SUITE = '(rules)';
export const NOT_LISTED_SUITE = '(not listed)';

/** How long a failure's `message` attribute may get: the body carries the rest. */
const MESSAGE_CHARS = 200;
/** How long one value may get in a failure body. */
const BODY_VALUE_CHARS = 4000;

interface TestCase {
  name: string;
  /** Set when the case fails. */
  failure: { message: string; type: string; body: string } | null;
  /** Set when the case was not checked here (deliveries the analyzer's `--limit` left out). */
  skipped: string | null;
  systemOut: string | null;
}

interface TestSuite {
  name: string;
  properties: [string, string][];
  cases: TestCase[];
}

/** Renders the analysis as a JUnit XML document. */
export function renderJUnit(result: AnalysisResult): string {
  const suites = [...flowSuites(result), unattributedSuite(result), rulesSuite(result), ...notListedSuite(result)];
  const tests = suites.reduce((n, s) => n + s.cases.length, 0);
  const failures = suites.reduce((n, s) => n + failureCount(s), 0);
  const skipped = suites.reduce((n, s) => n + skippedCount(s), 0);
  const root =
    `<testsuites name="${escapeXmlAttr(`hookshadow ${result.replay_id}`)}" tests="${tests}" failures="${failures}" errors="0" skipped="${skipped}"` +
    ` timestamp="${escapeXmlAttr(result.generated_at)}">`;
  return ['<?xml version="1.0" encoding="UTF-8"?>', root, ...suites.map((s) => suiteXml(s, result.generated_at)), '</testsuites>', ''].join('\n');
}

const failureCount = (suite: TestSuite) => suite.cases.filter((c) => c.failure !== null).length;
const skippedCount = (suite: TestSuite) => suite.cases.filter((c) => c.skipped !== null).length;

/** One suite per flow, plus `(no flow)` when some differences name none. */
function flowSuites(result: AnalysisResult): TestSuite[] {
  const byFlow = new Map<string, TestCase[]>();
  for (const f of result.by_flow) byFlow.set(f.flow, []);
  const unknownFlows = new Set<string>();
  for (const delivery of result.deliveries) {
    for (const [flow, differences] of groupByFlow(delivery.differences)) {
      const name = flow ?? NO_FLOW_SUITE;
      if (!byFlow.has(name)) unknownFlows.add(name);
      const cases = byFlow.get(name) ?? [];
      cases.push(differenceCase(`${delivery.delivery_id} ${eventLabel(delivery.event, delivery.action)}`, differences));
      byFlow.set(name, cases);
    }
  }
  const summaries = new Map(result.by_flow.map((f) => [f.flow, f]));
  // Flows only differences mention (no summary) follow the summarized ones, sorted;
  // `(no flow)` comes last among them.
  const extra = [...unknownFlows].filter((n) => n !== NO_FLOW_SUITE).sort();
  if (unknownFlows.has(NO_FLOW_SUITE)) extra.push(NO_FLOW_SUITE);
  return [...result.by_flow.map((f) => f.flow), ...extra].map((name) => ({
    name,
    properties: flowProperties(summaries.get(name)),
    cases: byFlow.get(name) ?? [],
  }));
}

/** A delivery's differences by flow (null for none), in first-seen order. */
function groupByFlow(differences: Divergence[]): Map<string | null, Divergence[]> {
  const groups = new Map<string | null, Divergence[]>();
  for (const d of differences) {
    const list = groups.get(d.flow) ?? [];
    list.push(d);
    groups.set(d.flow, list);
  }
  return groups;
}

function flowProperties(summary: FlowSummary | undefined): [string, string][] {
  if (!summary) return [];
  return [
    ['runs', String(summary.runs)],
    ['divergent_runs', String(summary.divergent_runs)],
    ['divergence_rate', percent(summary.divergence_rate)],
    ['expected', String(summary.expected)],
  ];
}

/** A case over some differences: failing when any is unexpected, passing (with the reasons) otherwise. */
function differenceCase(name: string, differences: Divergence[]): TestCase {
  const unexpected = differences.filter((d) => d.expected_by === null);
  const expected = differences.filter((d) => d.expected_by !== null);
  if (unexpected.length === 0) {
    return { name, failure: null, skipped: null, systemOut: expected.map(describeDifference).join('\n') };
  }
  const classes = [...new Set(unexpected.map((d) => d.class))].sort();
  const message = truncate(`${plural(unexpected.length, 'unexpected difference')}: ${describeDifference(unexpected[0]!)}`, MESSAGE_CHARS);
  const body = [...unexpected, ...expected].map(differenceDetail).join('\n\n');
  return { name, failure: { message, type: classes.join(','), body }, skipped: null, systemOut: null };
}

/** One difference for a failure body: its description, then the text diff or the full values. */
function differenceDetail(d: Divergence): string {
  const lines = [describeDifference(d)];
  if (d.text_diff) {
    lines.push(d.text_diff.replace(/\n$/, ''));
  } else {
    for (const side of differenceSides(d)) {
      const json = valueJson(side === 'legacy' ? d.legacy_value : d.flow_value, true);
      if (json !== null && json.length > 60) lines.push(`${side}: ${truncate(json, BODY_VALUE_CHARS)}`);
    }
  }
  return lines.join('\n');
}

function unattributedSuite(result: AnalysisResult): TestSuite {
  const cases = result.unattributed.map((d) => {
    const name = [d.effect_id ?? '(no effect id)', d.kind, d.target].filter((p): p is string => !!p).join(' ');
    return differenceCase(name, [d]);
  });
  return { name: UNATTRIBUTED_SUITE, properties: [], cases };
}

/** Every expect rule as a case (failing when expired or unused), then stale rules that are not expect rules (normalize). */
function rulesSuite(result: AnalysisResult): TestSuite {
  const { expect, expired, unused } = result.rules;
  const problemsOf = (id: string) => [expired.includes(id) ? 'expired' : null, unused.includes(id) ? 'matched nothing' : null].filter((p): p is string => p !== null);
  const stale = (id: string, problems: string[], body: string): TestCase => ({
    name: id,
    failure: { message: `rule ${id} ${problems.join(', ')}`, type: 'stale_rule', body },
    skipped: null,
    systemOut: null,
  });
  const cases: TestCase[] = expect.map((rule) => {
    const about = `owner ${rule.owner}; expires ${rule.expires ?? 'never'}; ${rule.reason}`;
    const problems = problemsOf(rule.id);
    if (rule.expired && !problems.includes('expired')) problems.unshift('expired');
    return problems.length ? stale(rule.id, problems, about) : { name: rule.id, failure: null, skipped: null, systemOut: `suppressed ${rule.suppressed}; ${about}` };
  });
  const expectIds = new Set(expect.map((r) => r.id));
  for (const id of new Set([...expired, ...unused])) if (!expectIds.has(id)) cases.push(stale(id, problemsOf(id), ''));
  return { name: RULES_SUITE, properties: [], cases };
}

/**
 * When the analyzer cut the delivery list (`--limit`), one skipped case says how many
 * deliveries have no case here, so a green-looking suite cannot hide them.
 */
function notListedSuite(result: AnalysisResult): TestSuite[] {
  const left = result.deliveries_total - result.deliveries.length;
  if (left <= 0) return [];
  const message = `${plural(left, 'more divergent delivery', 'more divergent deliveries')} not listed (the analysis was cut by --limit); see --format json or html`;
  return [{ name: NOT_LISTED_SUITE, properties: [], cases: [{ name: 'deliveries not listed', failure: null, skipped: message, systemOut: null }] }];
}

function suiteXml(suite: TestSuite, timestamp: string): string {
  const attrs =
    `name="${escapeXmlAttr(suite.name)}" tests="${suite.cases.length}" failures="${failureCount(suite)}" errors="0" skipped="${skippedCount(suite)}"` +
    ` timestamp="${escapeXmlAttr(timestamp)}"`;
  const props = suite.properties.length
    ? [
        '    <properties>',
        ...suite.properties.map(([k, v]) => `      <property name="${escapeXmlAttr(k)}" value="${escapeXmlAttr(v)}"/>`),
        '    </properties>',
      ]
    : [];
  return [`  <testsuite ${attrs}>`, ...props, ...suite.cases.map((c) => caseXml(suite.name, c)), '  </testsuite>'].join('\n');
}

function caseXml(classname: string, c: TestCase): string {
  const open = `    <testcase classname="${escapeXmlAttr(classname)}" name="${escapeXmlAttr(c.name)}"`;
  const children: string[] = [];
  if (c.failure) {
    children.push(
      `      <failure message="${escapeXmlAttr(c.failure.message)}" type="${escapeXmlAttr(c.failure.type)}">${escapeXmlText(c.failure.body)}</failure>`,
    );
  }
  if (c.skipped !== null) children.push(`      <skipped message="${escapeXmlAttr(c.skipped)}"/>`);
  if (c.systemOut) children.push(`      <system-out>${escapeXmlText(c.systemOut)}</system-out>`);
  return children.length ? [`${open}>`, ...children, '    </testcase>'].join('\n') : `${open}/>`;
}

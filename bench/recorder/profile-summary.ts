/**
 * Summarises a V8 .cpuprofile (from `npm run bench:recorder -- --prof`): self time by
 * function and by where the code lives, and total (inclusive) time of selected functions.
 *
 *   node dist/bench/recorder/profile-summary.js bench/out/prof/passive/recorder-<pid>.cpuprofile [top=30]
 */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: Node[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

function where(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  if (url.startsWith('node:')) return 'node core';
  const own = /\/dist\/([^/]+\/(?:[^/]+\/)?)/.exec(url);
  if (own) return `hookshadow ${own[1]}`;
  return url;
}

function main(): void {
  const [file, topArg] = process.argv.slice(2);
  if (!file) {
    console.error('usage: profile-summary.js <file.cpuprofile> [top]');
    process.exit(2);
  }
  const top = Number(topArg ?? 30);
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const totalUs = [...selfUs.values()].reduce((s, x) => s + x, 0);
  const idleUs = [...selfUs].filter(([id]) => byId.get(id)!.callFrame.functionName === '(idle)').reduce((s, [, t]) => s + t, 0);
  const busyUs = totalUs - idleUs;

  const fnSelf = new Map<string, number>();
  const placeSelf = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const [id, t] of selfUs) {
    const n = byId.get(id)!;
    const fn = n.callFrame.functionName || '(anonymous)';
    if (fn === '(idle)') continue;
    const loc = `${fn}  ${where(n.callFrame.url, fn)}${n.callFrame.url ? `:${n.callFrame.lineNumber + 1}` : ''}`;
    fnSelf.set(loc, (fnSelf.get(loc) ?? 0) + t);
    const place = where(n.callFrame.url, fn);
    placeSelf.set(place, (placeSelf.get(place) ?? 0) + t);
    // Inclusive time per function name (counted once per sample even under recursion).
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur)!.callFrame;
      const key = `${f.functionName || '(anonymous)'}  ${where(f.url, f.functionName)}`;
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + t);
    }
  }
  const pct = (t: number) => `${((t / busyUs) * 100).toFixed(1).padStart(5)}%`;
  console.log(`${file}: ${(totalUs / 1e6).toFixed(1)} s profiled, ${(busyUs / 1e6).toFixed(1)} s busy (${((busyUs / totalUs) * 100).toFixed(0)}%); shares are of busy time\n`);
  console.log('self time by place:');
  for (const [k, t] of [...placeSelf].sort((a, b) => b[1] - a[1]).slice(0, 20)) console.log(`  ${pct(t)}  ${k}`);
  console.log('\nself time by function:');
  for (const [k, t] of [...fnSelf].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${pct(t)}  ${k}`);
  console.log('\ninclusive time (hookshadow and selected functions):');
  for (const [k, t] of [...inclusive].sort((a, b) => b[1] - a[1])) {
    if (/hookshadow|stringify|parse|createHash|isUtf8|writev|datasync|uuid|v7|inc\b|JSON/.test(k) && t / busyUs > 0.01) console.log(`  ${pct(t)}  ${k}`);
  }
}

main();

/**
 * What the benchmarks record about the machine they ran on, and the machine's busy CPU time (to tell
 * how many cores other processes took while a phase ran).
 */
import { execSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { round } from './report.js';

/** Runs a shell command; its trimmed stdout, or null when it fails. */
export function sh(cmd: string): string | null {
  try {
    return execSync(cmd, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

/** The version of an installed package under `root`/node_modules, or null when it is not there. */
export function packageVersion(root: string, pkg: string): string | null {
  try {
    return (JSON.parse(readFileSync(join(root, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return null;
  }
}

/** CPUs, memory, node and kernel: the part of every benchmark's `machine` that does not depend on the benchmark. */
export function hostInfo() {
  return {
    nproc: Number(sh('nproc')) || cpus().length,
    cpuModel: cpus()[0]?.model ?? null,
    memGiB: round(totalmem() / 1024 ** 3, 1),
    node: process.version,
    kernel: sh('uname -r'),
  };
}

/** The short commit of HEAD in `root`, or null outside a git checkout. */
export const gitHead = (root: string) => sh(`git -C ${root} rev-parse --short HEAD`);

/** Whether tracked files in `root` differ from HEAD. */
export const gitDirty = (root: string) => (sh(`git -C ${root} status --porcelain --untracked-files=no`) ?? '') !== '';

/** Clock ticks per second of /proc's CPU times. */
export const CLK_TCK = Number(sh('getconf CLK_TCK')) || 100;

/** Busy CPU seconds of the whole machine since boot (/proc/stat, all CPUs: user+nice+system+irq+softirq+steal). */
export function machineBusySeconds(): number {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = f;
    return (user + nice + system + irq + softirq + steal) / CLK_TCK;
  } catch {
    return NaN;
  }
}

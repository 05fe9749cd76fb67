/** CPU time and memory of one process (a benchmark's server child), read from Linux /proc. */
import { readFileSync } from 'node:fs';
import { CLK_TCK } from './machine.js';

/** User+system CPU seconds in a /proc `stat` line (of a process or of one of its threads). */
function statCpuSeconds(path: string): number {
  const stat = readFileSync(path, 'utf8');
  // The command name is in parentheses and may contain spaces; fields count from after it.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** User+system CPU seconds a process has used so far (all its threads); NaN once it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    return statCpuSeconds(`/proc/${pid}/stat`);
  } catch {
    return NaN;
  }
}

/** CPU seconds of a process's main thread (the JS event loop) and of all its other threads together. */
export function cpuSplit(pid: number): { main: number; other: number } {
  const total = cpuSeconds(pid);
  let main = NaN;
  try {
    main = statCpuSeconds(`/proc/${pid}/task/${pid}/stat`);
  } catch {
    // gone
  }
  return { main, other: total - main };
}

/** Resident set size in bytes (VmRSS from /proc/<pid>/status). */
export function rssBytes(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

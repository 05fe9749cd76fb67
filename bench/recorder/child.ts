/** Starting and talking to the benchmark's server children (bench/recorder/server.ts), and reading their /proc figures. */
import { spawn, execSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export type Msg = Record<string, unknown>;

const SERVER_JS = fileURLToPath(new URL('./server.js', import.meta.url));

export class Child {
  readonly proc: ChildProcess;
  readonly role: string;
  ready!: Msg;
  private nextId = 1;
  private waiters = new Map<number, (m: Msg) => void>();
  private onReady: ((m: Msg) => void) | null = null;
  private onStopped: ((m: Msg) => void) | null = null;
  private stoppedMsg: Msg | null = null;
  private exited: Promise<number | null>;

  private constructor(role: string, options: object, nodeArgs: string[]) {
    this.role = role;
    this.proc = spawn(process.execPath, [...nodeArgs, SERVER_JS, role, JSON.stringify(options)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.exited = new Promise((resolve) => this.proc.once('exit', (code) => resolve(code)));
    const rl = createInterface({ input: this.proc.stdout! });
    rl.on('line', (line) => {
      let msg: Msg;
      try {
        msg = JSON.parse(line) as Msg;
      } catch {
        process.stderr.write(`[${role}] ${line}\n`);
        return;
      }
      if (msg.event === 'ready') this.onReady?.(msg);
      else if (msg.event === 'stopped') {
        this.stoppedMsg = msg;
        this.onStopped?.(msg);
      } else if (typeof msg.id === 'number' && this.waiters.has(msg.id)) {
        const w = this.waiters.get(msg.id)!;
        this.waiters.delete(msg.id);
        w(msg);
      }
    });
  }

  get pid(): number {
    return this.proc.pid!;
  }

  get url(): string {
    return String(this.ready.url);
  }

  /** Spawns `node dist/bench/recorder/server.js <role> <options>` and waits for its ready line. */
  static async start(role: string, options: object = {}, nodeArgs: string[] = [], timeoutMs = 30_000): Promise<Child> {
    const child = new Child(role, options, nodeArgs);
    child.ready = await new Promise<Msg>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${role} child did not start within ${timeoutMs} ms`)), timeoutMs);
      child.onReady = (m) => {
        clearTimeout(timer);
        resolve(m);
      };
      void child.exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`${role} child exited (code ${code}) before it was ready`));
      });
    });
    return child;
  }

  /** Sends a command and waits for the answer carrying the same id. */
  request(cmd: Msg, timeoutMs = 10_000): Promise<Msg> {
    const id = this.nextId++;
    return new Promise<Msg>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(id);
        reject(new Error(`${this.role} child did not answer ${JSON.stringify(cmd)} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.set(id, (m) => {
        clearTimeout(timer);
        resolve(m);
      });
      this.proc.stdin!.write(JSON.stringify({ ...cmd, id }) + '\n');
    });
  }

  /** Asks the child to stop (the recorder drains and rolls its WAL into Parquet); kills it after the timeout. */
  async stop(timeoutMs = 120_000): Promise<Msg | null> {
    if (this.proc.exitCode !== null) return this.stoppedMsg;
    const stopped = new Promise<Msg | null>((resolve) => {
      if (this.stoppedMsg) return resolve(this.stoppedMsg);
      this.onStopped = resolve;
      void this.exited.then(() => resolve(this.stoppedMsg));
    });
    this.proc.stdin!.write(JSON.stringify({ cmd: 'stop' }) + '\n');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), timeoutMs);
    });
    const msg = await Promise.race([stopped, timedOut]);
    clearTimeout(timer);
    if (msg === null && this.proc.exitCode === null) {
      process.stderr.write(`[${this.role}] did not stop within ${timeoutMs} ms; killing pid ${this.pid}\n`);
      this.proc.kill('SIGKILL');
    }
    await this.exited;
    return msg;
  }
}

let clkTck: number | null = null;
function ticksPerSecond(): number {
  if (clkTck === null) {
    try {
      clkTck = Number(execSync('getconf CLK_TCK', { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** User+system CPU seconds a process has used so far (Linux /proc). */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name is in parentheses and may contain spaces; fields count from after it.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return (utime + stime) / ticksPerSecond();
  } catch {
    return NaN;
  }
}

/** CPU seconds of a process's main thread (the JS event loop) and of all its other threads together. */
export function cpuSplit(pid: number): { main: number; other: number } {
  const total = cpuSeconds(pid);
  let main = NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    main = (Number(fields[11]) + Number(fields[12])) / ticksPerSecond();
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

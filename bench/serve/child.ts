/**
 * Starting and talking to the serve benchmark's server child (bench/serve/server.ts), with the
 * protocol of bench/recorder/child.ts (whose `Child` runs bench/recorder/server.ts only): a ready
 * line, then one JSON command per line answered with the same id.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ServerOptions } from './server.js';

export type Msg = Record<string, unknown>;

const SERVER_JS = fileURLToPath(new URL('./server.js', import.meta.url));

export class ServerChild {
  readonly proc: ChildProcess;
  readonly role: 'recorder' | 'serve';
  ready: Msg = {};
  private nextId = 1;
  private waiters = new Map<number, (m: Msg) => void>();
  private onLine: ((m: Msg) => void) | null = null;
  private readonly exited: Promise<number | null>;

  private constructor(role: 'recorder' | 'serve', options: ServerOptions, nodeArgs: string[]) {
    this.role = role;
    this.proc = spawn(process.execPath, [...nodeArgs, SERVER_JS, role, JSON.stringify(options)], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.exited = new Promise((resolve) => this.proc.once('exit', (code) => resolve(code)));
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      let msg: Msg;
      try {
        msg = JSON.parse(line) as Msg;
      } catch {
        process.stderr.write(`[${role}] ${line}\n`);
        return;
      }
      const waiter = typeof msg.id === 'number' ? this.waiters.get(msg.id) : undefined;
      if (waiter) {
        this.waiters.delete(msg.id as number);
        waiter(msg);
      } else this.onLine?.(msg);
    });
  }

  get pid(): number {
    return this.proc.pid!;
  }

  get url(): string {
    return String(this.ready.url);
  }

  /** Spawns `node dist/bench/serve/server.js <role> <options>` and waits for its ready line. */
  static async start(role: 'recorder' | 'serve', options: ServerOptions, nodeArgs: string[] = [], timeoutMs = 60_000): Promise<ServerChild> {
    const child = new ServerChild(role, options, nodeArgs);
    child.ready = await child.next('ready', timeoutMs);
    return child;
  }

  private next(event: string, timeoutMs: number): Promise<Msg> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.role} child: no "${event}" within ${timeoutMs} ms`)), timeoutMs);
      this.onLine = (m) => {
        if (m.event !== event) return;
        clearTimeout(timer);
        resolve(m);
      };
      void this.exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`${this.role} child exited (code ${code}) before "${event}"`));
      });
    });
  }

  /** Sends a command and waits for the answer carrying the same id. */
  request(cmd: Msg, timeoutMs = 30_000): Promise<Msg> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(id);
        reject(new Error(`${this.role} child did not answer ${JSON.stringify(cmd)} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.set(id, (m) => {
        clearTimeout(timer);
        if (m.event === 'error') reject(new Error(`${this.role} child: ${String(m.error)}`));
        else resolve(m);
      });
      this.proc.stdin!.write(JSON.stringify({ ...cmd, id }) + '\n');
    });
  }

  /** Stops the server (serve settles its queue and writes its live segment); kills it after the timeout. */
  async stop(timeoutMs = 60_000): Promise<Msg | null> {
    if (this.proc.exitCode !== null) return null;
    const stopped = this.next('stopped', timeoutMs).catch(() => null);
    this.proc.stdin!.write(JSON.stringify({ cmd: 'stop' }) + '\n');
    const msg = await stopped;
    if (msg === null && this.proc.exitCode === null) {
      process.stderr.write(`[${this.role}] did not stop within ${timeoutMs} ms; killing pid ${this.pid}\n`);
      this.proc.kill('SIGKILL');
    }
    await this.exited;
    return msg;
  }
}

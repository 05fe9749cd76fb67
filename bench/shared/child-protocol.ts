/**
 * The line protocol between a benchmark (the parent, which runs the load generators) and the servers
 * it measures, each in a child process of its own so that the generator and every server have their
 * own event loop (and, on a 2-core machine, their own core).
 *
 *   node <server script> <role> '<json options>'
 *
 * One JSON object per line. On stdout the child prints `{"event":"ready",...}` once listening, one
 * answer per command, carrying the command's `id`, and `{"event":"stopped",...}` last. On stdin it
 * takes one command per line (`{"cmd":...,"id":...}`); `{"cmd":"stop"}`, SIGTERM, SIGINT and stdin
 * closing all stop it.
 *
 * The child side is runCommandLoop; the parent side is BenchChild.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';

/** One protocol message: a command, an answer or an event. */
export type Msg = Record<string, unknown>;

/** Calls `onMessage` with each JSON line of `input`, and `onOther` with any line that is not JSON. */
function readJsonLines(input: Readable, onMessage: (msg: Msg) => void, onOther: (line: string) => void) {
  const lines = createInterface({ input });
  lines.on('line', (line) => {
    let msg: Msg;
    try {
      msg = JSON.parse(line) as Msg;
    } catch {
      onOther(line);
      return;
    }
    onMessage(msg);
  });
  return lines;
}

// ---------------------------------------------------------------------------------------------
// The child side.

const say = (msg: Msg) => process.stdout.write(JSON.stringify(msg) + '\n');

/** What a server child does with the protocol; runCommandLoop does the rest. */
export interface CommandHandlers {
  /** Fields of the ready line (the URL to load, at least). */
  ready: Msg;
  /**
   * The answer to one command, with its `event` (runCommandLoop adds the `id`), or null for a command
   * this child does not know. A thrown error is answered as `{"event":"error"}`; the child goes on.
   */
  answer(cmd: Msg): Msg | null | Promise<Msg | null>;
  /** Stops the server; the fields of the `stopped` line. A thrown error is reported on that line instead. */
  stop(): Promise<Msg>;
}

/** Answers commands from stdin until told to stop, then exits; prints the ready line once listening for them. */
export function runCommandLoop(role: string, handlers: CommandHandlers): void {
  let stopping: Promise<void> | null = null;
  const stop = () => {
    stopping ??= (async () => {
      try {
        say({ event: 'stopped', ...(await handlers.stop()) });
      } catch (err) {
        say({ event: 'stopped', error: (err as Error).message });
      }
      process.exit(0);
    })();
    return stopping;
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());

  const lines = readJsonLines(
    process.stdin,
    (cmd) => {
      void (async () => {
        const id = cmd.id ?? null;
        try {
          if (cmd.cmd === 'stop') return void (await stop());
          const answer = await handlers.answer(cmd);
          say(answer ? { event: answer.event, id, ...answer } : { event: 'error', id, error: `unknown command ${JSON.stringify(cmd.cmd)}` });
        } catch (err) {
          say({ event: 'error', id, error: (err as Error).message });
        }
      })();
    },
    (line) => say({ event: 'error', error: `not JSON: ${line}` }),
  );
  // The parent going away (stdin closed) stops the child too.
  lines.on('close', () => void stop());

  say({ event: 'ready', role, pid: process.pid, ...handlers.ready });
}

// ---------------------------------------------------------------------------------------------
// The parent side.

/** How long the parent waits for a child; each benchmark sets its own (its servers stop in very different times). */
export interface ChildTimeouts {
  /** From spawning to the ready line. */
  readyMs: number;
  /** For the answer to a command, unless the call says otherwise. */
  requestMs: number;
  /** For the stopped line before the child is killed, unless the call says otherwise. */
  stopMs: number;
}

/** A server child, started and spoken to over the line protocol. */
export class BenchChild {
  readonly proc: ChildProcess;
  readonly role: string;
  /** The child's ready line. */
  ready: Msg = {};
  private readonly timeouts: ChildTimeouts;
  private nextId = 1;
  private waiters = new Map<number, (m: Msg) => void>();
  private onReady: ((m: Msg) => void) | null = null;
  private onStopped: ((m: Msg) => void) | null = null;
  private stoppedMsg: Msg | null = null;
  private readonly exited: Promise<number | null>;

  private constructor(script: string, role: string, options: object, nodeArgs: readonly string[], timeouts: ChildTimeouts) {
    this.role = role;
    this.timeouts = timeouts;
    this.proc = spawn(process.execPath, [...nodeArgs, script, role, JSON.stringify(options)], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.exited = new Promise((resolve) => this.proc.once('exit', (code) => resolve(code)));
    readJsonLines(
      this.proc.stdout!,
      (msg) => {
        if (msg.event === 'ready') this.onReady?.(msg);
        else if (msg.event === 'stopped') {
          this.stoppedMsg = msg;
          this.onStopped?.(msg);
        } else if (typeof msg.id === 'number' && this.waiters.has(msg.id)) {
          const waiter = this.waiters.get(msg.id)!;
          this.waiters.delete(msg.id);
          waiter(msg);
        }
      },
      // Whatever else the child prints (a library writing to stdout) is passed on, marked with its role.
      (line) => process.stderr.write(`[${role}] ${line}\n`),
    );
  }

  get pid(): number {
    return this.proc.pid!;
  }

  get url(): string {
    return String(this.ready.url);
  }

  /** Spawns `node [nodeArgs] <script> <role> '<json options>'` and waits for its ready line. */
  static async start(script: string, role: string, options: object, nodeArgs: readonly string[], timeouts: ChildTimeouts): Promise<BenchChild> {
    const child = new BenchChild(script, role, options, nodeArgs, timeouts);
    child.ready = await new Promise<Msg>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${role} child did not start within ${timeouts.readyMs} ms`)), timeouts.readyMs);
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

  /** Sends a command and waits for the answer carrying the same id; an `error` answer rejects. */
  request(cmd: Msg, timeoutMs = this.timeouts.requestMs): Promise<Msg> {
    const id = this.nextId++;
    return new Promise<Msg>((resolve, reject) => {
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

  /** Asks the child to stop and waits for its stopped line (null if it exited without one); kills it after the timeout. */
  async stop(timeoutMs = this.timeouts.stopMs): Promise<Msg | null> {
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

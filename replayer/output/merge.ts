import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

/** One partition's NDJSON: flow runs in delivery order, each run's node rows in the same order in the other file. */
export interface PartFiles {
  flowRuns: string;
  nodeRuns: string;
}

/**
 * A flow-run line's sort key: its leading `received_at` and `delivery_id` (the writer puts
 * them first). An unescaped `","run_id":"` cannot occur inside a JSON string, so the cut is safe.
 */
function sortKey(line: string): string {
  const cut = line.indexOf('","run_id":"');
  return cut < 0 ? line : line.slice(0, cut);
}

class LineReader {
  private readonly it: AsyncIterator<string>;
  constructor(path: string) {
    this.it = createInterface({ input: createReadStream(path, { highWaterMark: 1 << 20 }), crlfDelay: Infinity })[Symbol.asyncIterator]();
  }
  async next(): Promise<string | null> {
    const r = await this.it.next();
    return r.done ? null : r.value;
  }
}

class Out {
  private chunks: string[] = [];
  private size = 0;
  private readonly stream;
  constructor(path: string) {
    this.stream = createWriteStream(path);
  }
  async push(line: string): Promise<void> {
    this.chunks.push(line, '\n');
    this.size += line.length + 1;
    if (this.size >= 1 << 20) await this.flush();
  }
  private async flush(): Promise<void> {
    if (!this.stream.write(this.chunks.join(''))) await once(this.stream, 'drain');
    this.chunks = [];
    this.size = 0;
  }
  async close(): Promise<void> {
    await this.flush();
    this.stream.end();
    await once(this.stream, 'finish');
  }
}

/**
 * Merges partitions that are each in delivery order into one file pair in delivery
 * order. The final Parquet then needs no sort, so writing it streams in little memory,
 * and the output is the same whatever the number of partitions.
 */
export async function mergeParts(parts: PartFiles[], out: PartFiles): Promise<void> {
  const heads = await Promise.all(
    parts.map(async (p) => {
      const flows = new LineReader(p.flowRuns);
      const line = await flows.next();
      return { flows, nodes: new LineReader(p.nodeRuns), line, key: line === null ? '' : sortKey(line) };
    }),
  );
  const flowOut = new Out(out.flowRuns);
  const nodeOut = new Out(out.nodeRuns);
  for (;;) {
    let best: (typeof heads)[number] | null = null;
    for (const h of heads) if (h.line !== null && (best === null || h.key < best.key)) best = h;
    if (!best) break;
    const line = best.line!;
    await flowOut.push(line);
    // node_count is the run's number of node rows, written right after it in the partition's node file.
    const count = Number(/"node_count":(\d+)/.exec(line)?.[1] ?? 0);
    for (let i = 0; i < count; i++) {
      const node = await best.nodes.next();
      if (node === null) throw new Error(`replay partition ${parts[heads.indexOf(best)]!.nodeRuns} ended early`);
      await nodeOut.push(node);
    }
    best.line = await best.flows.next();
    best.key = best.line === null ? '' : sortKey(best.line);
  }
  await Promise.all([flowOut.close(), nodeOut.close()]);
}

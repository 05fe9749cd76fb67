import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { canonicalJson } from '../../core/effects.js';
import { formatUs } from '../../core/clock.js';
import type { DeliveryInput } from '../engine/delivery.js';
import type { FlowRun, NodeRun } from '../engine/run.js';
import type { RedeliveryResult } from '../redeliver.js';

/**
 * Writes one partition's runs as NDJSON, the intermediate form the final COPY turns
 * into Parquet. JSON columns (output, intent) are canonical JSON strings, so two
 * replays of the same captures write the same bytes.
 */
export interface RunWriter {
  write(d: DeliveryInput, runs: FlowRun[]): Promise<void>;
  writeRedelivery(r: RedeliveryResult): Promise<void>;
  close(): Promise<void>;
}

/** Text written in 1 MiB chunks, waiting on the stream when it asks to. */
export class BufferedLines {
  private chunks: string[] = [];
  private size = 0;
  constructor(private readonly stream: WriteStream) {}
  static open(path: string): BufferedLines {
    return new BufferedLines(createWriteStream(path));
  }
  async push(line: string): Promise<void> {
    this.chunks.push(line);
    this.size += line.length;
    if (this.size >= 1 << 20) await this.flush();
  }
  async flush(): Promise<void> {
    if (this.chunks.length === 0) return;
    const ok = this.stream.write(this.chunks.join(''));
    this.chunks = [];
    this.size = 0;
    if (!ok) await once(this.stream, 'drain');
  }
  async close(): Promise<void> {
    await this.flush();
    this.stream.end();
    await once(this.stream, 'finish');
  }
}

/** One `flow_runs` row (specs/replay-format.md); `t` maps measured durations (to 0 without timings). */
export function flowRunRow(d: DeliveryInput, run: FlowRun, t: (us: number) => number): Record<string, unknown> {
  const receivedAt = formatUs(d.received_at_us);
  // received_at and delivery_id first: they are the sort key the partition merge reads (merge.ts).
  return {
    received_at: receivedAt,
    delivery_id: run.delivery_id,
    run_id: run.run_id,
    flow: run.flow,
    flow_version: run.flow_version,
    mode: run.mode,
    status: run.status,
    error: run.error,
    started_at: run.started_at_us === d.received_at_us ? receivedAt : formatUs(run.started_at_us),
    duration_us: t(run.duration_us),
    source: d.source,
    event: d.event,
    action: d.action,
    node_count: run.nodes.length,
    intent_count: run.nodes.filter((n) => n.intent !== null).length,
  };
}

/** One `node_runs` row; JSON columns as JSON text. */
export function nodeRunRow(run: FlowRun, n: NodeRun, t: (us: number) => number): Record<string, unknown> {
  return {
    run_id: run.run_id,
    delivery_id: run.delivery_id,
    flow: run.flow,
    node_id: n.node_id,
    seq: n.seq,
    iteration: n.iteration,
    op: n.op,
    effect_class: n.effect_class,
    status: n.status,
    // Outputs keep their key order (deterministic: it comes from the recordings and the flow); intents are canonical, for comparison.
    output: n.output === null || n.output === undefined ? null : JSON.stringify(n.output),
    intent: n.intent === null ? null : canonicalJson(n.intent),
    error: n.error,
    duration_us: t(n.duration_us),
  };
}

/** One delivery's rows as NDJSON text: its flow runs, and their node rows in the same order. */
export function runLines(d: DeliveryInput, runs: FlowRun[], t: (us: number) => number): { flows: string; nodes: string } {
  let flows = '';
  let nodes = '';
  for (const run of runs) {
    flows += JSON.stringify(flowRunRow(d, run, t)) + '\n';
    for (const n of run.nodes) nodes += JSON.stringify(nodeRunRow(run, n, t)) + '\n';
  }
  return { flows, nodes };
}

/**
 * Text blocks as one UTF-8 buffer and the offset where each block ends: a worker
 * transfers the buffer to the main thread without a copy, and the main thread writes
 * slices of it without ever holding the rows as strings.
 */
export function encodeBlocks(blocks: readonly string[]): { bytes: Uint8Array<ArrayBuffer>; ends: Uint32Array<ArrayBuffer> } {
  const ends = new Uint32Array(blocks.length);
  let size = 0;
  blocks.forEach((b, i) => (ends[i] = size += Buffer.byteLength(b)));
  const bytes = new Uint8Array(size);
  const encoder = new TextEncoder();
  blocks.forEach((b, i) => encoder.encodeInto(b, bytes.subarray(i === 0 ? 0 : ends[i - 1])));
  return { bytes, ends };
}

/** Maps measured durations to 0 when timings are off, so two replays write the same bytes. */
export const timingsOf = (timings: boolean) => (us: number) => (timings ? us : 0);

/** A redelivery's row. */
export function redeliveryLine(r: RedeliveryResult, t: (us: number) => number): string {
  return JSON.stringify({ ...r, latency_us: t(r.latency_us) }) + '\n';
}

export function openRunWriter(paths: { flowRuns: string; nodeRuns: string; redeliveries: string }, opts: { timings: boolean }): RunWriter {
  const flows = BufferedLines.open(paths.flowRuns);
  const nodes = BufferedLines.open(paths.nodeRuns);
  const redeliveries = BufferedLines.open(paths.redeliveries);
  const t = timingsOf(opts.timings);
  return {
    async write(d, runs) {
      if (runs.length === 0) return;
      const lines = runLines(d, runs, t);
      await flows.push(lines.flows);
      await nodes.push(lines.nodes);
    },
    async writeRedelivery(r) {
      await redeliveries.push(redeliveryLine(r, t));
    },
    async close() {
      await Promise.all([flows.close(), nodes.close(), redeliveries.close()]);
    },
  };
}

/**
 * Harvesting: run a model over contexts of text, batch by batch, and write the hooked activations
 * of every (non-padding) token into an activation store, with a progress bar in tokens/s. Resumes
 * from the store's cursor: contexts before it are skipped without running the model.
 */
import { UserError } from '../errors.js';
import { formatDuration, type OutStream } from '../io/terminal.js';
import type { StoreWriter } from '../store/writer.js';

/** A model with a hook chosen, ready to give activations. */
export interface HookedModel {
  /** The model's name (SAELens model_name). */
  readonly model: string;
  readonly hookName: string;
  /** The graph tensor the hook names. */
  readonly hookTensor: string;
  /** Width of the hooked activations. */
  readonly dIn: number;
  /** Token strings by id. */
  readonly vocab: readonly string[];
  /** contexts (token ids) -> activations [sum of lengths, dIn]: every token of every context, in order. */
  activations(contexts: readonly Int32Array[]): Promise<Float32Array>;
}

/** One context of tokens the model sees at once. */
export interface Context {
  /** 0, 1, 2, ... in the source's order. */
  readonly index: number;
  readonly doc: number;
  /** [n] token ids, n <= the context size */
  readonly tokens: Int32Array;
}

export interface HarvestOptions {
  /** Contexts per model call. */
  readonly batchSize: number;
  /** Stop once the store holds this many rows (default: the whole source). */
  readonly maxTokens?: number;
  readonly progress?: HarvestProgress;
  /**
   * Leading positions of every context that the model reads but the store leaves out (1: the BOS
   * token, whose residual in Llama-like models is one huge vector, the same in every context).
   */
  readonly skipPositions?: number;
}

export interface HarvestResult {
  readonly rows: number;
  /** Tokens run through the model in this call (not those of a resumed earlier run). */
  readonly tokens: number;
  readonly seconds: number;
}

/** Runs the model over the contexts from the writer's cursor on and stores their rows. */
export async function harvest(
  model: HookedModel,
  contexts: AsyncIterable<Context> | Iterable<Context>,
  writer: StoreWriter,
  o: HarvestOptions,
): Promise<HarvestResult> {
  const started = performance.now();
  const max = o.maxTokens ?? Infinity;
  const skip = o.skipPositions ?? 0;
  let tokens = 0;
  let batch: Context[] = [];
  const run = async (): Promise<void> => {
    const x = await model.activations(batch.map((c) => c.tokens)); // [sum of lengths, dIn]
    checkFinite(model, batch, x);
    let row = 0;
    for (const c of batch) {
      const n = c.tokens.length;
      const from = Math.min(skip, n);
      const rows = keepRows(c.index, n - from, writer, Math.max(0, max - writer.rows));
      await writer.append({
        context: c.index,
        doc: c.doc,
        x: x.subarray((row + from) * model.dIn, (row + from + rows) * model.dIn),
        pos: Int32Array.from({ length: rows }, (_, i) => from + i),
        token: c.tokens.subarray(from, from + rows),
      });
      row += n;
      tokens += n;
    }
    o.progress?.update(writer.rows, tokens, (performance.now() - started) / 1000);
    batch = [];
  };
  for await (const c of contexts) {
    if (writer.rows >= max) break;
    if (c.index < writer.next.context) continue;
    batch.push(c);
    if (batch.length === o.batchSize) await run();
  }
  if (batch.length > 0 && writer.rows < max) await run();
  o.progress?.finish();
  return { rows: writer.rows, tokens, seconds: (performance.now() - started) / 1000 };
}

/** Refuses a batch whose activations hold NaN or Inf (weights that hold them, or float32 overflow): never a store of non-finite rows. */
function checkFinite(model: HookedModel, batch: readonly Context[], x: Float32Array): void {
  const at = x.findIndex((v) => !Number.isFinite(v));
  if (at < 0) return;
  let row = Math.floor(at / model.dIn);
  const c = batch.find((b) => (row -= b.tokens.length) < 0) ?? batch[0]!;
  throw new UserError(
    `model '${model.model}': ${model.hookName} is ${x[at]} at context ${c.index}, token ${row + c.tokens.length} (the model's weights hold NaN or Inf, or its activations overflow float32): no store is written from non-finite activations`,
  );
}

/**
 * How many leading rows of context `index` (n rows to store) to hand to the writer so that the store
 * stops at the token limit: the writer drops those stored before a resume itself, so they count
 * towards the limit.
 */
function keepRows(index: number, n: number, writer: StoreWriter, room: number): number {
  const already = index === writer.next.context ? Math.min(writer.next.row, n) : 0;
  return Math.min(n, already + room);
}

/** A bar redrawn in place on a terminal (a line every few seconds otherwise): rows stored, tokens/s, ETA. */
export class HarvestProgress {
  private last = 0;
  private drawn = false;

  constructor(
    private readonly stream: OutStream,
    /** Rows expected in the end, for the bar and the ETA (undefined: unknown). */
    private readonly total: number | undefined,
    private readonly quiet = false,
  ) {}

  update(rows: number, tokens: number, seconds: number): void {
    if (this.quiet) return;
    const now = performance.now();
    const interval = this.stream.isTTY ? 100 : 5000;
    if (now - this.last < interval) return;
    this.last = now;
    const rate = tokens / Math.max(seconds, 1e-9);
    const frac = this.total ? Math.min(1, rows / this.total) : undefined;
    const bar = frac === undefined ? '' : `[${'#'.repeat(Math.round(frac * 20)).padEnd(20, '.')}] ${(frac * 100).toFixed(0)}% | `;
    const eta = this.total ? ` | ETA ${formatDuration((this.total - rows) / Math.max(rate, 1e-9))}` : '';
    const line = `harvest ${bar}${rows} rows | ${rate.toFixed(0)} tokens/s${eta}`;
    if (this.stream.isTTY) {
      this.stream.write(`\r\x1b[2K${line}`);
      this.drawn = true;
    } else this.stream.write(`${line}\n`);
  }

  finish(): void {
    if (this.drawn) this.stream.write('\n');
    this.drawn = false;
  }
}

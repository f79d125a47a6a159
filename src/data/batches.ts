/**
 * Shuffled, resumable batches over a Dataset, with a held-out split (layout in split.ts):
 *   position p of the endless stream: epoch e = floor(p / T), q = p - e T  (T = training rows)
 *   window w = floor(q / W): positions [w W, min((w + 1) W, T)) of epoch e; their rows are read
 *     and shuffled with Rng.derive(seed, window, e, w); position q is slot q - w W of that shuffle
 *   batch s = positions [s B, (s + 1) B), rows holding NaN or Inf dropped (policy 'skip').
 * So batchAt(step) depends on (seed, step) only, never on what was read before: a run resumed
 * after a crash sees exactly the data it would have seen. Memory is bounded by a few windows.
 */
import { UserError, fileError } from '../errors.js';
import type { Engine } from '../engine/index.js';
import { Rng } from '../rng.js';
import type { Dataset } from './dataset.js';
import { blockPieces, type EpochOrder, epochOrder, makeSplit, mergePieces, type Piece, piecesOf, type Split, STREAM } from './split.js';
import { firstAtOrAbove } from './search.js';

/** What to do with rows holding NaN or Inf: refuse the dataset, or drop them. */
export type NonFinitePolicy = 'error' | 'skip';
export const NON_FINITE_POLICIES: readonly NonFinitePolicy[] = ['error', 'skip'];

/** How a BatchStream splits, shuffles and batches a dataset. */
export interface BatchOptions {
  /** Rows per batch (B). */
  readonly batchSize: number;
  /** Seed of the split, the epoch orders and the shuffles. */
  readonly seed: number;
  /** Fraction of rows held out for evaluation, in [0, 1) (default 0.05). */
  readonly heldOutFraction?: number;
  /** At most this many held-out rows, rounded to whole blocks (default 50,000). */
  readonly heldOutMaxRows?: number;
  /** Rows per contiguous block of the split (default 256; smaller for small datasets). */
  readonly blockRows?: number;
  /** Rows per shuffle window (W; default: 128 MiB of rows, at least B, at most T). */
  readonly windowRows?: number;
  /** Rows with NaN or Inf: 'error' (default) refuses the dataset, 'skip' drops them. */
  readonly nonFinite?: NonFinitePolicy;
}

export const BATCH_DEFAULTS = {
  heldOutFraction: 0.05,
  heldOutMaxRows: 50_000,
  blockRows: 256,
  windowBytes: 128 * 2 ** 20,
  nonFinite: 'error',
} as const;

/** One batch of rows. */
export interface Batch {
  /** [rows, dIn] */
  readonly x: Float32Array;
  /** B minus the dropped rows. */
  readonly rows: number;
  /** Rows of this batch dropped for holding NaN or Inf. */
  readonly nonFinite: number;
}

/** Rows gathered for evaluation or initialisation: x: [rows, dIn]. */
export interface RowSample {
  readonly x: Float32Array;
  readonly rows: number;
}

/** A window's rows and its shuffle. */
interface Window {
  /** [n, dIn]: the window's rows, in file order. */
  readonly x: Float32Array;
  /** [n]: slot -> row of x. */
  readonly order: Int32Array;
  /** [n]: 1 where that row of x holds NaN or Inf; undefined when none does. */
  readonly bad: Uint8Array | undefined;
}

/** Windows kept: those of the current batch and the next one being read. */
const WINDOW_CACHE = 3;
const EPOCH_CACHE = 3;
/** Bytes per read of the NaN/Inf scan. */
const SCAN_BYTES = 8 * 2 ** 20;

/**
 * Seeded batches of a Dataset: a held-out split, then shuffled windows of blocks, so that
 * batchAt(step) depends on (seed, step) only and a resumed run sees the batches it would have seen.
 *
 * @example
 * ```ts
 * const stream = await BatchStream.open(await openDataset({ path: 'acts.npy' }, engine), { batchSize: 1024, seed: 1 }, engine);
 * const { x, rows } = await stream.batchAt(42); // the same rows for step 42 on every run
 * const heldOut = await stream.heldOut(10_000);
 * ```
 */
export class BatchStream {
  readonly dIn: number;
  readonly batchSize: number;
  /** W */
  readonly windowRows: number;
  /** Rows holding NaN or Inf in the whole dataset (all dropped: policy 'skip'). */
  readonly nonFiniteRows: number;
  private readonly epochs = new Map<number, EpochOrder>();
  private readonly windows = new Map<string, Promise<Window>>();
  private ahead: { step: number; batch: Promise<Batch> } | undefined;

  private constructor(
    readonly dataset: Dataset,
    readonly split: Split,
    private readonly seed: number,
    /** Ascending indices of the rows holding NaN or Inf. */
    private readonly bad: readonly number[],
    options: BatchOptions,
  ) {
    this.dIn = dataset.dIn;
    this.batchSize = options.batchSize;
    this.nonFiniteRows = bad.length;
    const byMemory = Math.floor(BATCH_DEFAULTS.windowBytes / (4 * dataset.dIn));
    this.windowRows = Math.min(split.trainingRows, options.windowRows ?? Math.max(options.batchSize, byMemory));
  }

  /** Checks the options, scans the dataset once for NaN/Inf and applies the policy. */
  static async open(dataset: Dataset, options: BatchOptions, engine: Engine): Promise<BatchStream> {
    checkOptions(options);
    if (dataset.rows === 0) throw fileError(dataset.name, 'the dataset is empty');
    const split = makeSplit(
      dataset.rows,
      {
        blockRows: options.blockRows ?? BATCH_DEFAULTS.blockRows,
        heldOutFraction: options.heldOutFraction ?? BATCH_DEFAULTS.heldOutFraction,
        heldOutMaxRows: options.heldOutMaxRows ?? BATCH_DEFAULTS.heldOutMaxRows,
      },
      options.seed,
    );
    const bad = await scanNonFinite(dataset, engine);
    if (bad.length > 0 && (options.nonFinite ?? BATCH_DEFAULTS.nonFinite) === 'error') {
      throw fileError(
        dataset.name,
        `${bad.length} of ${dataset.rows} rows contain NaN or Inf (first at row ${bad[0]}); nothing was trained. Use --nonfinite skip to drop them.`,
      );
    }
    if (badTrainingRows(split, bad) === split.trainingRows) {
      throw fileError(dataset.name, 'every training row contains NaN or Inf; there is nothing to train on');
    }
    return new BatchStream(dataset, split, options.seed, bad, options);
  }

  /** T: positions per epoch (NaN/Inf rows included, then dropped from their batches). */
  get trainingRows(): number {
    return this.split.trainingRows;
  }

  /** Epochs completed before `step` (fractional). */
  epochAt(step: number): number {
    return (step * this.batchSize) / this.split.trainingRows;
  }

  /**
   * Batch `step` (0-based). The same (seed, step) always gives the same batch. The next batch is
   * prepared in the background, so that reading overlaps whatever the caller does with this one.
   */
  batchAt(step: number): Promise<Batch> {
    if (!Number.isSafeInteger(step) || step < 0) throw new RangeError(`batchAt: step must be a non-negative integer, got ${step}`);
    const ahead = this.ahead;
    const batch = ahead !== undefined && ahead.step === step ? ahead.batch : this.makeBatch(step);
    const next = this.makeBatch(step + 1);
    next.catch(() => undefined); // reported if and when that batch is asked for
    this.ahead = { step: step + 1, batch: next };
    return batch;
  }

  /** Up to maxRows held-out rows (NaN/Inf rows dropped), block by block in the seeded order they were chosen. */
  heldOut(maxRows = Infinity): Promise<RowSample> {
    return this.collect(blockPieces(this.split, this.split.heldOut), maxRows);
  }

  /** Up to n training rows from seeded random blocks (NaN/Inf rows dropped): for initialisation and scaling. */
  sampleTraining(n: number): Promise<RowSample> {
    const blocks = Rng.derive(this.seed, STREAM.sample).shuffle(this.split.training.slice());
    return this.collect(blockPieces(this.split, blocks), n);
  }

  /** The split and shuffle settings, for a run's metadata. */
  describe(): Record<string, number> {
    return {
      seed: this.seed,
      batchSize: this.batchSize,
      blockRows: this.split.blockRows,
      windowRows: this.windowRows,
      trainingRows: this.split.trainingRows,
      heldOutRows: this.split.heldOutRows,
      nonFiniteRows: this.nonFiniteRows,
    };
  }

  private async makeBatch(step: number): Promise<Batch> {
    const d = this.dIn;
    const T = this.split.trainingRows;
    const W = this.windowRows;
    const x = new Float32Array(this.batchSize * d); // [B, dIn]
    let rows = 0;
    let nonFinite = 0;
    let at: [epoch: number, window: number] = [0, 0];
    for (let p = step * this.batchSize, end = p + this.batchSize; p < end;) {
      const e = Math.floor(p / T);
      const w = Math.floor((p - e * T) / W);
      const slot = p - e * T - w * W;
      const win = await this.window(e, w);
      const n = Math.min(end - p, win.order.length - slot);
      for (let i = slot; i < slot + n; i++) {
        const r = win.order[i]!;
        if (win.bad?.[r] === 1) nonFinite++;
        else x.set(win.x.subarray(r * d, (r + 1) * d), d * rows++);
      }
      p += n;
      at = [e, w];
    }
    this.prefetchAfter(...at);
    return { x: nonFinite > 0 ? x.slice(0, rows * d) : x, rows, nonFinite };
  }

  /** Starts reading the window after (e, w), so it is ready when the stream gets there. */
  private prefetchAfter(e: number, w: number): void {
    const next: [number, number] = (w + 1) * this.windowRows < this.split.trainingRows ? [e, w + 1] : [e + 1, 0];
    this.window(...next).catch(() => undefined);
  }

  /** Window w of epoch e, from the cache or read now. */
  private window(e: number, w: number): Promise<Window> {
    const key = `${e}:${w}`;
    const cached = this.windows.get(key);
    this.windows.delete(key);
    const win = cached ?? this.loadWindow(e, w);
    this.windows.set(key, win); // most recent last
    if (cached === undefined) win.catch(() => this.windows.get(key) === win && this.windows.delete(key));
    for (const old of this.windows.keys()) if (this.windows.size > WINDOW_CACHE) this.windows.delete(old);
    return win;
  }

  private async loadWindow(e: number, w: number): Promise<Window> {
    const from = w * this.windowRows;
    const to = Math.min(from + this.windowRows, this.split.trainingRows);
    const pieces = mergePieces(piecesOf(this.split, this.epoch(e), from, to));
    const x = new Float32Array((to - from) * this.dIn);
    const bad = await this.readPieces(pieces, x);
    const order = new Int32Array(to - from);
    for (let i = 0; i < order.length; i++) order[i] = i;
    Rng.derive(this.seed, STREAM.window, e, w).shuffle(order);
    return { x, order, bad };
  }

  private epoch(e: number): EpochOrder {
    let order = this.epochs.get(e);
    if (order === undefined) {
      order = epochOrder(this.split, this.seed, e);
      this.epochs.set(e, order);
      for (const old of this.epochs.keys()) if (this.epochs.size > EPOCH_CACHE) this.epochs.delete(old);
    }
    return order;
  }

  /** Reads the pieces one after another into out -> flags of the rows holding NaN/Inf (undefined if none). */
  private async readPieces(pieces: readonly Piece[], out: Float32Array): Promise<Uint8Array | undefined> {
    let flags: Uint8Array | undefined;
    let row = 0;
    for (const p of pieces) {
      await this.dataset.read(p.start, p.count, out.subarray(row * this.dIn, (row + p.count) * this.dIn));
      for (const r of badIn(this.bad, p)) {
        flags ??= new Uint8Array(out.length / this.dIn);
        flags[row + r - p.start] = 1;
      }
      row += p.count;
    }
    return flags;
  }

  /** The pieces' rows in order, NaN/Inf rows dropped, cut at maxRows. */
  private async collect(pieces: readonly Piece[], maxRows: number): Promise<RowSample> {
    if (!(maxRows >= 0) || (maxRows !== Infinity && !Number.isSafeInteger(maxRows)))
      throw new RangeError(`maxRows must be a non-negative integer, got ${maxRows}`);
    const chosen: Piece[] = [];
    let usable = 0;
    for (const p of pieces) {
      if (usable >= maxRows) break;
      chosen.push(p);
      usable += p.count - badIn(this.bad, p).length;
    }
    const total = chosen.reduce((n, p) => n + p.count, 0);
    const x = new Float32Array(total * this.dIn); // [total, dIn]
    const rows = Math.min(maxRows, compactRows(x, await this.readPieces(chosen, x), this.dIn));
    return { x: rows === total ? x : x.slice(0, rows * this.dIn), rows };
  }
}

function checkOptions(o: BatchOptions): void {
  const positive = (name: string, v: number | undefined): void => {
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 1)) throw new UserError(`${name} must be a positive integer, got ${v}`);
  };
  positive('the batch size', o.batchSize);
  positive('the block size', o.blockRows);
  positive('the shuffle window', o.windowRows);
  if (!Number.isSafeInteger(o.seed)) throw new UserError(`the seed must be an integer, got ${o.seed}`);
  const f = o.heldOutFraction;
  if (f !== undefined && !(f >= 0 && f < 1)) throw new UserError(`the held-out fraction must be in [0, 1), got ${f}`);
  const m = o.heldOutMaxRows;
  if (m !== undefined && (!Number.isSafeInteger(m) || m < 0)) throw new UserError(`the held-out cap must be a non-negative integer, got ${m}`);
  if (o.nonFinite !== undefined && !NON_FINITE_POLICIES.includes(o.nonFinite)) {
    throw new UserError(`unknown NaN/Inf policy '${o.nonFinite}': choose one of ${NON_FINITE_POLICIES.join(', ')}`);
  }
}

/** dataset -> ascending indices of its rows holding NaN or Inf, read in chunks and checked on the kernels. */
async function scanNonFinite(ds: Dataset, engine: Engine): Promise<number[]> {
  const chunkRows = Math.max(1, Math.floor(SCAN_BYTES / (4 * ds.dIn)));
  const buf = new Float32Array(chunkRows * ds.dIn); // [chunkRows, dIn]
  const mask = new Uint8Array(chunkRows);
  const bad: number[] = [];
  for (let start = 0; start < ds.rows; start += chunkRows) {
    const n = Math.min(chunkRows, ds.rows - start);
    const x = buf.subarray(0, n * ds.dIn);
    await ds.read(start, n, x);
    if (engine.kernels.nonFiniteRows(x, n, ds.dIn, mask.subarray(0, n)) === 0) continue;
    for (let i = 0; i < n; i++) if (mask[i] === 1) bad.push(start + i);
  }
  return bad;
}

/** The entries of the ascending list `bad` inside the piece. */
function badIn(bad: readonly number[], p: Piece): readonly number[] {
  if (bad.length === 0) return bad;
  return bad.slice(firstAtOrAbove(bad, p.start), firstAtOrAbove(bad, p.start + p.count));
}

/** How many training rows hold NaN or Inf. */
function badTrainingRows(split: Split, bad: readonly number[]): number {
  const heldOut = new Set(split.heldOut);
  return bad.filter((r) => !heldOut.has(Math.floor(r / split.blockRows))).length;
}

/** x: [n, d], in place: the rows not flagged moved to the front -> how many there are. */
function compactRows(x: Float32Array, flags: Uint8Array | undefined, d: number): number {
  const n = x.length / d;
  if (flags === undefined) return n;
  let kept = 0;
  for (let r = 0; r < n; r++) {
    if (flags[r] === 1) continue;
    if (kept !== r) x.copyWithin(kept * d, r * d, (r + 1) * d);
    kept++;
  }
  return kept;
}

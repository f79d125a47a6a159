/**
 * The row layout behind a BatchStream, pure and seeded:
 *   rows are cut into blocks of K consecutive rows (the last one may be shorter);
 *   a seeded choice of blocks is held out, the rest are training blocks;
 *   epoch e visits the training blocks in a seeded permutation; laid end to end they give the
 *   epoch's T positions (T = the training rows), and position q of epoch e is one row.
 * Blocks keep reads contiguous; the shuffle inside a window (batches.ts) mixes rows across blocks.
 */
import { Rng } from '../rng.js';
import { lastAtOrBelow } from './search.js';

/** Labels of the Rng streams derived from the data seed. */
export const STREAM = { heldOut: 1, epoch: 2, window: 3, sample: 4 } as const;

export interface SplitOptions {
  /** Rows per block at most (smaller for small datasets, so that there are at least MIN_BLOCKS blocks). */
  readonly blockRows: number;
  /** Fraction of rows held out, in [0, 1). */
  readonly heldOutFraction: number;
  /** At most this many held-out rows (rounded to whole blocks). */
  readonly heldOutMaxRows: number;
}

/** A dataset's rows split in blocks: the training blocks and the held-out ones. */
export interface Split {
  readonly rows: number;
  /** K: rows per block. */
  readonly blockRows: number;
  readonly blocks: number;
  /** Held-out block ids, in the seeded order they were chosen. */
  readonly heldOut: Int32Array;
  /** Training block ids, ascending. */
  readonly training: Int32Array;
  /** T: rows in the training blocks (an epoch), NaN/Inf rows included. */
  readonly trainingRows: number;
  readonly heldOutRows: number;
}

/** A run of consecutive rows [start, start + count). */
export interface Piece {
  readonly start: number;
  readonly count: number;
}

/** One epoch: training blocks in visiting order, and where each starts among the epoch's positions. */
export interface EpochOrder {
  /** [training blocks] */
  readonly blocks: Int32Array;
  /** [training blocks + 1]: starts[j] = position of the first row of blocks[j]; the last is T. */
  readonly starts: Float64Array;
}

const MIN_BLOCKS = 256;

export function blockLength(s: Pick<Split, 'rows' | 'blockRows'>, block: number): number {
  return Math.min(s.blockRows, s.rows - block * s.blockRows);
}

export function makeSplit(rows: number, o: SplitOptions, seed: number): Split {
  const blockRows = Math.max(1, Math.min(o.blockRows, Math.floor(rows / MIN_BLOCKS)));
  const blocks = Math.ceil(rows / blockRows);
  const wanted = Math.min(Math.round(o.heldOutFraction * rows), o.heldOutMaxRows);
  const heldOutBlocks = wanted > 0 ? Math.min(blocks - 1, Math.max(1, Math.round(wanted / blockRows))) : 0;
  const order = Rng.derive(seed, STREAM.heldOut).shuffle(Int32Array.from({ length: blocks }, (_, i) => i));
  const heldOut = order.slice(0, heldOutBlocks);
  const training = order.slice(heldOutBlocks).sort();
  const size = { rows, blockRows };
  const heldOutRows = heldOut.reduce((n, b) => n + blockLength(size, b), 0);
  return { rows, blockRows, blocks, heldOut, training, trainingRows: rows - heldOutRows, heldOutRows };
}

export function epochOrder(s: Split, seed: number, epoch: number): EpochOrder {
  const blocks = Rng.derive(seed, STREAM.epoch, epoch).shuffle(s.training.slice());
  const starts = new Float64Array(blocks.length + 1);
  for (let j = 0; j < blocks.length; j++) starts[j + 1] = starts[j]! + blockLength(s, blocks[j]!);
  return { blocks, starts };
}

/** Positions [from, to) of an epoch -> the rows they hold, as pieces in position order. */
export function piecesOf(s: Split, order: EpochOrder, from: number, to: number): Piece[] {
  const out: Piece[] = [];
  for (let j = lastAtOrBelow(order.starts, from); from < to; j++) {
    const blockStart = order.blocks[j]! * s.blockRows;
    const inBlock = from - order.starts[j]!;
    const count = Math.min(to, order.starts[j + 1]!) - from;
    out.push({ start: blockStart + inBlock, count });
    from += count;
  }
  return out;
}

/** Pieces sorted by start, touching ones merged: fewer, longer, in-order reads. */
export function mergePieces(pieces: readonly Piece[]): Piece[] {
  const sorted = [...pieces].sort((a, b) => a.start - b.start);
  const out: Piece[] = [];
  for (const p of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && last.start + last.count === p.start) out[out.length - 1] = { start: last.start, count: last.count + p.count };
    else out.push(p);
  }
  return out;
}

/** Whole blocks as pieces, in the given order. */
export function blockPieces(s: Split, blocks: Iterable<number>): Piece[] {
  return Array.from(blocks, (b) => ({ start: b * s.blockRows, count: blockLength(s, b) }));
}

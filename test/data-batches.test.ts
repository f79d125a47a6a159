import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Batch, type BatchOptions, BatchStream } from '../src/data/batches.js';
import { memoryDataset } from '../src/data/memory.js';
import { openDataset } from '../src/store/open.js';
import { firstAtOrAbove, lastAtOrBelow } from '../src/data/search.js';
import { makeSplit, mergePieces } from '../src/data/split.js';
import { Engine } from '../src/engine/index.js';
import { UserError } from '../src/errors.js';
import { serializeNpy } from '../src/io/npy.js';

const D = 3;
let engine: Engine;

beforeAll(() => {
  engine = new Engine({ kernels: 'reference', threads: 1 });
});
afterAll(() => engine.release());

/** [rows, 3]: row r is (r, r + 0.5, -r), so a row names itself. */
function rowsNamed(rows: number, nan: readonly number[] = []): Float32Array {
  const x = new Float32Array(rows * D);
  for (let r = 0; r < rows; r++) x.set([r, r + 0.5, -r], r * D);
  for (const r of nan) x[r * D + 1] = r % 2 === 0 ? NaN : Infinity;
  return x;
}

function ids(x: Float32Array, rows: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    const id = x[r * D]!;
    expect([x[r * D + 1], x[r * D + 2]]).toEqual([id + 0.5, -id]); // a whole row, not a mix
    out.push(id);
  }
  return out;
}

const sorted = (xs: readonly number[]): number[] => [...xs].sort((a, b) => a - b);

async function stream(rows: number, options: Partial<BatchOptions> = {}, nan: readonly number[] = []): Promise<BatchStream> {
  const ds = memoryDataset('mem', rowsNamed(rows, nan), D);
  return BatchStream.open(ds, { batchSize: 32, seed: 7, blockRows: 8, windowRows: 100, ...options }, engine);
}

async function trainingIds(s: BatchStream): Promise<number[]> {
  const held = new Set(ids((await s.heldOut()).x, (await s.heldOut()).rows));
  return Array.from({ length: s.dataset.rows }, (_, r) => r).filter((r) => !held.has(r));
}

describe('split', () => {
  it('holds out whole blocks, about the fraction asked, capped', () => {
    const s = makeSplit(100_000, { blockRows: 256, heldOutFraction: 0.05, heldOutMaxRows: 50_000 }, 1);
    expect(s.blockRows).toBe(256);
    expect(s.heldOutRows).toBe(20 * 256);
    expect(s.trainingRows + s.heldOutRows).toBe(100_000);
    const capped = makeSplit(100_000, { blockRows: 256, heldOutFraction: 0.5, heldOutMaxRows: 1000 }, 1);
    expect(capped.heldOut.length).toBe(4);
    const none = makeSplit(50, { blockRows: 256, heldOutFraction: 0, heldOutMaxRows: 1000 }, 1);
    expect([none.heldOutRows, none.trainingRows, none.blockRows]).toEqual([0, 50, 1]);
    const one = makeSplit(1, { blockRows: 256, heldOutFraction: 0.5, heldOutMaxRows: 1000 }, 1);
    expect([one.heldOutRows, one.trainingRows]).toEqual([0, 1]);
  });

  it('searches sorted arrays, repeated entries included', () => {
    expect([0, 5, 99, 100, 150].map((x) => lastAtOrBelow([0, 0, 100, 100, 200], x))).toEqual([1, 1, 1, 3, 3]);
    expect([-1, 0, 1, 100, 201].map((x) => firstAtOrAbove([0, 0, 100, 100, 200], x))).toEqual([0, 0, 2, 2, 5]);
  });

  it('merges touching pieces', () => {
    expect(
      mergePieces([
        { start: 8, count: 4 },
        { start: 0, count: 8 },
        { start: 20, count: 1 },
      ]),
    ).toEqual([
      { start: 0, count: 12 },
      { start: 20, count: 1 },
    ]);
  });
});

describe('BatchStream', () => {
  it('gives the same batch for the same step, whatever was read before', async () => {
    const a = await stream(1000);
    const inOrder: Batch[] = [];
    for (let s = 0; s < 80; s++) inOrder.push(await a.batchAt(s));
    expect(await a.batchAt(3)).toEqual(inOrder[3]);
    const b = await stream(1000);
    for (const s of [79, 0, 41, 40, 5, 77, 29, 30, 31]) expect(await b.batchAt(s)).toEqual(inOrder[s]);
    const c = await stream(1000, { seed: 8 });
    expect(await c.batchAt(0)).not.toEqual(inOrder[0]);
  });

  it('visits every training row once per epoch, across windows and epoch boundaries', async () => {
    const s = await stream(1000);
    const T = s.trainingRows;
    expect(T).toBeGreaterThan(900);
    expect(T % 32).not.toBe(0); // batches straddle the epoch boundary
    const seen: number[] = [];
    for (let step = 0; seen.length < 3 * T; step++) {
      const b = await s.batchAt(step);
      expect([b.rows, b.nonFinite, b.x.length]).toEqual([32, 0, 32 * D]);
      seen.push(...ids(b.x, b.rows));
    }
    const training = await trainingIds(s);
    const epochs = [0, 1, 2].map((e) => seen.slice(e * T, (e + 1) * T));
    for (const e of epochs) expect(sorted(e)).toEqual(training);
    expect(epochs[1]).not.toEqual(epochs[0]);
    expect(s.epochAt(Math.ceil(T / 32))).toBeGreaterThanOrEqual(1);
  });

  it('never puts a held-out row in a training batch', async () => {
    const s = await stream(1000, { heldOutFraction: 0.1 });
    const held = await s.heldOut();
    expect(held.rows).toBe(s.split.heldOutRows);
    expect(held.rows).toBeGreaterThanOrEqual(90);
    const heldIds = new Set(ids(held.x, held.rows));
    for (let step = 0; step < 2 * Math.ceil(s.trainingRows / 32); step++) {
      const b = await s.batchAt(step);
      for (const id of ids(b.x, b.rows)) expect(heldIds.has(id)).toBe(false);
    }
    const few = await s.heldOut(10);
    expect(few.rows).toBe(10);
    expect(few.x).toEqual(held.x.subarray(0, 10 * D));
  });

  it('works when the whole dataset is smaller than a batch', async () => {
    const s = await stream(10, { batchSize: 25, heldOutFraction: 0 });
    const b = await s.batchAt(0);
    const got = ids(b.x, b.rows);
    expect(sorted(got.slice(0, 10))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(sorted(got.slice(10, 20))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(await (await stream(10, { batchSize: 25, heldOutFraction: 0 })).batchAt(1)).toEqual(await s.batchAt(1));
  });

  it('takes a seeded sample of distinct training rows', async () => {
    const s = await stream(1000);
    const a = await s.sampleTraining(100);
    expect(a.rows).toBe(100);
    expect(await (await stream(1000)).sampleTraining(100)).toEqual(a);
    const got = ids(a.x, a.rows);
    expect(new Set(got).size).toBe(100);
    const training = new Set(await trainingIds(s));
    for (const id of got) expect(training.has(id)).toBe(true);
    expect((await s.sampleTraining(1e9)).rows).toBe(s.trainingRows);
  });

  it("refuses rows with NaN or Inf under 'error', in one line", async () => {
    const err: unknown = await stream(10_000, {}, [17, 500, 9000]).catch((e: unknown) => e);
    if (!(err instanceof UserError)) throw new Error(`expected a UserError, got ${String(err)}`);
    expect(err.message).toBe('mem: 3 of 10000 rows contain NaN or Inf (first at row 17); nothing was trained. Use --nonfinite skip to drop them.');
  });

  it("drops rows with NaN or Inf under 'skip' and counts them", async () => {
    const bad = [17, 40, 41, 500, 999];
    const s = await stream(1000, { nonFinite: 'skip' }, bad);
    expect(s.nonFiniteRows).toBe(5);
    const clean = (await trainingIds(s)).filter((r) => !bad.includes(r));
    // One batch of exactly one epoch: every clean training row once, the others counted as dropped.
    const epoch = await stream(1000, { nonFinite: 'skip', batchSize: s.trainingRows }, bad);
    const b = await epoch.batchAt(0);
    expect(b.x.length).toBe(b.rows * D);
    expect(b.rows + b.nonFinite).toBe(s.trainingRows);
    expect(sorted(ids(b.x, b.rows))).toEqual(clean);
    const held = await s.heldOut();
    for (const id of ids(held.x, held.rows)) expect(bad.includes(id)).toBe(false);
    expect(b.nonFinite + (s.split.heldOutRows - held.rows)).toBe(bad.length);
    const sample = await s.sampleTraining(1e9);
    expect(sorted(ids(sample.x, sample.rows))).toEqual(clean);
    const all = await stream(
      20,
      { nonFinite: 'skip', heldOutFraction: 0 },
      Array.from({ length: 20 }, (_, r) => r),
    ).catch((e: unknown) => e);
    expect(all).toBeInstanceOf(UserError);
  });

  it('checks its options', async () => {
    await expect(stream(100, { batchSize: 0 })).rejects.toThrow(/batch size must be a positive integer/);
    await expect(stream(100, { heldOutFraction: 1 })).rejects.toThrow(/held-out fraction must be in \[0, 1\)/);
    await expect(stream(100, { nonFinite: 'drop' as 'skip' })).rejects.toThrow(/choose one of error, skip/);
  });

  it('streams from a file with the same batches as from memory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'data-batches-'));
    try {
      const path = join(dir, 'rows.npy');
      await writeFile(path, serializeNpy(rowsNamed(700), [700, D]));
      const ds = await openDataset({ path }, engine);
      const fromFile = await BatchStream.open(ds, { batchSize: 64, seed: 3, windowRows: 150 }, engine);
      const fromMemory = await BatchStream.open(memoryDataset('m', rowsNamed(700), D), { batchSize: 64, seed: 3, windowRows: 150 }, engine);
      for (const step of [0, 1, 11, 12, 30]) expect(await fromFile.batchAt(step)).toEqual(await fromMemory.batchAt(step));
      await ds.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BatchStream } from '../src/data/batches.js';
import { openDataset } from '../src/store/open.js';
import { Engine } from '../src/engine/index.js';
import { UserError } from '../src/errors.js';
import { type Context, harvest, type HookedModel } from '../src/lm/harvest.js';
import { openStore, type StoreDataset } from '../src/store/dataset.js';
import { type StoreSettings, StoreWriter } from '../src/store/writer.js';

const D = 3;
const tmp: string[] = [];
afterAll(async () => Promise.all(tmp.map((d) => rm(d, { recursive: true, force: true }))));
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'sae-store-'));
  tmp.push(d);
  return d;
}

/** 23 contexts of 1..9 tokens over 5 documents. */
const CONTEXTS: Context[] = Array.from({ length: 23 }, (_, i) => ({
  index: i,
  doc: Math.floor(i / 5),
  tokens: Int32Array.from({ length: 1 + ((i * 7) % 9) }, (_, j) => (i * 31 + j) % 50),
}));
const TOTAL = CONTEXTS.reduce((n, c) => n + c.tokens.length, 0);

/** The value of feature k of token j of context i: every row is different and known. */
const value = (i: number, j: number, k: number): number => i * 100 + j + k / 10;

/** A fake model whose activations say where they come from; it can be made to die after `dieAfter` calls. */
function fakeModel(dieAfter = Infinity): HookedModel & { calls: number } {
  const m = {
    model: 'fake',
    hookName: 'blocks.0.hook_resid_post',
    hookTensor: 'fake/resid',
    dIn: D,
    vocab: Array.from({ length: 50 }, (_, i) => `t${i}`),
    calls: 0,
    activations(contexts: readonly Int32Array[]): Promise<Float32Array> {
      if (++m.calls > dieAfter) return Promise.reject(new Error('killed'));
      const rows: number[] = [];
      for (const t of contexts) {
        const i = CONTEXTS.findIndex((c) => c.tokens === t);
        for (let j = 0; j < t.length; j++) for (let k = 0; k < D; k++) rows.push(value(i, j, k));
      }
      return Promise.resolve(Float32Array.from(rows));
    },
  };
  return m;
}

const settings = (over: Partial<StoreSettings> = {}): StoreSettings => ({
  model: 'fake',
  hookName: 'blocks.0.hook_resid_post',
  hookTensor: 'fake/resid',
  dIn: D,
  contextSize: 9,
  dtype: 'float32',
  rowsPerShard: 7,
  source: { corpus: 'test' },
  vocab: Array.from({ length: 50 }, (_, i) => `t${i}`),
  ...over,
});

async function readAll(store: StoreDataset): Promise<{ x: Float32Array; ctx: Int32Array; pos: Int32Array; token: Int32Array; doc: Int32Array }> {
  const x = new Float32Array(store.rows * D);
  await store.read(0, store.rows, x);
  return { x, ...(await store.rowInfo(0, store.rows)) };
}

/** The store every harvest of CONTEXTS must produce (up to `limit` rows). */
function expected(limit = TOTAL): { x: number[]; ctx: number[]; pos: number[]; token: number[]; doc: number[] } {
  const e = { x: [] as number[], ctx: [] as number[], pos: [] as number[], token: [] as number[], doc: [] as number[] };
  for (const c of CONTEXTS) {
    for (let j = 0; j < c.tokens.length && e.ctx.length < limit; j++) {
      for (let k = 0; k < D; k++) e.x.push(value(c.index, j, k));
      e.ctx.push(c.index);
      e.pos.push(j);
      e.token.push(c.tokens[j]!);
      e.doc.push(c.doc);
    }
  }
  return e;
}

describe('activation store', () => {
  it('stores every token of every context once, in order, across shards', async () => {
    const dir = await tempDir();
    const writer = await StoreWriter.open(dir, settings());
    const r = await harvest(fakeModel(), CONTEXTS, writer, { batchSize: 4 });
    const m = await writer.finish();
    expect(r.rows).toBe(TOTAL);
    expect(m.complete).toBe(true);
    expect(m.shards.length).toBe(Math.ceil(TOTAL / 7));
    expect(m.documents).toBe(5);
    expect(m.contexts).toBe(23);
    const store = await openStore(dir);
    const got = await readAll(store);
    const want = expected();
    expect(Array.from(got.x)).toEqual(want.x.map(Math.fround));
    expect(Array.from(got.ctx)).toEqual(want.ctx);
    expect(Array.from(got.pos)).toEqual(want.pos);
    expect(Array.from(got.token)).toEqual(want.token);
    expect(Array.from(got.doc)).toEqual(want.doc);
    expect((await store.vocab())[7]).toBe('t7');
    await store.close();
  });

  it('resumes after a kill at any batch without duplicate or lost rows', async () => {
    const want = expected();
    for (const dieAfter of [1, 2, 3, 5]) {
      const dir = await tempDir();
      const first = await StoreWriter.open(dir, settings());
      await expect(harvest(fakeModel(dieAfter), CONTEXTS, first, { batchSize: 3 })).rejects.toThrow('killed');
      // what a kill can leave besides: a temp file and a shard written but not yet counted
      await writeFile(join(dir, 'manifest.json.tmp-1-abc'), 'partial');
      const counted = (await openStore(dir)).manifest.shards.length;
      await writeFile(join(dir, `shard-${String(counted).padStart(5, '0')}.safetensors`), 'half a shard');

      const again = await StoreWriter.open(dir, settings(), { resume: true });
      expect(again.next.context).toBeGreaterThan(0);
      const model = fakeModel();
      await harvest(model, CONTEXTS, again, { batchSize: 3 });
      await again.finish();
      const store = await openStore(dir);
      const got = await readAll(store);
      expect(Array.from(got.ctx)).toEqual(want.ctx);
      expect(Array.from(got.pos)).toEqual(want.pos);
      expect(Array.from(got.x)).toEqual(want.x.map(Math.fround));
      await store.close();
    }
  });

  it('stops at the token limit, also across a resume', async () => {
    const dir = await tempDir();
    const w = await StoreWriter.open(dir, settings());
    await expect(harvest(fakeModel(2), CONTEXTS, w, { batchSize: 3, maxTokens: 40 })).rejects.toThrow('killed');
    const again = await StoreWriter.open(dir, settings(), { resume: true });
    await harvest(fakeModel(), CONTEXTS, again, { batchSize: 3, maxTokens: 40 });
    await again.finish();
    const store = await openStore(dir);
    expect(store.rows).toBe(40);
    expect(Array.from((await readAll(store)).ctx)).toEqual(expected(40).ctx);
    await store.close();
  });

  it('refuses to resume with other settings, and to overwrite unasked', async () => {
    const dir = await tempDir();
    await (await StoreWriter.open(dir, settings())).finish();
    await expect(StoreWriter.open(dir, settings({ hookName: 'blocks.1.hook_resid_post' }), { resume: true })).rejects.toThrow(/hook_name differ/);
    await expect(StoreWriter.open(dir, settings())).rejects.toThrow(UserError);
    const fresh = await StoreWriter.open(dir, settings(), { overwrite: true });
    expect(fresh.rows).toBe(0);
    await expect(StoreWriter.open(await tempDir(), settings(), { resume: true })).rejects.toThrow(/no activation store/);
  });

  it('float16 stores round to half precision', async () => {
    const dir = await tempDir();
    const w = await StoreWriter.open(dir, settings({ dtype: 'float16' }));
    await harvest(fakeModel(), CONTEXTS, w, { batchSize: 8 });
    await w.finish();
    const store = await openStore(dir);
    const got = await readAll(store);
    const want = expected().x;
    for (let i = 0; i < want.length; i++) expect(Math.abs(got.x[i]! - want[i]!)).toBeLessThanOrEqual(Math.abs(want[i]!) * 2 ** -10);
    await store.close();
  });

  it('opens as a dataset (a folder with a manifest) and shuffles through a bounded window, each row once per epoch', async () => {
    const dir = await tempDir();
    const w = await StoreWriter.open(dir, settings());
    await harvest(fakeModel(), CONTEXTS, w, { batchSize: 5 });
    await w.finish();
    const engine = new Engine({ threads: 1, kernels: 'reference' });
    const ds = await openDataset({ path: dir }, engine);
    expect(ds.description['format']).toBe('store');
    const stream = await BatchStream.open(ds, { batchSize: 5, seed: 3, heldOutFraction: 0, windowRows: 16, blockRows: 4 }, engine);
    const seen: number[] = [];
    for (let s = 0; s * 5 < stream.trainingRows; s++) {
      const b = await stream.batchAt(s);
      for (let r = 0; r < b.rows; r++) seen.push(b.x[r * D]!);
    }
    const firsts = expected()
      .x.filter((_, i) => i % D === 0)
      .map(Math.fround);
    expect(seen.slice(0, TOTAL).sort((a, b) => a - b)).toEqual([...firsts].sort((a, b) => a - b));
    expect(seen.slice(0, 16)).not.toEqual(firsts.slice(0, 16));
    await ds.close();
    expect((await readdir(dir)).filter((f) => f.endsWith('.safetensors')).length).toBe(Math.ceil(TOTAL / 7));
  });
});

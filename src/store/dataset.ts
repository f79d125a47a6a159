/**
 * An activation store read back as a Dataset: random access by row across shards (positional
 * reads, so a store larger than memory is fine), the per-row document, context, position and
 * token, and the vocabulary. Shuffled training batches come from BatchStream over it (a bounded
 * window of rows, shuffled, resumable by step). Only committed shards are read, so a store whose
 * harvest is still running or was interrupted can be trained on as far as it goes.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Dataset } from '../data/dataset.js';
import { checkRead } from '../data/memory.js';
import { lastAtOrBelow } from '../data/search.js';
import { safetensorsDataset } from '../data/safetensors.js';
import { fileError } from '../errors.js';
import { type OpenedFile, openForReading, readExactly } from '../io/atomic.js';
import { readSafetensorsHeader, type StTensorInfo } from '../io/safetensors.js';
import { readManifest, SHARD_TENSORS, type StoreManifest } from './manifest.js';

/** Per-row metadata of rows [start, start + count): each [count]. */
export interface RowInfo {
  readonly doc: Int32Array;
  readonly ctx: Int32Array;
  readonly pos: Int32Array;
  readonly token: Int32Array;
}

type Column = keyof RowInfo;
const COLUMNS: readonly Column[] = ['doc', 'ctx', 'pos', 'token'];

export interface StoreDataset extends Dataset {
  readonly dir: string;
  readonly manifest: StoreManifest;
  rowInfo(start: number, count: number): Promise<RowInfo>;
  /** Token strings by id. */
  vocab(): Promise<string[]>;
}

interface OpenShard {
  readonly path: string;
  readonly activations: Dataset;
  readonly file: OpenedFile;
  readonly columns: Readonly<Record<Column, StTensorInfo>>;
}

export function isStoreDataset(ds: Dataset): ds is StoreDataset {
  return 'manifest' in ds && 'rowInfo' in ds;
}

export async function openStore(dir: string): Promise<StoreDataset> {
  const m = await readManifest(dir);
  for (let i = 0; i < m.shards.length; i++) await checkShard(dir, m, i); // headers only: a store larger than memory is fine
  const starts: number[] = []; // [shards + 1] first row of each shard, then the total
  let total = 0;
  for (const s of m.shards) {
    starts.push(total);
    total += s.rows;
  }
  starts.push(total);
  const shards = new Map<number, Promise<OpenShard>>();
  const shard = (i: number): Promise<OpenShard> => {
    let s = shards.get(i);
    if (s === undefined) {
      s = openShard(dir, m, i);
      shards.set(i, s);
    }
    return s;
  };

  /** Calls visit(shard, first row in it, rows, offset in the request) for the shards rows [start, start + count) span. */
  const pieces = async (start: number, count: number, visit: (s: OpenShard, from: number, n: number, at: number) => Promise<void>): Promise<void> => {
    const jobs: Promise<void>[] = [];
    for (let at = 0; at < count;) {
      const i = lastAtOrBelow(starts, start + at);
      const from = start + at - starts[i]!;
      const n = Math.min(count - at, m.shards[i]!.rows - from);
      const offset = at;
      jobs.push(shard(i).then((s) => visit(s, from, n, offset)));
      at += n;
    }
    await Promise.all(jobs);
  };

  const ds: StoreDataset = {
    name: dir,
    dir,
    manifest: m,
    dIn: m.d_in,
    rows: m.rows,
    description: { format: 'store', model: m.model, hook_name: m.hook_name, dtype: m.dtype, context_size: m.context_size, rows: m.rows, source: m.source },
    async read(start, count, out) {
      checkRead(ds, start, count, out);
      await pieces(start, count, (s, from, n, at) => s.activations.read(from, n, out.subarray(at * m.d_in, (at + n) * m.d_in)));
    },
    async rowInfo(start, count) {
      checkRows(ds, start, count);
      const info = { doc: new Int32Array(count), ctx: new Int32Array(count), pos: new Int32Array(count), token: new Int32Array(count) };
      await pieces(start, count, async (s, from, n, at) => {
        for (const c of COLUMNS) {
          const bytes = await readExactly(s.file, s.columns[c].begin + from * 4, n * 4, s.path);
          info[c].set(new Int32Array(bytes.buffer, bytes.byteOffset, n), at);
        }
      });
      return info;
    },
    async vocab() {
      const path = join(dir, m.vocab);
      let parsed: unknown;
      try {
        parsed = JSON.parse(await readFile(path, 'utf8'));
      } catch (e) {
        throw fileError(path, `cannot read the vocabulary (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`);
      }
      if (!Array.isArray(parsed) || !parsed.every((t): t is string => typeof t === 'string')) throw fileError(path, 'expected a JSON array of token strings');
      return parsed;
    },
    async close() {
      const open = await Promise.allSettled(shards.values());
      shards.clear();
      for (const r of open) {
        if (r.status !== 'fulfilled') continue;
        await r.value.activations.close();
        await r.value.file.handle.close();
      }
    },
  };
  return ds;
}

/** Throws (a bug, not a user error) unless rows [start, start + count) exist. */
function checkRows(ds: Dataset, start: number, count: number): void {
  checkRead({ name: ds.name, rows: ds.rows, dIn: 0 }, start, count, new Float32Array(0));
}

/** Shard i's header checked against the manifest (its rows, d_in, dtype and columns): the columns' places. */
async function checkShard(dir: string, m: StoreManifest, i: number): Promise<Record<Column, StTensorInfo>> {
  const entry = m.shards[i]!;
  const path = join(dir, entry.file);
  const header = await readSafetensorsHeader(path);
  const find = (name: string, dtype: string, shape: readonly number[]): StTensorInfo => {
    const t = header.tensors.find((x) => x.name === name);
    if (t === undefined || t.dtype !== dtype || t.shape.join() !== shape.join()) {
      throw fileError(
        path,
        `tensor '${name}' should be ${dtype} [${shape.join(', ')}] as the manifest says${t ? `, but it is ${t.dtype} [${t.shape.join(', ')}]` : ', but it is missing'}`,
      );
    }
    return t;
  };
  find(SHARD_TENSORS.activations, m.dtype === 'float16' ? 'F16' : 'F32', [entry.rows, m.d_in]);
  const column = (c: Column): StTensorInfo => find(SHARD_TENSORS[c], 'I32', [entry.rows]);
  return { doc: column('doc'), ctx: column('ctx'), pos: column('pos'), token: column('token') };
}

/** Opens shard i and checks it holds what the manifest says. */
async function openShard(dir: string, m: StoreManifest, i: number): Promise<OpenShard> {
  const path = join(dir, m.shards[i]!.file);
  const columns = await checkShard(dir, m, i);
  const activations = await safetensorsDataset(path, SHARD_TENSORS.activations);
  const file = await openForReading(path);
  return { path, activations, file, columns };
}

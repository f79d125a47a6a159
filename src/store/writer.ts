/**
 * Writes an activation store while harvesting. Rows are buffered into the current shard; a full
 * shard is written (temp file, fsync, rename) and only then is the manifest rewritten to count it,
 * with the cursor of the first row not yet committed. A harvest killed at any moment therefore
 * leaves a manifest that counts whole shards only; resuming starts at its cursor, so no row is
 * lost or stored twice (a shard written but not yet counted is simply written again).
 */
import { existsSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileError, UserError } from '../errors.js';
import { ensureWritableDir, writeFileAtomic } from '../io/atomic.js';
import { float32ToFloat16 } from '../io/float16.js';
import { writeSafetensors } from '../io/safetensors.js';
import {
  MANIFEST_FILENAME,
  readManifest,
  SHARD_TENSORS,
  shardFileName,
  type StoreDtype,
  type StoreManifest,
  VOCAB_FILENAME,
  writeManifest,
} from './manifest.js';

/** Shards of about this many bytes of activations by default. */
const SHARD_BYTES = 128 * 2 ** 20;

export interface StoreSettings {
  readonly model: string;
  readonly hookName: string;
  readonly hookTensor: string;
  readonly dIn: number;
  readonly contextSize: number;
  readonly dtype: StoreDtype;
  /** Default: about 128 MiB of activations per shard. */
  readonly rowsPerShard?: number;
  /** The source and harvest settings; a resumed harvest must have the same. */
  readonly source: Readonly<Record<string, unknown>>;
  /** Token strings by id, saved once as vocab.json. */
  readonly vocab: readonly string[];
}

export interface OpenOptions {
  /** Continue the store in the folder from its cursor. */
  readonly resume?: boolean;
  /** Delete a store already in the folder and start afresh. */
  readonly overwrite?: boolean;
}

/** One context's rows: activations [n, dIn] and, per row, its document, position and token. */
export interface ContextRows {
  /** Index of the context in the source's order (0, 1, 2, ...). */
  readonly context: number;
  readonly doc: number;
  /** [n, dIn] */
  readonly x: Float32Array;
  /** [n] position of each row in the context */
  readonly pos: Int32Array;
  /** [n] token id of each row */
  readonly token: Int32Array;
}

export class StoreWriter {
  private readonly x: Float32Array; // [rowsPerShard, dIn]
  private readonly doc: Int32Array; // [rowsPerShard]
  private readonly ctx: Int32Array;
  private readonly pos: Int32Array;
  private readonly token: Int32Array;
  private filled = 0;
  /** Cursor just past the last buffered row. */
  private at: { context: number; row: number };
  private lastDoc: number;
  /** The cursor when the writer was opened: rows before it are stored already. */
  private readonly start: { readonly context: number; readonly row: number };

  private constructor(
    readonly dir: string,
    private manifest: StoreManifest,
  ) {
    const n = manifest.rows_per_shard;
    this.x = new Float32Array(n * manifest.d_in);
    this.doc = new Int32Array(n);
    this.ctx = new Int32Array(n);
    this.pos = new Int32Array(n);
    this.token = new Int32Array(n);
    this.at = { ...manifest.next };
    this.start = { ...manifest.next };
    this.lastDoc = manifest.documents - 1;
  }

  /** Creates the store in `dir`, or reopens it to resume. */
  static async open(dir: string, s: StoreSettings, o: OpenOptions = {}): Promise<StoreWriter> {
    await ensureWritableDir(dir);
    const exists = existsSync(join(dir, MANIFEST_FILENAME));
    if (exists && o.resume) {
      const m = await readManifest(dir);
      checkSame(dir, m, s);
      return new StoreWriter(dir, m);
    }
    if (o.resume) throw fileError(dir, 'holds no activation store to resume (no manifest.json)');
    if (exists && !o.overwrite) throw fileError(dir, 'already holds an activation store; pass --resume to continue it, or --overwrite to start afresh');
    if (exists) await removeStore(dir);
    const m = freshManifest(s);
    await writeFileAtomic(join(dir, VOCAB_FILENAME), `${JSON.stringify(s.vocab)}\n`);
    await writeManifest(dir, m);
    return new StoreWriter(dir, m);
  }

  /** Where harvesting must start: rows of context `context` before `row` are already stored. */
  get next(): { readonly context: number; readonly row: number } {
    return this.start;
  }

  get complete(): boolean {
    return this.manifest.complete;
  }

  /** Rows committed and buffered. */
  get rows(): number {
    return this.manifest.rows + this.filled;
  }

  /**
   * After a failed harvest: removes the store's files when no shard was committed and the store was
   * not resumed (an empty store only hides the failure); a store holding rows stays, for --resume.
   */
  async discardIfEmpty(): Promise<void> {
    if (this.manifest.rows === 0 && this.start.context === 0 && this.start.row === 0) await removeStore(this.dir);
  }

  /** Adds a context's rows, less those stored before the writer was opened; flushes full shards. */
  async append(c: ContextRows): Promise<void> {
    const d = this.manifest.d_in;
    const n = c.pos.length;
    if (c.x.length !== n * d || c.token.length !== n) throw new Error(`append: ${c.x.length} floats and ${c.token.length} tokens for ${n} rows of width ${d}`);
    if (c.context < this.start.context) return;
    if (c.context < this.at.context) throw new Error(`append: context ${c.context} comes before the cursor (${this.at.context})`);
    const skip = c.context === this.start.context ? Math.min(n, this.start.row) : 0;
    for (let r = skip; r < n;) {
      const take = Math.min(n - r, this.manifest.rows_per_shard - this.filled);
      const f = this.filled;
      this.x.set(c.x.subarray(r * d, (r + take) * d), f * d);
      this.doc.fill(c.doc, f, f + take);
      this.ctx.fill(c.context, f, f + take);
      this.pos.set(c.pos.subarray(r, r + take), f);
      this.token.set(c.token.subarray(r, r + take), f);
      this.filled += take;
      r += take;
      this.at = r === n ? { context: c.context + 1, row: 0 } : { context: c.context, row: r };
      this.lastDoc = Math.max(this.lastDoc, c.doc);
      if (this.filled === this.manifest.rows_per_shard) await this.flush(false);
    }
    if (n === skip) this.at = { context: c.context + 1, row: 0 };
  }

  /** Writes the last, partial shard and marks the store complete. */
  async finish(): Promise<StoreManifest> {
    await this.flush(true);
    return this.manifest;
  }

  /** Writes the buffered rows as the next shard, then the manifest that counts it. */
  private async flush(complete: boolean): Promise<void> {
    const n = this.filled;
    const m = this.manifest;
    const shards = [...m.shards];
    if (n > 0) {
      const file = shardFileName(shards.length);
      const x = this.x.subarray(0, n * m.d_in);
      const activations =
        m.dtype === 'float16'
          ? { dtype: 'F16' as const, shape: [n, m.d_in], data: float32ToFloat16(x) }
          : { dtype: 'F32' as const, shape: [n, m.d_in], data: x };
      const col = (a: Int32Array): { dtype: 'I32'; shape: number[]; data: Int32Array } => ({ dtype: 'I32', shape: [n], data: a.subarray(0, n) });
      await writeSafetensors(join(this.dir, file), {
        [SHARD_TENSORS.activations]: activations,
        [SHARD_TENSORS.doc]: col(this.doc),
        [SHARD_TENSORS.ctx]: col(this.ctx),
        [SHARD_TENSORS.pos]: col(this.pos),
        [SHARD_TENSORS.token]: col(this.token),
      });
      shards.push({ file, rows: n });
    }
    this.manifest = {
      ...m,
      shards,
      rows: m.rows + n,
      documents: this.lastDoc + 1,
      contexts: this.at.row === 0 ? this.at.context : this.at.context + 1,
      next: { ...this.at },
      complete,
    };
    this.filled = 0;
    await writeManifest(this.dir, this.manifest);
  }
}

function freshManifest(s: StoreSettings): StoreManifest {
  if (!Number.isInteger(s.dIn) || s.dIn < 1) throw new Error(`store: d_in must be a positive integer, got ${s.dIn}`);
  const rowsPerShard = s.rowsPerShard ?? Math.max(1, Math.floor(SHARD_BYTES / (4 * s.dIn)));
  if (!Number.isInteger(rowsPerShard) || rowsPerShard < 1) throw new UserError(`rows per shard must be a positive integer, got ${rowsPerShard}`);
  return {
    format: 'sae-activation-store',
    version: 1,
    model: s.model,
    hook_name: s.hookName,
    hook_tensor: s.hookTensor,
    dtype: s.dtype,
    d_in: s.dIn,
    rows_per_shard: rowsPerShard,
    context_size: s.contextSize,
    source: { ...s.source },
    shards: [],
    rows: 0,
    documents: 0,
    contexts: 0,
    next: { context: 0, row: 0 },
    complete: false,
    vocab: VOCAB_FILENAME,
  };
}

/** A resumed harvest must be the same harvest. */
function checkSame(dir: string, m: StoreManifest, s: StoreSettings): void {
  const want = freshManifest({ ...s, rowsPerShard: s.rowsPerShard ?? m.rows_per_shard });
  const keys = ['model', 'hook_name', 'hook_tensor', 'dtype', 'd_in', 'rows_per_shard', 'context_size', 'source'] as const;
  const differ = keys.filter((k) => JSON.stringify(m[k]) !== JSON.stringify(want[k]));
  if (differ.length > 0) {
    throw fileError(dir, `holds a store made with other settings (${differ.join(', ')} differ); resume with the same settings, or harvest into a new folder`);
  }
}

/** Deletes the files of a store (manifest, vocabulary, shards), nothing else in the folder. */
async function removeStore(dir: string): Promise<void> {
  const names = await readdir(dir);
  const ours = names.filter((n) => n === MANIFEST_FILENAME || n === VOCAB_FILENAME || /^shard-\d{5,}\.safetensors$/.test(n));
  await Promise.all(ours.map((n) => rm(join(dir, n), { force: true })));
}

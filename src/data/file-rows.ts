/**
 * A Dataset over rows stored contiguously in a file (npy, safetensors, raw float32): row r is the
 * dIn elements at byte dataOffset + r * dIn * itemSize. Rows are read with positional reads, so a
 * file larger than memory is fine, and converted to float32 chunk by chunk.
 */
import { endianness } from 'node:os';
import { fileError } from '../errors.js';
import { describeFsError, type OpenedFile, openForReading } from '../io/atomic.js';
import { bfloat16ToFloat32, float16ToFloat32 } from '../io/float16.js';
import type { Dataset } from './dataset.js';
import { checkRead } from './memory.js';

/**
 * The one rule for the rank of data arrays, in every format (npy, safetensors): exactly 2-D. A 3-D
 * array is ambiguous ([batch, seq, d] activations want batch * seq rows of d; [n, h, w] images want n
 * rows of h * w), so it is refused rather than flattened one way by guess.
 */
export const TWO_D_ONLY = 'data must be 2-D, [rows, width]: reshape it first (activations [batch, seq, d] to [batch * seq, d])';

/** Little-endian element types a row file may hold. */
export type ElementType = 'f32' | 'f16' | 'bf16';

const ITEM_SIZE = { f32: 4, f16: 2, bf16: 2 } as const satisfies Record<ElementType, number>;

/** 16-bit elements are converted this many at a time (2 MiB of file per read). */
const CHUNK_ELEMENTS = 1 << 20;
/** Largest single read (fs reads take 32-bit lengths). */
const MAX_READ_BYTES = 1 << 30;

export interface RowFileLayout {
  readonly element: ElementType;
  /** Absolute byte offset of row 0. */
  readonly dataOffset: number;
  readonly rows: number;
  readonly dIn: number;
  readonly description: Readonly<Record<string, unknown>>;
}

/**
 * Opens `path` as rows laid out as described. The layout comes from a header the caller has parsed
 * and checked against the file size; this checks it again, so a truncated file fails here.
 */
export async function openRowFile(path: string, layout: RowFileLayout): Promise<Dataset> {
  if (endianness() !== 'LE') throw new Error('reading row files needs a little-endian machine');
  const file = await openForReading(path);
  const rowBytes = layout.dIn * ITEM_SIZE[layout.element];
  const end = layout.dataOffset + layout.rows * rowBytes;
  if (end > file.size) {
    await file.handle.close();
    throw fileError(path, `the file is truncated: its ${layout.rows} rows of ${layout.dIn} end at byte ${end}, but the file has ${file.size} bytes`);
  }
  const ds: Dataset = {
    name: path,
    dIn: layout.dIn,
    rows: layout.rows,
    description: layout.description,
    async read(start, count, out) {
      checkRead(ds, start, count, out);
      const position = layout.dataOffset + start * rowBytes;
      const n = count * layout.dIn;
      if (layout.element === 'f32') await readFloat32(file, path, position, out.subarray(0, n));
      else await readHalf(file, path, position, out.subarray(0, n), layout.element);
    },
    close: () => file.handle.close(),
  };
  return ds;
}

/** Reads out.length float32 values at `position` straight into out's memory. */
async function readFloat32(file: OpenedFile, path: string, position: number, out: Float32Array): Promise<void> {
  const bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  for (let done = 0; done < bytes.length; done += MAX_READ_BYTES) {
    await readInto(file, path, position + done, bytes.subarray(done, done + MAX_READ_BYTES));
  }
}

/** Reads out.length 16-bit values at `position`, widening them to float32 a chunk at a time. */
async function readHalf(file: OpenedFile, path: string, position: number, out: Float32Array, element: 'f16' | 'bf16'): Promise<void> {
  const widen = element === 'f16' ? float16ToFloat32 : bfloat16ToFloat32;
  const scratch = new Uint16Array(Math.min(out.length, CHUNK_ELEMENTS));
  for (let done = 0; done < out.length; done += scratch.length) {
    const words = scratch.subarray(0, Math.min(scratch.length, out.length - done));
    await readInto(file, path, position + done * 2, new Uint8Array(words.buffer, 0, words.byteLength));
    out.set(widen(words), done);
  }
}

/** Fills `into` from `position`, looping over short reads; an early end of file is a truncation. */
async function readInto(file: OpenedFile, path: string, position: number, into: Uint8Array): Promise<void> {
  let done = 0;
  while (done < into.length) {
    let bytesRead: number;
    try {
      ({ bytesRead } = await file.handle.read(into, done, into.length - done, position + done));
    } catch (err) {
      throw fileError(path, `cannot read (${describeFsError(err)})`);
    }
    if (bytesRead === 0) throw fileError(path, `the file ended at byte ${position + done} (truncated while being read?)`);
    done += bytesRead;
  }
}

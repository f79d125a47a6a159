/**
 * Weights from a Hugging Face model folder: config.json and model.safetensors, or shards
 * model-0000N-of-0000M.safetensors listed in model.safetensors.index.json ({ weight_map: {name: file} }).
 * Only headers are read at open; each tensor is read when asked for, with positional reads, and
 * converted to float32 (F32 as read, F16 through float16.ts, BF16 by a 16-bit shift, F64 rounded).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileError } from '../../errors.js';
import { openForReading, readExactly } from '../../io/atomic.js';
import { isRecord, readJsonObject } from '../../io/json.js';
import { readSafetensorsHeader, type StTensorInfo } from '../../io/safetensors.js';
import { bfloat16ToFloat32, float16ToFloat32 } from '../../io/float16.js';
import type { ConfigJson } from './config.js';

/** Named float tensors read on demand; `file` names the source in errors. */
export interface TensorSource {
  readonly file: string;
  has(name: string): boolean;
  /** Row-major shape; a missing tensor is an error naming the file. */
  shape(name: string): readonly number[];
  /** The values as float32 (a fresh array). */
  read(name: string): Promise<Float32Array>;
}

interface Located {
  readonly file: string;
  readonly info: StTensorInfo;
}

export class SafetensorsSource implements TensorSource {
  private constructor(
    readonly file: string,
    private readonly tensors: ReadonlyMap<string, Located>,
  ) {}

  /** The safetensors files of a folder (one file, or the shards of its index). */
  static async open(folder: string): Promise<SafetensorsSource> {
    const single = join(folder, 'model.safetensors');
    const index = join(folder, 'model.safetensors.index.json');
    const tensors = new Map<string, Located>();
    if (existsSync(index)) {
      const map = (await readJsonObject(index))['weight_map'];
      if (!isRecord(map)) throw fileError(index, `has no 'weight_map' object`);
      const files = new Set(
        Object.values(map).map((f) => {
          if (typeof f !== 'string' || f.includes('/') || f.includes('\\'))
            throw fileError(index, `weight_map names ${JSON.stringify(f)}, not a file of the folder`);
          return f;
        }),
      );
      for (const f of files) {
        const path = join(folder, f);
        for (const info of (await readSafetensorsHeader(path)).tensors) tensors.set(info.name, { file: path, info });
      }
      for (const name of Object.keys(map)) if (!tensors.has(name)) throw fileError(index, `lists tensor '${name}', which no shard holds`);
      return new SafetensorsSource(index, tensors);
    }
    if (!existsSync(single)) throw fileError(folder, 'has neither model.safetensors nor model.safetensors.index.json');
    for (const info of (await readSafetensorsHeader(single)).tensors) tensors.set(info.name, { file: single, info });
    return new SafetensorsSource(single, tensors);
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  private locate(name: string): Located {
    const t = this.tensors.get(name);
    if (t === undefined) throw fileError(this.file, `has no tensor '${name}'`);
    return t;
  }

  shape(name: string): readonly number[] {
    return this.locate(name).info.shape;
  }

  async read(name: string): Promise<Float32Array> {
    const { file, info } = this.locate(name);
    const f = await openForReading(file);
    let bytes: Uint8Array;
    try {
      bytes = await readExactly(f, info.begin, info.end - info.begin, file);
    } finally {
      await f.handle.close();
    }
    const n = bytes.byteLength;
    switch (info.dtype) {
      case 'F32':
        return new Float32Array(bytes.buffer, bytes.byteOffset, n / 4);
      case 'F16':
        return float16ToFloat32(new Uint16Array(bytes.buffer, bytes.byteOffset, n / 2));
      case 'BF16':
        return bfloat16ToFloat32(new Uint16Array(bytes.buffer, bytes.byteOffset, n / 2));
      case 'F64':
        return Float32Array.from(new Float64Array(bytes.buffer, bytes.byteOffset, n / 8));
      default:
        throw fileError(file, `tensor '${name}' has dtype ${info.dtype}, not a float type (F32, F16, BF16, F64)`);
    }
  }
}

/** config.json of a folder. */
export async function readConfig(folder: string): Promise<ConfigJson> {
  const file = join(folder, 'config.json');
  if (!existsSync(file)) throw fileError(folder, 'has no config.json');
  return { file, json: await readJsonObject(file) };
}

/**
 * The file formats the fuzzer mutates, each with a valid fixture and the `sae` command that reads
 * it. To fuzz a new format, add a FuzzFormat to FORMATS: a fixture builder that writes valid files
 * into a folder (the real layout, as producers write it), the file to mutate in it, whether it is
 * JSON, how long its header is, and the command line that reads it and writes its output under `out`.
 * Language models (a llama GGUF with its vocabulary, an ONNX graph with external data, Hugging Face
 * folders: single and sharded safetensors) go through `sae harvest --model`. SAE layouts that
 * `sae encode` does not read yet (Gemma Scope, sparsify, Llama Scope) are fuzzed in-process
 * (reader-fuzz.test.ts).
 */
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeNpy } from '../../src/io/npy.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { saveSae } from '../../src/io/saelens.js';
import { serializeSafetensors } from '../../src/io/safetensors.js';
import { Sae } from '../../src/sae.js';
import { toExternalData } from '../helpers/onnx-layouts.js';
import { buildTinyGpt2, tokenizerJson, writeTinyGpt2 } from '../helpers/tiny-gpt2.js';

const LM_FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'lm');

export interface FuzzFormat {
  /** Names the format in counts and findings. */
  readonly name: string;
  /** Writes a valid fixture into `dir` (an empty folder). */
  readonly fixture: (dir: string) => Promise<void>;
  /** The file to mutate, relative to the fixture folder. */
  readonly target: string;
  /** JSON documents get structural mutations too. */
  readonly json: boolean;
  /** Bytes at the start that are header (byte mutations favour them); from the valid file. */
  readonly header: (bytes: Uint8Array) => number;
  /** The command line that reads the fixture in `dir` and writes only under `out`. */
  readonly args: (dir: string, out: string) => string[];
  /** What is wrong with the output of an accepted case (exit 0), if anything. */
  readonly output?: (out: string) => Promise<string | undefined>;
}

/** A standard SAE 2 -> 4 with small weights. */
async function sae(dir: string): Promise<void> {
  await saveSae(
    join(dir, 'sae'),
    new Sae(
      'standard',
      { dIn: 2, dSae: 4 },
      {},
      {
        W_enc: Float32Array.from([1, 0, -1, 0, 0, 1, 0, 0.5]),
        b_enc: Float32Array.from([0, 0, 0, -0.1]),
        W_dec: Float32Array.from([0.5, 0, 0, 1, -1, 1, 1, 1]),
        b_dec: new Float32Array(2),
      },
    ),
    { log10FiringRates: Float32Array.from([-1, -2, -3, -10]) },
  );
  await writeNpy(
    join(dir, 'x.npy'),
    Float32Array.from({ length: 24 }, (_, i) => Math.sin(i)),
    [12, 2],
  );
}

/** A standard SAE 4 -> 3 on 2 x 2 image patches, with its firing rates (sparsity.safetensors). */
async function patchSae(dir: string): Promise<void> {
  await saveSae(
    join(dir, 'sae'),
    new Sae(
      'standard',
      { dIn: 4, dSae: 3 },
      {},
      {
        W_enc: Float32Array.from({ length: 12 }, (_, i) => Math.sin(i)),
        b_enc: new Float32Array(3),
        W_dec: Float32Array.from({ length: 12 }, (_, i) => Math.cos(i)),
        b_dec: new Float32Array(4),
      },
    ),
    { log10FiringRates: Float32Array.from([-1, -2, -10]) },
  );
}

/** An activation store of two shards of rows of width 2, beside the SAE. */
async function store(dir: string): Promise<void> {
  await sae(dir);
  const at = join(dir, 'store');
  await mkdir(at, { recursive: true });
  const shards = [];
  for (const [k, rows] of [
    [0, 3],
    [1, 2],
  ] as const) {
    const col = (v: (i: number) => number) => ({ dtype: 'I32', shape: [rows], data: Int32Array.from({ length: rows }, (_, i) => v(i)) }) as const;
    const file = `shard-0000${k}.safetensors`;
    await writeFile(
      join(at, file),
      serializeSafetensors({
        activations: { dtype: 'F32', shape: [rows, 2], data: Float32Array.from({ length: rows * 2 }, (_, i) => Math.cos(i + k)) },
        doc: col(() => k),
        ctx: col(() => k),
        pos: col((i) => i),
        token: col((i) => i % 2),
      }),
    );
    shards.push({ file, rows });
  }
  await writeFile(join(at, 'vocab.json'), JSON.stringify(['a', 'b']));
  const manifest = {
    format: 'sae-activation-store',
    version: 1,
    model: 'tiny',
    hook_name: 'blocks.0.hook_resid_post',
    hook_tensor: 't',
    dtype: 'float32',
    d_in: 2,
    rows_per_shard: 3,
    context_size: 4,
    source: { text: 'x' },
    shards,
    rows: 5,
    documents: 2,
    contexts: 2,
    next: { context: 2, row: 0 },
    complete: true,
    vocab: 'vocab.json',
  };
  await writeFile(join(at, 'manifest.json'), JSON.stringify(manifest, null, 1));
}

/** `sae eval` of the fixture's SAE on the fixture's `data`. */
const evalArgs =
  (data: string) =>
  (dir: string, out: string): string[] => ['eval', join(dir, 'sae'), '--data', join(dir, data), '--out', join(out, 'metrics.json')];

/** N from a safetensors file's first 8 bytes, plus 8. */
function safetensorsHeader(b: Uint8Array): number {
  return b.length < 8 ? b.length : 8 + Number(new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true));
}

/** A .npy header: magic, version, length, and the dict, 128 bytes in files we write. */
const npyHeader = (b: Uint8Array): number => Math.min(b.length, 128);

const whole = (b: Uint8Array): number => b.length;

/** A GGUF file's header, metadata and tensor infos: up to a little past the last tensor name. */
function ggufHeader(b: Uint8Array): number {
  const text = new TextDecoder('latin1').decode(b);
  const last = text.lastIndexOf('.weight');
  return last < 0 ? Math.min(b.length, 4096) : Math.min(b.length, last + 64);
}

/** A text file of one document for harvest. */
async function text(dir: string): Promise<void> {
  await writeFile(join(dir, 'text.jsonl'), `${JSON.stringify({ text: 'Call me Ishmael. Some years ago the whale swam.' })}\n`);
}

/** A harvested store's shards hold only finite activations (issue 12: never an exit 0 with NaN or Inf in the output). */
async function finiteStore(out: string): Promise<string | undefined> {
  const store = join(out, 'store');
  const shards = (await readdir(store)).filter((f) => f.endsWith('.safetensors'));
  for (const f of shards) {
    const x = (await readSafetensors(join(store, f))).tensors.get('activations')?.data;
    if (!(x instanceof Float32Array)) return `${f} has no float32 activations`;
    const bad = x.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) return `exit 0 with ${x[bad]} in ${f}`;
  }
  return undefined; // no shard: the text gave no token (a tokenizer that maps it to nothing), an empty store
}

/** `sae harvest` of the model at `model` (relative to the fixture folder), 8-token contexts. */
const harvestArgs =
  (model: string) =>
  (dir: string, out: string): string[] => [
    'harvest',
    '--model',
    join(dir, model),
    '--hook',
    'blocks.0.hook_resid_post',
    '--text',
    join(dir, 'text.jsonl'),
    '--out',
    join(out, 'store'),
    '--context-size',
    '8',
    '--batch-size',
    '1',
    '--quiet',
  ];

/** The tiny llama GGUF (2 layers, its own 300-token SentencePiece vocabulary in tokenizer.ggml.*). */
async function gguf(dir: string): Promise<void> {
  await copyFile(join(LM_FIXTURES, 'llama-gguf', 'model.gguf'), join(dir, 'model.gguf'));
  await text(dir);
}

/** A transformers.js folder whose onnx/model.onnx keeps its weights in onnx/model.onnx_data (as optimum writes models over 2 GB). */
async function onnxExternal(dir: string): Promise<void> {
  await writeTinyGpt2(join(dir, 'model'));
  toExternalData(buildTinyGpt2(tokenizerJson().vocabSize, 1), join(dir, 'model', 'onnx'), 'model.onnx', false);
  await text(dir);
}

/** A Hugging Face checkpoint folder (config.json, the weights, tokenizer.json) from test/fixtures/lm/<name>. */
const hfFolder =
  (name: string, files: readonly string[]) =>
  async (dir: string): Promise<void> => {
    await mkdir(join(dir, 'model'));
    for (const f of ['config.json', ...files]) await copyFile(join(LM_FIXTURES, name, f), join(dir, 'model', f));
    await writeFile(join(dir, 'model', 'tokenizer.json'), JSON.stringify(tokenizerJson().json));
    await text(dir);
  };
const gpt2Folder = hfFolder('gpt2', ['model.safetensors']);
const llamaShards = hfFolder('llama', ['model.safetensors.index.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);

export const FORMATS: readonly FuzzFormat[] = [
  { name: 'npy data', fixture: sae, target: 'x.npy', json: false, header: npyHeader, args: evalArgs('x.npy') },
  {
    name: 'safetensors data',
    fixture: async (dir) => {
      await sae(dir);
      await writeFile(
        join(dir, 'x.safetensors'),
        serializeSafetensors({ x: { dtype: 'F32', shape: [12, 2], data: Float32Array.from({ length: 24 }, (_, i) => Math.cos(i)) } }, { note: 'fuzz' }),
      );
    },
    target: 'x.safetensors',
    json: false,
    header: safetensorsHeader,
    args: evalArgs('x.safetensors'),
  },
  { name: 'SAE weights (safetensors)', fixture: sae, target: 'sae/sae_weights.safetensors', json: false, header: safetensorsHeader, args: evalArgs('x.npy') },
  { name: 'SAE cfg.json', fixture: sae, target: 'sae/cfg.json', json: true, header: whole, args: evalArgs('x.npy') },
  {
    name: 'sparsity.safetensors',
    fixture: patchSae,
    target: 'sae/sparsity.safetensors',
    json: false,
    header: safetensorsHeader,
    args: (dir, out) => ['filters', join(dir, 'sae'), '--order', 'frequency', '--out', join(out, 'filters.png')],
  },
  { name: 'store manifest.json', fixture: store, target: 'store/manifest.json', json: true, header: whole, args: evalArgs('store') },
  { name: 'store shard', fixture: store, target: 'store/shard-00001.safetensors', json: false, header: safetensorsHeader, args: evalArgs('store') },
  {
    name: 'tokenizer.json',
    fixture: async (dir) => {
      await writeTinyGpt2(join(dir, 'model'));
      await text(dir);
    },
    target: 'model/tokenizer.json',
    json: true,
    header: whole,
    args: harvestArgs('model'),
    output: finiteStore,
  },
  { name: 'GGUF model', fixture: gguf, target: 'model.gguf', json: false, header: ggufHeader, args: harvestArgs('model.gguf'), output: finiteStore },
  {
    name: 'ONNX graph (external data)',
    fixture: onnxExternal,
    target: 'model/onnx/model.onnx',
    json: false,
    header: whole,
    args: harvestArgs('model'),
    output: finiteStore,
  },
  {
    name: 'ONNX model.onnx_data',
    fixture: onnxExternal,
    target: 'model/onnx/model.onnx_data',
    json: false,
    header: (b) => Math.min(b.length, 256),
    args: harvestArgs('model'),
    output: finiteStore,
  },
  { name: 'HF config.json', fixture: gpt2Folder, target: 'model/config.json', json: true, header: whole, args: harvestArgs('model'), output: finiteStore },
  {
    name: 'HF model.safetensors',
    fixture: gpt2Folder,
    target: 'model/model.safetensors',
    json: false,
    header: safetensorsHeader,
    args: harvestArgs('model'),
    output: finiteStore,
  },
  {
    name: 'HF safetensors index',
    fixture: llamaShards,
    target: 'model/model.safetensors.index.json',
    json: true,
    header: whole,
    args: harvestArgs('model'),
    output: finiteStore,
  },
  {
    name: 'HF shard (bf16)',
    fixture: llamaShards,
    target: 'model/model-00002-of-00002.safetensors',
    json: false,
    header: safetensorsHeader,
    args: harvestArgs('model'),
    output: finiteStore,
  },
];

/** The valid bytes of a format's target in a fixture folder. */
export async function targetBytes(f: FuzzFormat, dir: string): Promise<Uint8Array> {
  return new Uint8Array(await readFile(join(dir, f.target)));
}

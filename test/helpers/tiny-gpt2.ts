/**
 * A tiny GPT-2-shaped causal language model with random weights, in the transformers.js folder
 * layout (config.json, tokenizer.json, onnx/model.onnx), for tests of harvesting and splicing.
 * Tensor names follow the optimum export (/transformer/h.0/Add_1_output_0, ...), pre-LN blocks:
 *   h = wte[ids] + wpe[pos];  per block: h += attn(ln_1(h)); h += mlp(ln_2(h));  logits = ln_f(h) wte^T
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GraphBuilder, type Value } from '../../src/engine/onnx.js';
import { BYTE_LEVEL } from '../../src/lm/tokenizers/index.js';
import { Rng } from '../../src/rng.js';

export const TINY = { d: 16, heads: 2, layers: 2, mlp: 48, maxLen: 64 } as const;

/** Widths of a model the helpers build. */
export interface Dims {
  readonly d: number;
  readonly heads: number;
  readonly layers: number;
  readonly mlp: number;
  readonly maxLen: number;
}

/**
 * A GPT-2-style tokenizer.json in the layout Hugging Face writes: byte-level BPE over GPT-2's 256 byte
 * characters, a few merges, and <|endoftext|> as a special added token.
 */
export function tokenizerJson(): { json: object; vocabSize: number; bos: number } {
  const vocab: Record<string, number> = Object.fromEntries(BYTE_LEVEL.toChar.map((c, i) => [c, i]));
  const merges = ['Ġ t', 'h e', 'Ġt he', 'Ġ a', 'i n', 'Ġ w'];
  merges.forEach((m, i) => (vocab[m.replace(' ', '')] = 256 + i));
  const bos = 256 + merges.length;
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    json: {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: [{ id: bos, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }],
      normalizer: null,
      pre_tokenizer: byteLevel,
      post_processor: byteLevel,
      decoder: byteLevel,
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: '',
        end_of_word_suffix: '',
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: false,
        vocab,
        merges,
      },
    },
    vocabSize: bos + 1,
    bos,
  };
}

export function weights(rng: Rng, n: number, scale: number): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal() * scale);
}

/**
 * Builds the graph: input_ids, attention_mask [batch, seq] int64 (and with `past`, empty caches
 * past_key_values.L.key/value [batch, heads, past, hd] concatenated before the keys and values, as
 * optimum's decoder exports take them) -> logits [batch, seq, vocab].
 */
export function buildTinyGpt2(vocabSize: number, seed: number, dims: Dims = TINY, past = false): Uint8Array {
  const { d, heads, layers, mlp, maxLen } = dims;
  const hd = d / heads;
  const rng = new Rng(seed);
  const g = new GraphBuilder();
  const named = (scope: string, op: string): string => `/transformer/${scope}${op}_output_0`;
  const ids = g.input('input_ids', ['batch', 'seq'], 'int64');
  const mask = g.input('attention_mask', ['batch', 'seq'], 'int64');
  const wte = g.constant(weights(rng, vocabSize * d, 0.5), [vocabSize, d]);
  const wpe = g.constant(weights(rng, maxLen * d, 0.1), [maxLen, d]);
  const one = g.constant(new BigInt64Array([1n]), [1]);
  const zero = g.constant(new BigInt64Array([0n]), [1]);
  const seqLen = g.op('Gather', [g.op('Shape', [ids]), one], { axis: 0 }); // [1]
  const positions = g.op('Range', [g.constant(new BigInt64Array([0n])), g.op('Squeeze', [seqLen]), g.constant(new BigInt64Array([1n]))]); // [S]
  let h = g.add(g.op('Gather', [wte, ids], {}, '/transformer/wte/Gather_output_0'), g.op('Gather', [wpe, positions])); // [B, S, d]
  // causal + padding bias [B, 1, S, S]
  const tri = new Float32Array(maxLen * maxLen);
  for (let i = 0; i < maxLen; i++) for (let j = i + 1; j < maxLen; j++) tri[i * maxLen + j] = -1e4;
  const causal = g.op('Slice', [g.op('Slice', [g.constant(tri, [maxLen, maxLen]), zero, seqLen, zero]), zero, seqLen, one]); // [S, S]
  const pad = g.mul(g.sub(g.scalar(1), g.cast(mask, 'float32')), g.scalar(-1e4)); // [B, S]
  const bias = g.add(causal, g.unsqueeze(pad, 1, 2)); // [B, 1, S, S]
  const ln = (x: Value, scope: string): Value =>
    g.op(
      'LayerNormalization',
      [
        x,
        g.constant(
          Float32Array.from({ length: d }, () => 1 + rng.normal() * 0.1),
          [d],
        ),
        g.constant(weights(rng, d, 0.1), [d]),
      ],
      { axis: -1, epsilon: { float: 1e-5 } },
      named(scope, 'LayerNormalization'),
    );
  const linear = (x: Value, n: number, m: number, scope: string): Value =>
    g.op('Add', [g.matmul(x, g.constant(weights(rng, n * m, 1 / Math.sqrt(n)), [n, m])), g.constant(weights(rng, m, 0.02), [m])], {}, named(scope, 'Add'));
  const shape4 = g.constant(new BigInt64Array([0n, 0n, BigInt(heads), BigInt(hd)]), [4]);
  const shape3 = g.constant(new BigInt64Array([0n, 0n, BigInt(d)]), [3]);
  for (let l = 0; l < layers; l++) {
    const s = `h.${l}/`;
    const x = ln(h, `${s}ln_1/`);
    const qkv = linear(x, d, 3 * d, `${s}attn/c_attn/`);
    const [q, kk, v] = g.opN('Split', [qkv, g.constant(new BigInt64Array([BigInt(d), BigInt(d), BigInt(d)]), [3])], 3, { axis: 2 });
    const split = (t: Value): Value => g.op('Transpose', [g.op('Reshape', [t, shape4])], { perm: [0, 2, 1, 3] }); // [B, h, S, hd]
    const cached = (t: Value, which: string): Value =>
      past ? g.op('Concat', [g.input(`past_key_values.${l}.${which}`, ['batch', heads, 'past_sequence_length', hd]), t], { axis: 2 }) : t;
    const scores = g.add(g.mul(g.matmul(split(q!), g.op('Transpose', [cached(split(kk!), 'key')], { perm: [0, 1, 3, 2] })), g.scalar(1 / Math.sqrt(hd))), bias);
    const z = g.matmul(g.op('Softmax', [scores], { axis: -1 }), cached(split(v!), 'value')); // [B, h, S, hd]
    const merged = g.op('Reshape', [g.op('Transpose', [z], { perm: [0, 2, 1, 3] }), shape3]);
    h = g.op('Add', [h, linear(merged, d, d, `${s}attn/c_proj/`)], {}, named(s, 'Add'));
    const x2 = ln(h, `${s}ln_2/`);
    const pre = linear(x2, d, mlp, `${s}mlp/c_fc/`);
    const cube = g.mul(g.mul(pre, pre), pre);
    const inner = g.mul(g.add(pre, g.mul(cube, g.scalar(0.044715))), g.scalar(Math.sqrt(2 / Math.PI)));
    const half = g.op('Mul', [pre, g.scalar(0.5)], {}, named(`${s}mlp/act/`, 'Mul'));
    const act = g.op('Mul', [half, g.add(g.scalar(1), g.op('Tanh', [inner]))], {}, named(`${s}mlp/act/`, 'Mul_3'));
    h = g.op('Add', [h, linear(act, mlp, d, `${s}mlp/c_proj/`)], {}, named(s, 'Add_1'));
  }
  const final = ln(h, 'ln_f/');
  const logits = g.op('MatMul', [final, g.op('Transpose', [wte], { perm: [1, 0] })]);
  g.output(logits, 'logits', ['batch', 'seq', vocabSize]);
  return g.encode();
}

/** Writes the model folder into `dir`; returns its vocabulary size and BOS id. */
export async function writeTinyGpt2(dir: string, seed = 1, options: { dims?: Dims; past?: boolean } = {}): Promise<{ vocabSize: number; bos: number }> {
  const dims = options.dims ?? TINY;
  const tok = tokenizerJson();
  await mkdir(join(dir, 'onnx'), { recursive: true });
  await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(tok.json));
  await writeFile(
    join(dir, 'config.json'),
    JSON.stringify({ model_type: 'gpt2', n_embd: dims.d, n_layer: dims.layers, vocab_size: tok.vocabSize, bos_token_id: tok.bos }),
  );
  await writeFile(join(dir, 'onnx', 'model.onnx'), buildTinyGpt2(tok.vocabSize, seed, dims, options.past));
  return { vocabSize: tok.vocabSize, bos: tok.bos };
}

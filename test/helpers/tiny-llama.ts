/**
 * A tiny Llama-shaped causal language model (RMSNorm, SwiGLU MLP, no biases, untied lm_head) with
 * random weights, in two graphs of the same weights:
 *   unfused  the residual adds are Add nodes (/model/layers.L/Add, Add_1), as optimum exports
 *   fused    as onnxruntime-genai's builder writes it: no residual Add; each norm after the first is
 *            a com.microsoft SkipSimplifiedLayerNormalization(x, skip, w) -> [normed, , , x + skip],
 *            the final one without the sum output
 *   per block: r_mid = r + attn(rms(r) w1);  r_post = r_mid + W_down(silu(W_gate x) * W_up x), x = rms(r_mid) w2
 *   logits = rms(r_final) w_f W_lm
 * Attention is plain causal multi-head attention (no rotary: the hook table does not depend on it).
 * Node outputs carry the builder's scoped names (/model/layers.0/mlp/down_proj/MatMul_output_0).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GraphBuilder, type Value } from '../../src/engine/onnx.js';
import { Rng } from '../../src/rng.js';
import { withMsDomain } from './onnx-layouts.js';
import { tokenizerJson, weights } from './tiny-gpt2.js';

export const LLAMA = { d: 16, heads: 2, layers: 2, mlp: 32, maxLen: 64 } as const;

function build(vocabSize: number, seed: number, fused: boolean): Uint8Array {
  const { d, heads, layers, mlp, maxLen } = LLAMA;
  const hd = d / heads;
  const rng = new Rng(seed);
  const g = new GraphBuilder();
  const at = (scope: string, op: string, k = 0): string => `/model/${scope}${op}_output_${k}`;
  const ids = g.input('input_ids', ['batch', 'seq'], 'int64');
  const mask = g.input('attention_mask', ['batch', 'seq'], 'int64');
  const embed = g.constant(weights(rng, vocabSize * d, 0.5), [vocabSize, d]);
  const one = g.constant(new BigInt64Array([1n]), [1]);
  const zero = g.constant(new BigInt64Array([0n]), [1]);
  const seqLen = g.op('Gather', [g.op('Shape', [ids]), one], { axis: 0 }); // [1]
  const tri = new Float32Array(maxLen * maxLen);
  for (let i = 0; i < maxLen; i++) for (let j = i + 1; j < maxLen; j++) tri[i * maxLen + j] = -1e4;
  const causal = g.op('Slice', [g.op('Slice', [g.constant(tri, [maxLen, maxLen]), zero, seqLen, zero]), zero, seqLen, one]); // [S, S]
  const bias = g.add(causal, g.unsqueeze(g.mul(g.sub(g.scalar(1), g.cast(mask, 'float32')), g.scalar(-1e4)), 1, 2)); // [B, 1, S, S]
  const normWeight = (): Value =>
    g.constant(
      Float32Array.from({ length: d }, () => 1 + rng.normal() * 0.1),
      [d],
    );
  const eps = { epsilon: { float: 1e-5 } };
  const rms = (x: Value, scope: string): Value => g.op('SimplifiedLayerNormalization', [x, normWeight()], { axis: -1, ...eps }, at(scope, 'LayerNorm'));
  /** skip + x normalised, and the sum (the residual stream) when `sum`. */
  const skipRms = (x: Value, skip: Value, scope: string, sum: boolean): [Value, Value] => {
    const [normed, , , s] = g.opN('SkipSimplifiedLayerNormalization', [x, skip, normWeight()], 4, eps, [
      at(scope, 'SkipLayerNorm'),
      '',
      '',
      sum ? at(scope, 'SkipLayerNorm', 3) : '',
    ]);
    return [normed!, s!];
  };
  const proj = (x: Value, n: number, m: number, scope: string): Value =>
    g.op('MatMul', [x, g.constant(weights(rng, n * m, 1 / Math.sqrt(n)), [n, m])], {}, at(scope, 'MatMul'));
  const shape4 = g.constant(new BigInt64Array([0n, 0n, BigInt(heads), BigInt(hd)]), [4]);
  const shape3 = g.constant(new BigInt64Array([0n, 0n, BigInt(d)]), [3]);
  let r = g.op('Gather', [embed, ids], {}, at('embed_tokens/', 'Gather'));
  let pending: Value | undefined; // fused: the last block's MLP output, not yet added
  let x = rms(r, 'layers.0/input_layernorm/');
  for (let l = 0; l < layers; l++) {
    const s = `layers.${l}/`;
    if (l > 0) {
      if (fused) [x, r] = skipRms(pending!, r, `${s}input_layernorm/`, true);
      else x = rms(r, `${s}input_layernorm/`);
    }
    const split = (t: Value): Value => g.op('Transpose', [g.op('Reshape', [t, shape4])], { perm: [0, 2, 1, 3] }); // [B, h, S, hd]
    const [q, k, v] = ['q_proj', 'k_proj', 'v_proj'].map((p) => split(proj(x, d, d, `${s}attn/${p}/`)));
    const scores = g.add(g.mul(g.matmul(q!, g.op('Transpose', [k!], { perm: [0, 1, 3, 2] })), g.scalar(1 / Math.sqrt(hd))), bias);
    const z = g.op('Reshape', [g.op('Transpose', [g.matmul(g.op('Softmax', [scores], { axis: -1 }), v!)], { perm: [0, 2, 1, 3] }), shape3]);
    const attnOut = proj(z, d, d, `${s}attn/o_proj/`);
    let x2: Value;
    if (fused) [x2, r] = skipRms(attnOut, r, `${s}post_attention_layernorm/`, true);
    else {
      r = g.op('Add', [r, attnOut], {}, at(s, 'Add'));
      x2 = rms(r, `${s}post_attention_layernorm/`);
    }
    const gate = proj(x2, d, mlp, `${s}mlp/gate_proj/`);
    const up = proj(x2, d, mlp, `${s}mlp/up_proj/`);
    const act = g.op('Mul', [gate, g.op('Sigmoid', [gate], {}, at(`${s}mlp/act_fn/`, 'Sigmoid'))], {}, at(`${s}mlp/act_fn/`, 'Mul'));
    const down = proj(g.op('Mul', [act, up], {}, at(`${s}mlp/`, 'Mul')), mlp, d, `${s}mlp/down_proj/`);
    if (fused) pending = down;
    else r = g.op('Add', [r, down], {}, at(s, 'Add_1'));
  }
  const final = fused ? skipRms(pending!, r, `layers.${layers}/final_norm_layernorm/`, false)[0] : rms(r, `layers.${layers}/final_norm_layernorm/`);
  g.output(proj(final, d, vocabSize, 'lm_head/'), 'logits', ['batch', 'seq', vocabSize]);
  const model = g.encode();
  return fused ? withMsDomain(model, new Set(['SkipSimplifiedLayerNormalization'])) : model;
}

/** Writes a model folder (tokenizer.json, config.json, onnx/model.onnx) of the fused or unfused graph; same weights for the same seed. */
export async function writeTinyLlama(dir: string, fused: boolean, seed = 1): Promise<{ bos: number }> {
  const tok = tokenizerJson();
  await mkdir(join(dir, 'onnx'), { recursive: true });
  await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(tok.json));
  await writeFile(
    join(dir, 'config.json'),
    JSON.stringify({ model_type: 'llama', hidden_size: LLAMA.d, num_hidden_layers: LLAMA.layers, vocab_size: tok.vocabSize, bos_token_id: tok.bos }),
  );
  await writeFile(join(dir, 'onnx', 'model.onnx'), build(tok.vocabSize, seed, fused));
  return { bos: tok.bos };
}

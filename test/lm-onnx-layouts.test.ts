/**
 * ONNX language models in the layouts they are published in: external data (one file, one per
 * tensor), float16, 4-bit MatMulNBits, a dtype chosen in a folder, merged decoders (refused), and
 * onnxruntime-genai's fused norms. Each is checked against the float32 single-file graph.
 */
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Engine } from '../src/engine/index.js';
import { GraphBuilder } from '../src/engine/onnx.js';
import { fields, ProtoWriter, text, varints } from '../src/engine/protobuf.js';
import { OnnxLm } from '../src/lm/onnx-lm.js';
import { OnnxModel } from '../src/lm/onnx-proto.js';
import { sessionPlan } from '../src/lm/onnx-session.js';
import { causalSplice, reconstructEdit, steerEdit } from '../src/lm/splice.js';
import { logitsOutput, type Unembedding } from '../src/lm/unembedding.js';
import { asMergedDecoder, quantize8, toDynamicUint8, toExternalData, toFloat16, toMatMulNBits } from './helpers/onnx-layouts.js';
import { perfectSae } from './helpers/perfect-sae.js';
import { runSae } from './helpers/spawn.js';
import { TINY, writeTinyGpt2 } from './helpers/tiny-gpt2.js';
import { LLAMA, writeTinyLlama } from './helpers/tiny-llama.js';

let dir = '';
const engine = new Engine({ threads: 1 });
let fp32: OnnxLm;
let contexts: Int32Array[];

/** A folder holding the tiny model's tokenizer and config, and `files` in onnx/. */
async function folder(name: string, files: Record<string, Uint8Array>): Promise<string> {
  const root = join(dir, name);
  await mkdir(join(root, 'onnx'), { recursive: true });
  for (const f of ['tokenizer.json', 'config.json']) await copyFile(join(dir, 'gpt2', f), join(root, f));
  for (const [f, bytes] of Object.entries(files)) await writeFile(join(root, 'onnx', f), bytes);
  return root;
}

let plain: Uint8Array;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sae-layouts-'));
  await writeTinyGpt2(join(dir, 'gpt2'), 1, { past: true });
  plain = await readFile(join(dir, 'gpt2', 'onnx', 'model.onnx'));
  fp32 = await OnnxLm.load(join(dir, 'gpt2'), engine);
  const ids = (s: string): Int32Array => Int32Array.from([fp32.bosId!, ...fp32.tokenize(s)]);
  contexts = [ids('Call me Ishmael. Some years ago, never mind how long'), ids('the whale'), ids('in the water the white whale')];
});
afterAll(async () => {
  await fp32.dispose();
  await engine.release();
  await rm(dir, { recursive: true, force: true });
});

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]!));
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
  }
  return diff / scale;
}

const HOOKS = ['blocks.0.hook_resid_post', 'blocks.1.mlp.hook_post', 'blocks.1.hook_resid_mid'];

async function harvestAll(lm: OnnxLm): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const h of HOOKS) out.push(await (await lm.hooked(h)).activations(contexts));
  return out;
}

/** W_U[j, v] whichever way it is stored. */
const wU = (u: Unembedding, j: number, v: number): number => (u.transposed ? u.data[v * u.dModel + j]! : u.data[j * u.vocab + v]!);

describe('external data', () => {
  it('harvests, splices and reads the unembedding from model.onnx_data and from per-tensor files, equal to the single file', async () => {
    const expected = await harvestAll(fp32);
    const clean = await fp32.forward(contexts);
    const u32 = fp32.unembedding();
    for (const perTensor of [false, true]) {
      const root = await folder(perTensor ? 'per-tensor' : 'onnx-data', {});
      toExternalData(plain, join(root, 'onnx'), 'model.onnx', perTensor);
      const lm = await OnnxLm.load(root, engine);
      expect(lm.graph.externalData).toBe(true);
      const got = await harvestAll(lm);
      got.forEach((g, i) => expect(maxRelDiff(g, expected[i]!)).toBe(0));
      expect((await lm.forward(contexts)).logits).toEqual(clean.logits);
      const m = await causalSplice(engine, lm, lm.hookTensor('blocks.0.hook_resid_post'), reconstructEdit(engine, perfectSae(TINY.d)), contexts);
      expect(m.ce_spliced).toBeCloseTo(m.ce_clean, 5);
      expect(lm.unembedding()).toEqual(u32);
      await lm.dispose();
    }
  });

  it('refuses a model whose data file is missing, naming it', async () => {
    const root = await folder('missing-data', {});
    toExternalData(plain, join(root, 'onnx'), 'model.onnx', false);
    await rm(join(root, 'onnx', 'model.onnx_data'));
    await expect(OnnxLm.load(root, engine)).rejects.toThrow(/weights are in 'model\.onnx_data', which is not beside it/);
  });
});

describe('one session per model', () => {
  it('harvest cuts the graph after the hook: no logits, no later layers, no later caches', () => {
    const logits = logitsOutput(fp32.graph)!;
    const hook = fp32.hookTensor('blocks.0.hook_resid_post');
    const cut = sessionPlan(fp32.model, 'cut', logits, hook);
    const full = sessionPlan(fp32.model, 'splice', logits, hook);
    expect(cut.logits).toBeUndefined();
    expect(cut.graph.nodes.length).toBeLessThan(full.graph.nodes.length * 0.6);
    expect(cut.inputs.has('past_key_values.0.key')).toBe(true);
    expect(cut.inputs.has('past_key_values.1.key')).toBe(false);
    expect(cut.graph.uses.size).toBeLessThan(full.graph.uses.size);
  });

  it('a steered generation, its clean twin and a splice run on one session', async () => {
    const lm = await OnnxLm.load(join(dir, 'gpt2'), engine);
    const spy = vi.spyOn(engine, 'session');
    const hook = lm.hookTensor('blocks.1.hook_resid_post');
    const prompt = [lm.bosId!, ...lm.tokenize('Call me')];
    const sae = perfectSae(TINY.d);
    expect(await lm.generate(prompt, 4, hook, steerEdit(engine, sae, { feature: 0, add: 0 }))).toEqual(await lm.generate(prompt, 4));
    await causalSplice(engine, lm, hook, reconstructEdit(engine, sae), contexts);
    await lm.activations(contexts, hook);
    expect(spy).toHaveBeenCalledTimes(1);
    spy.mockRestore();
    await lm.dispose();
  });

  it('steering adds alpha W_dec[i] before the final norm: logits = LayerNorm(h + alpha w) W_U', async () => {
    const hook = fp32.hookTensor('blocks.1.hook_resid_post');
    const sae = perfectSae(TINY.d);
    const alpha = 3;
    const steered = await fp32.forward(contexts, hook, steerEdit(engine, sae, { feature: 5, add: alpha }));
    const lnNode = fp32.graph.nodes.find((n) => n.opType === 'LayerNormalization' && n.inputs[0] === hook)!;
    const [gamma, beta] = [fp32.model.readTensor(lnNode.inputs[1]!)!.data, fp32.model.readTensor(lnNode.inputs[2]!)!.data];
    const u = fp32.unembedding();
    if (!u.found) throw new Error(u.reason);
    const d = TINY.d;
    for (let row = 0; row < steered.hook.length / d; row += 7) {
      const x = Array.from(steered.hook.subarray(row * d, (row + 1) * d), (v, j) => v + (j === 5 ? alpha : 0));
      const mean = x.reduce((a, b) => a + b, 0) / d;
      const variance = x.reduce((a, b) => a + (b - mean) ** 2, 0) / d;
      const y = x.map((v, j) => ((v - mean) / Math.sqrt(variance + 1e-5)) * gamma[j]! + beta[j]!);
      for (const v of [0, 50, 262]) {
        const direct = y.reduce((a, yj, j) => a + yj * wU(u.unembedding, j, v), 0);
        expect(steered.logits[row * steered.vocabSize + v]).toBeCloseTo(direct, 3);
      }
    }
  });
});

describe('float16', () => {
  it('a folder with model.onnx and model_fp16.onnx: dtype picks; hooks within 1e-2 of float32; float16 caches; splice = clean', async () => {
    const root = await folder('fp16', { 'model.onnx': plain, 'model_fp16.onnx': toFloat16(plain) });
    expect((await OnnxLm.load(root, engine)).path).toMatch(/model\.onnx$/);
    const lm = await OnnxLm.load(root, engine, { dtype: 'fp16' });
    expect(lm.path).toMatch(/model_fp16\.onnx$/);
    expect(lm.graph.inputs.find((i) => i.name === 'past_key_values.0.key')?.elemType).toBe(10);
    const expected = await harvestAll(fp32);
    (await harvestAll(lm)).forEach((g, i) => expect(maxRelDiff(g, expected[i]!)).toBeLessThan(1e-2));
    const hook = lm.hookTensor('blocks.0.hook_resid_post');
    const m = await causalSplice(engine, lm, hook, reconstructEdit(engine, perfectSae(TINY.d)), contexts);
    expect(m.ce_spliced).toBe(m.ce_clean);
    expect(m.ce_zero).not.toBeCloseTo(m.ce_clean, 2);
    const u = lm.unembedding();
    const u32 = fp32.unembedding();
    if (!u.found || !u32.found) throw new Error('no unembedding');
    expect(maxRelDiff(u.unembedding.data, u32.unembedding.data)).toBeLessThan(1e-3);
    await lm.dispose();
  });

  it('without model.onnx the default refuses and lists the dtypes there', async () => {
    const root = await folder('fp16-only', { 'model_fp16.onnx': toFloat16(plain) });
    await expect(OnnxLm.load(root, engine)).rejects.toThrow(/holds no onnx\/model\.onnx .*it has dtype fp16: choose one with --model-dtype/);
  });

  it('the CLI picks the variant with --model-dtype (sae generate), and refuses an unknown one in one line', async () => {
    const root = await folder('fp16-cli', { 'model_fp16.onnx': toFloat16(plain) });
    const fp16 = await runSae('generate', root, '--prompt', 'the whale', '--max-new-tokens', '2', '--model-dtype', 'fp16', '--json');
    expect(fp16.stderr).toBe('');
    expect(JSON.parse(fp16.stdout)).toMatchObject({ continuation_ids: expect.any(Array) as unknown });
    const none = await runSae('generate', root, '--prompt', 'the whale');
    expect(none.code).not.toBe(0);
    expect(none.stderr.trim().split('\n')).toHaveLength(1);
    const bad = await runSae('generate', root, '--prompt', 'x', '--model-dtype', 'fp8');
    expect(bad.stderr.trim()).toMatch(/^sae: --model-dtype: choose one of fp32, fp16, .* \(got 'fp8'\)$/);
  });
});

describe('4-bit MatMulNBits (model_q4.onnx)', () => {
  it('harvests near float32, splices exactly, and dequantises the unembedding: logits = ln_f(h) W_U', async () => {
    const root = await folder('q4', { 'model_q4.onnx': toMatMulNBits(plain) });
    const lm = await OnnxLm.load(root, engine, { dtype: 'q4' });
    expect(lm.graph.nodes.filter((n) => n.opType === 'MatMulNBits').length).toBe(TINY.layers * 4 + 1);
    const got = await (await lm.hooked('blocks.0.hook_resid_post')).activations(contexts);
    expect(maxRelDiff(got, (await harvestAll(fp32))[0]!)).toBeLessThan(0.3); // 4-bit weights
    const hook = lm.hookTensor('blocks.1.hook_resid_post');
    const m = await causalSplice(engine, lm, hook, reconstructEdit(engine, perfectSae(TINY.d)), contexts);
    expect(m.ce_spliced).toBeCloseTo(m.ce_clean, 5);
    const found = lm.unembedding();
    if (!found.found) throw new Error(found.reason);
    const u = found.unembedding;
    expect(u).toMatchObject({ dModel: TINY.d, vocab: lm.vocab.length, transposed: true });
    const f = await lm.forward([contexts[0]!], '/transformer/ln_f/LayerNormalization_output_0');
    for (let p = 0; p < contexts[0]!.length; p += 5) {
      for (const v of [0, 7, 100, u.vocab - 1]) {
        let s = 0;
        for (let j = 0; j < u.dModel; j++) s += f.hook[p * u.dModel + j]! * wU(u, j, v);
        expect(f.logits[p * f.vocabSize + v]).toBeCloseTo(s, 3);
      }
    }
    await lm.dispose();
  });
});

describe('dynamic uint8 quantisation (model_quantized.onnx)', () => {
  it('harvests near float32, splices exactly, and dequantises the unembedding (W_q - 128) * scale', async () => {
    const root = await folder('q8', { 'model_quantized.onnx': toDynamicUint8(plain) });
    const lm = await OnnxLm.load(root, engine, { dtype: 'q8' });
    expect(lm.graph.nodes.filter((n) => n.opType === 'MatMulInteger').length).toBe(TINY.layers * 4 + 1);
    const got = await (await lm.hooked('blocks.0.hook_resid_post')).activations(contexts);
    expect(maxRelDiff(got, (await harvestAll(fp32))[0]!)).toBeLessThan(0.1);
    const m = await causalSplice(engine, lm, lm.hookTensor('blocks.0.mlp.hook_post'), reconstructEdit(engine, perfectSae(TINY.mlp)), contexts);
    expect(m.ce_spliced).toBeCloseTo(m.ce_clean, 5);
    const found = lm.unembedding();
    const u32 = fp32.unembedding();
    if (!found.found || !u32.found) throw new Error('no unembedding');
    const w = u32.unembedding; // W_U^T [V, d] (tied)
    const plainW = Float32Array.from({ length: w.data.length }, (_, i) => wU(w, Math.floor(i / w.vocab), i % w.vocab)); // [d, V]
    expect(found.unembedding).toMatchObject({ dModel: TINY.d, vocab: w.vocab, transposed: false });
    expect(Array.from(found.unembedding.data)).toEqual(Array.from(quantize8(plainW).dequantized));
    await lm.dispose();
  });
});

describe('merged decoders', () => {
  it('are refused with the file to use instead', async () => {
    const root = await folder('merged', { 'decoder_model_merged.onnx': asMergedDecoder(plain) });
    await expect(OnnxLm.load(root, engine)).rejects.toThrow(
      /decoder_model_merged\.onnx: is a merged decoder .* use onnx\/decoder_model\.onnx or onnx\/model\.onnx/,
    );
    await expect(OnnxLm.load(join(root, 'onnx', 'decoder_model_merged.onnx'), engine)).rejects.toThrow(/is a merged decoder/);
  });
});

describe("onnxruntime-genai's fused norms", () => {
  it('find the residual stream in SkipSimplifiedLayerNormalization outputs (the final norm made to output its sum), equal to the unfused graph', async () => {
    await writeTinyLlama(join(dir, 'llama'), false);
    await writeTinyLlama(join(dir, 'llama-fused'), true);
    const unfused = await OnnxLm.load(join(dir, 'llama'), engine);
    const fused = await OnnxLm.load(join(dir, 'llama-fused'), engine);
    expect(fused.graph.nodes.some((n) => n.opType === 'Add' && /layers/.test(n.outputs[0]!))).toBe(false);
    expect(fused.hookTensor('blocks.0.hook_resid_post')).toBe('/model/layers.1/input_layernorm/SkipLayerNorm_output_3');
    expect(fused.hookTensor('blocks.1.mlp.hook_post')).toBe('/model/layers.1/mlp/Mul_output_0'); // act(gate) * up
    expect(fused.hookTensor('blocks.1.hook_resid_post')).toBe('sae.residual_sum:/model/layers.2/final_norm_layernorm/SkipLayerNorm_output_0'); // added to the final norm
    const hooks = [
      'blocks.1.hook_resid_post',
      'hook_embed',
      'blocks.0.hook_resid_pre',
      'blocks.0.hook_resid_mid',
      'blocks.0.hook_resid_post',
      'blocks.1.hook_resid_pre',
      'blocks.1.ln1.hook_normalized',
      'blocks.1.ln2.hook_normalized',
      'blocks.1.hook_resid_mid',
      'blocks.1.mlp.hook_post',
      'blocks.1.hook_mlp_out',
      'blocks.1.hook_attn_out',
    ];
    for (const h of hooks) {
      const a = await (await unfused.hooked(h)).activations(contexts);
      const b = await (await fused.hooked(h)).activations(contexts);
      expect(maxRelDiff(b, a), h).toBeLessThan(1e-5);
    }
    expect((await fused.hooked('blocks.1.mlp.hook_post')).dIn).toBe(LLAMA.mlp);
    // splicing the last residual sum, which the final norm consumes inside itself: a steer equals the unfused graph's
    const last = `blocks.${LLAMA.layers - 1}.hook_resid_post`;
    const sae = perfectSae(LLAMA.d);
    const kept = await fused.forward(contexts, fused.hookTensor(last), reconstructEdit(engine, sae));
    expect(maxRelDiff(kept.logits, (await fused.forward(contexts)).logits)).toBeLessThan(1e-5);
    const steer = steerEdit(engine, sae, { feature: 3, add: 2 });
    const a = await fused.forward(contexts, fused.hookTensor(last), steer);
    const b = await unfused.forward(contexts, unfused.hookTensor(last), steer);
    expect(maxRelDiff(a.logits, b.logits)).toBeLessThan(1e-5);
    expect(maxRelDiff(a.logits, kept.logits)).toBeGreaterThan(1e-2);
    const m = await causalSplice(engine, fused, fused.hookTensor('blocks.0.hook_resid_post'), reconstructEdit(engine, perfectSae(LLAMA.d)), contexts);
    expect(m.ce_spliced).toBeCloseTo(m.ce_clean, 5);
    const cf = await fused.forward(contexts);
    expect(maxRelDiff(cf.logits, (await unfused.forward(contexts)).logits)).toBeLessThan(1e-5);
    await unfused.dispose();
    await fused.dispose();
  });
});

describe('the protobuf codec', () => {
  it('round-trips varints (negative int64 included), nested messages and weights held or located', async () => {
    const inner = new ProtoWriter()
      .int(1, -5)
      .int(2, 2 ** 40)
      .string(3, 'é');
    const bytes = new ProtoWriter()
      .message(7, inner)
      .bytes(9, Uint8Array.of(1, 2, 3))
      .finish();
    const [m, b] = fields(bytes);
    expect(varints(fields(m!.payload), 1)).toEqual([-5]);
    expect(varints(fields(m!.payload), 2)).toEqual([2 ** 40]);
    expect(text(fields(m!.payload)[2]!.payload)).toBe('é');
    expect(Array.from(b!.payload)).toEqual([1, 2, 3]);
    const g = new GraphBuilder();
    const w = Float32Array.from({ length: 3000 }, (_, i) => i / 7); // 12 kB: located, not held
    g.output(g.add(g.input('x', [3000]), g.constant(w, [3000])), 'y', [3000]);
    const file = join(dir, 'codec.onnx');
    await writeFile(file, g.encode());
    const model = OnnxModel.open(file);
    const init = [...model.initializers.values()].find((i) => i.dims[0] === 3000)!;
    expect(init.data).toMatchObject({ file, length: 12000 });
    expect(init.proto).toBeUndefined();
    expect(model.readTensor(init.name)!.data).toEqual(w);
  });
});

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../src/engine/index.js';
import { UserError } from '../src/errors.js';
import { harvest } from '../src/lm/harvest.js';
import { allHookNames, parseHook, useLiteNode, USE_LITE_NODES } from '../src/lm/hooks.js';
import { OnnxLm } from '../src/lm/onnx-lm.js';
import { causalSplice, reconstructEdit, steerEdit } from '../src/lm/splice.js';
import { contextsOf, sentences } from '../src/lm/text.js';
import { loadTokenizer } from '../src/lm/tokenizers/index.js';
import { openStore } from '../src/store/dataset.js';
import { StoreWriter } from '../src/store/writer.js';
import { perfectSae } from './helpers/perfect-sae.js';
import { TINY, writeTinyGpt2 } from './helpers/tiny-gpt2.js';

let dir = '';
let lm: OnnxLm;
const engine = new Engine({ threads: 1 });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sae-lm-'));
  await writeTinyGpt2(join(dir, 'tiny-gpt2'));
  lm = await OnnxLm.load(join(dir, 'tiny-gpt2'), engine);
});
afterAll(async () => {
  await engine.release();
  await rm(dir, { recursive: true, force: true });
});

const TEXT = 'Call me Ishmael. Some years ago, never mind how long, I thought I would sail about a little and see the watery part of the world.';

describe('hook names', () => {
  it('parses the table names and lists them per layer', () => {
    expect(parseHook('blocks.1.mlp.hook_post')).toEqual({ point: 'mlp.hook_post', layer: 1 });
    expect(parseHook('hook_embed')).toEqual({ point: 'hook_embed', layer: undefined });
    expect(parseHook('blocks.x.hook_resid_post')).toBeUndefined();
    expect(parseHook('blocks.0.hook_nonsense')).toBeUndefined();
    expect(allHookNames(2)).toContain('blocks.1.hook_resid_post');
    expect(allHookNames(2).length).toBe(1 + 2 * 9);
  });

  it('maps USE-lite hooks to its graph nodes, raw nodes passed through', () => {
    const nodes = new Set(['raw/node']);
    expect(useLiteNode('blocks.0.mlp.hook_post', nodes)).toBe(USE_LITE_NODES['mlp.hook_post'](0));
    expect(useLiteNode('blocks.0.mlp.hook_post', nodes)).toMatch(/Layer_0\/TransformerLayer\/FFN\/conv1\/Relu$/);
    expect(useLiteNode('blocks.1.hook_resid_pre', nodes)).toBe(useLiteNode('blocks.0.hook_resid_post', nodes));
    expect(useLiteNode('raw/node', nodes)).toBe('raw/node');
    expect(() => useLiteNode('blocks.2.hook_resid_post', nodes)).toThrow(UserError);
    expect(() => useLiteNode('nope', nodes)).toThrow(/unknown hook/);
  });

  it('finds the hooks of an optimum-style GPT-2 export', () => {
    expect(lm.hookTensor('blocks.0.hook_resid_post')).toBe('/transformer/h.0/Add_1_output_0');
    expect(lm.hookTensor('blocks.1.hook_resid_mid')).toBe('/transformer/h.1/Add_output_0');
    expect(lm.hookTensor('blocks.1.hook_resid_pre')).toBe(lm.hookTensor('blocks.0.hook_resid_post'));
    expect(lm.hookTensor('blocks.1.mlp.hook_post')).toBe('/transformer/h.1/mlp/act/Mul_3_output_0');
    expect(lm.hookTensor('blocks.0.hook_mlp_out')).toBe('/transformer/h.0/mlp/c_proj/Add_output_0');
    expect(lm.hookTensor('blocks.0.hook_attn_out')).toBe('/transformer/h.0/attn/c_proj/Add_output_0');
    expect(lm.hookTensor('blocks.0.ln2.hook_normalized')).toBe('/transformer/h.0/ln_2/LayerNormalization_output_0');
    expect(lm.hookTensor('hook_embed')).toBe('/transformer/wte/Gather_output_0');
    expect(lm.hookTensor('/transformer/h.1/Add_1_output_0')).toBe('/transformer/h.1/Add_1_output_0');
    expect(() => lm.hookTensor('blocks.7.hook_resid_post')).toThrow(/not found/);
  });
});

describe('ONNX language model', () => {
  it('tokenizes with byte-level BPE, merges and added tokens', async () => {
    const tok = await loadTokenizer(join(dir, 'tiny-gpt2'));
    const ids = tok.encode('the whale<|endoftext|>');
    expect(tok.decode(ids)).toBe('the whale');
    expect(tok.token(ids[2]!)).toBe(' w');
    expect(ids).toContain(lm.bosId);
    expect(ids.length).toBeLessThan('the whale'.length + 1);
  });

  it('harvests every real token into a store, independent of padding', async () => {
    const hooked = await lm.hooked('blocks.0.mlp.hook_post');
    expect(hooked.dIn).toBe(TINY.mlp);
    const docs = [{ index: 0, name: 'a', text: TEXT }];
    const contexts = [...contextsOf(docs, (s) => lm.tokenize(s), 12, 'chunks', lm.prefix)];
    const store = join(dir, 'store');
    const w = await StoreWriter.open(store, {
      model: hooked.model,
      hookName: hooked.hookName,
      hookTensor: hooked.hookTensor,
      dIn: hooked.dIn,
      contextSize: 12,
      dtype: 'float32',
      source: {},
      vocab: hooked.vocab,
      rowsPerShard: 10,
    });
    await harvest(hooked, contexts, w, { batchSize: 3 });
    await w.finish();
    const ds = await openStore(store);
    expect(ds.rows).toBe(contexts.reduce((n, c) => n + c.tokens.length, 0));
    const last = contexts[contexts.length - 1]!;
    const alone = await hooked.activations([last.tokens]);
    const stored = new Float32Array(last.tokens.length * hooked.dIn);
    await ds.read(ds.rows - last.tokens.length, last.tokens.length, stored);
    for (let i = 0; i < alone.length; i++) expect(stored[i]).toBeCloseTo(alone[i]!, 5);
    expect((await ds.rowInfo(0, 1)).token[0]).toBe(lm.bosId);
    await ds.close();
  });

  it('splicing a perfect reconstruction leaves the loss as it was; zero ablation hurts', async () => {
    const hook = lm.hookTensor('blocks.0.hook_resid_post');
    const contexts = [...contextsOf([{ index: 0, name: 'a', text: TEXT }], (s) => lm.tokenize(s), 16, 'chunks', lm.prefix)].map((c) => c.tokens);
    const m = await causalSplice(engine, lm, hook, reconstructEdit(engine, perfectSae(TINY.d)), contexts, 2);
    expect(m.tokens).toBe(contexts.reduce((n, c) => n + c.length - 1, 0));
    expect(m.ce_spliced).toBeCloseTo(m.ce_clean, 4);
    expect(m.ce_zero).not.toBeCloseTo(m.ce_clean, 2);
    expect(m.loss_recovered).toBeCloseTo(1, 3);
    const clean = await lm.forward(contexts, hook);
    const spliced = await lm.forward(contexts, hook, reconstructEdit(engine, perfectSae(TINY.d)));
    let diff = 0;
    for (let i = 0; i < clean.logits.length; i++) diff = Math.max(diff, Math.abs(clean.logits[i]! - spliced.logits[i]!));
    expect(diff).toBeLessThan(1e-4);
  });

  it('steers: adds alpha W_dec[i] at the hook, changes the generated text; alpha 0 and clamping to the current value do not', async () => {
    const hook = lm.hookTensor('blocks.1.hook_resid_post');
    const sae = perfectSae(TINY.d);
    const x = Float32Array.from({ length: 3 * TINY.d }, (_, i) => Math.sin(i));
    const added = await steerEdit(engine, sae, { feature: 2, add: 5 })(x);
    for (let r = 0; r < 3; r++) for (let j = 0; j < TINY.d; j++) expect(added[r * TINY.d + j]! - x[r * TINY.d + j]!).toBeCloseTo(j === 2 ? 5 : 0, 5);
    const clamped = await steerEdit(engine, sae, { feature: 1, clamp: 0 })(x);
    expect(clamped[1]).toBeCloseTo(Math.min(x[1]!, 0), 5); // feature 1 reads relu(x_1): held at 0
    const prompt = [lm.bosId!, ...lm.tokenize('Call me')];
    const clean = await lm.generate(prompt, 6);
    expect(await lm.generate(prompt, 6, hook, steerEdit(engine, sae, { feature: 0, add: 0 }))).toEqual(clean);
    expect(await lm.generate(prompt, 6, hook, steerEdit(engine, sae, { feature: 0, add: 40 }))).not.toEqual(clean);
  });
});

describe('text', () => {
  it('cuts sentences and contexts', () => {
    expect(sentences('Call me Ishmael. Some years ago—never mind. "Is it?" he said.\n\nNew para')).toEqual([
      'Call me Ishmael.',
      'Some years ago—never mind.',
      '"Is it?" he said.',
      'New para',
    ]);
    const docs = [
      { index: 0, name: 'a', text: 'aaaa bbbb. Cc.' },
      { index: 1, name: 'b', text: 'dd' },
    ];
    // eslint-disable-next-line @typescript-eslint/no-misused-spread -- this stand-in tokenizer makes one token of each code point
    const split = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));
    const ctx = [...contextsOf(docs, split, 4, 'sentences')];
    expect(ctx.map((c) => c.tokens.length)).toEqual([4, 4, 2, 3, 2]);
    expect(ctx.map((c) => c.index)).toEqual([0, 1, 2, 3, 4]);
    expect(ctx.map((c) => c.doc)).toEqual([0, 0, 0, 0, 1]);
    expect([...contextsOf(docs, split, 5, 'chunks', [9])].map((c) => Array.from(c.tokens.slice(0, 1)))).toEqual([[9], [9], [9], [9], [9]]);
  });
});

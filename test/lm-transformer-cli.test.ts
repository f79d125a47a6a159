/**
 * The commands on hooked transformers (issue 9 part 4), on the tiny llama GGUF fixture
 * (test/fixtures/lm/llama-gguf: 2 layers, d_model 64, 64 positions, its own 300-token vocabulary):
 * the --model resolver's errors, harvest (bad hook, too long a context), eval --model (a perfect
 * reconstruction spliced gives the clean CE exactly and KL 0), steer (seeded sampling) and the
 * dashboard's logit effects from W_U.
 */
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../src/engine/index.js';
import { saveSae } from '../src/io/saelens.js';
import { openLanguageModel, resolveModel } from '../src/lm/model.js';
import { transformerSplice } from '../src/lm/transformer-splice.js';
import { Sae } from '../src/sae.js';
import { openStore } from '../src/store/dataset.js';
import { runCli } from './helpers/cli.js';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'lm');
const GGUF = join(FIXTURES, 'llama-gguf', 'model.gguf');
const HOOK = 'blocks.0.hook_resid_post';
const D = 64;

/** relu(x) - relu(-x) = x: a ReLU SAE [I, -I] that reconstructs every vector exactly. */
function identitySae(): Sae {
  const dSae = 2 * D;
  const wEnc = new Float32Array(D * dSae); // [D, 2D]
  const wDec = new Float32Array(dSae * D); // [2D, D]
  for (let j = 0; j < D; j++) {
    wEnc[j * dSae + j] = 1;
    wEnc[j * dSae + D + j] = -1;
    wDec[j * D + j] = 1;
    wDec[(D + j) * D + j] = -1;
  }
  return new Sae(
    'standard',
    { dIn: D, dSae },
    {},
    { W_enc: wEnc, b_enc: new Float32Array(dSae), W_dec: wDec, b_dec: new Float32Array(D) },
    { model_name: 'model', hook_name: HOOK, context_size: 16 },
  );
}

let dir = '';
let text = '';
let saeDir = '';
const engine = new Engine();
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sae-lm-transformer-cli-'));
  text = join(dir, 'text.txt');
  await writeFile(text, Array.from({ length: 12 }, (_, i) => `The capital of France is Paris ${i}. The capital is Paris.`).join('\n\n'));
  saeDir = join(dir, 'sae');
  await saveSae(saeDir, identitySae());
});
afterAll(async () => {
  await engine.release();
  await rm(dir, { recursive: true, force: true });
});

describe('--model resolver', () => {
  it('tells the layouts apart and refuses unknown ones in one line', async () => {
    expect(await resolveModel(GGUF)).toBe('gguf');
    expect(await resolveModel(join(FIXTURES, 'qwen2'))).toBe('hf-folder');
    expect(await resolveModel('use-lite')).toBe('use-lite');
    const empty = join(dir, 'empty');
    await mkdir(empty);
    await expect(resolveModel(empty)).rejects.toThrow(
      `${empty}: is not a model folder we know: expected config.json with *.safetensors (Hugging Face), or onnx/model*.onnx (transformers.js)`,
    );
    const bert = join(dir, 'bert');
    await mkdir(bert);
    await writeFile(join(bert, 'config.json'), '{"model_type": "bert"}');
    await writeFile(join(bert, 'model.safetensors'), '');
    await expect(resolveModel(bert)).rejects.toThrow(
      new RegExp(`^${join(bert, 'config.json')}: model_type 'bert' is not one we implement \\(supported: gpt2, llama`),
    );
    const txt = join(dir, 'weights.bin');
    await writeFile(txt, 'x');
    await expect(resolveModel(txt)).rejects.toThrow(`${txt}: is not a model: expected a .gguf or .onnx file, or a model folder`);
  });

  it('a Hugging Face folder needs its tokenizer.json', async () => {
    const folder = join(dir, 'qwen2');
    await mkdir(folder);
    for (const f of await readdir(join(FIXTURES, 'qwen2'))) await copyFile(join(FIXTURES, 'qwen2', f), join(folder, f));
    await expect(openLanguageModel(folder, engine)).rejects.toThrow(`${folder}: has no tokenizer.json beside config.json`);
  });
});

/** A character-level BPE tokenizer.json whose post-processor prepends <s> (ids below the fixture's vocabulary of 300). */
function charTokenizer(): object {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (const c of 'abcdefghijklmnopqrstuvwxyzTFP .') vocab[c] = Object.keys(vocab).length;
  const special = (id: number, content: string): object => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  return {
    version: '1.0',
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: null,
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ Sequence: { id: 'A', type_id: 0 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: null,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges: [],
    },
  };
}

describe('a Hugging Face folder', () => {
  it('runs with its tokenizer.json (BOS as its post-processor adds it), and equals the same weights from GGUF', async () => {
    const folder = join(dir, 'llama-hf');
    await mkdir(folder);
    for (const f of await readdir(join(FIXTURES, 'llama'))) await copyFile(join(FIXTURES, 'llama', f), join(folder, f));
    await writeFile(join(folder, 'tokenizer.json'), JSON.stringify(charTokenizer()));
    expect(await resolveModel(folder)).toBe('hf-folder');
    const r = await runCli('generate', folder, '--prompt', 'The cat', '--max-new-tokens', '2', '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as { ids: number[] }).ids).toEqual([1, 29, 10, 7, 32, 5, 3, 22]);
    const hf = await openLanguageModel(folder, engine);
    const gguf = await openLanguageModel(GGUF, engine);
    if (hf.kind !== 'transformer' || gguf.kind !== 'transformer') throw new Error('expected transformers');
    const ids = [Int32Array.from([1, 29, 10, 7, 32, 5, 3])];
    const a = (await hf.tf.model.run(ids, { stopAfter: 'blocks.1.hook_resid_post' })).hooks['blocks.1.hook_resid_post']!.data;
    const b = (await gguf.tf.model.run(ids, { stopAfter: 'blocks.1.hook_resid_post' })).hooks['blocks.1.hook_resid_post']!.data;
    const scale = Math.max(...a.map(Math.abs));
    expect(Math.max(...a.map((x, i) => Math.abs(x - b[i]!))) / scale).toBeLessThan(1e-5);
  });
});

describe('sae harvest on a GGUF transformer', () => {
  it('stores the hook for every token, BOS first; a bad hook or too long a context is one line', async () => {
    const out = join(dir, 'store');
    const r = await runCli('harvest', '--model', GGUF, '--hook', HOOK, '--text', text, '--out', out, '--context-size', '16', '--batch-size', '4', '--quiet');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const manifest = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')) as {
      d_in: number;
      hook_name: string;
      rows: number;
      source: { prepend_bos: boolean };
    };
    expect(manifest).toMatchObject({ d_in: D, hook_name: HOOK, source: { prepend_bos: true } });
    expect(manifest.rows).toBeGreaterThan(100);

    const bad = await runCli('harvest', '--model', GGUF, '--hook', 'blocks.7.hook_resid_post', '--text', text, '--out', join(dir, 'bad'), '--quiet');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^sae: unknown hook 'blocks\.7\.hook_resid_post': this llama model has .*blocks\.L\..*\n$/);
    const long = await runCli('harvest', '--model', GGUF, '--hook', HOOK, '--text', text, '--out', join(dir, 'long'), '--context-size', '65', '--quiet');
    expect(long.code).toBe(2);
    expect(long.stderr).toBe(`sae: ${GGUF}: a context of 65 tokens is longer than the model's 64 positions (max_position_embeddings)\n`);
  });
});

describe('--exclude-bos', () => {
  it('harvest runs BOS but stores no row for it; splicing with BOS kept clean is a different ablation', async () => {
    const args = (out: string, ...more: string[]): string[] => [
      'harvest',
      '--model',
      GGUF,
      '--hook',
      HOOK,
      '--text',
      text,
      '--out',
      out,
      '--context-size',
      '16',
      '--quiet',
      ...more,
    ];
    expect((await runCli(...args(join(dir, 'all')))).code).toBe(0);
    expect((await runCli(...args(join(dir, 'nobos'), '--exclude-bos'))).code).toBe(0);
    const all = await openStore(join(dir, 'all'));
    const nobos = await openStore(join(dir, 'nobos'));
    expect(nobos.rows).toBe(all.rows - all.manifest.contexts);
    const info = await nobos.rowInfo(0, 3);
    expect(Array.from(info.pos)).toEqual([1, 2, 3]);
    const a = new Float32Array(D);
    const b = new Float32Array(D);
    await all.read(1, 1, a);
    await nobos.read(0, 1, b);
    expect(b).toEqual(a);
    await all.close();
    await nobos.close();

    const m = await openLanguageModel(GGUF, engine);
    if (m.kind !== 'transformer') throw new Error('expected a transformer');
    const ids = [Int32Array.from([1, 278, 285, 287, 293, 295]), Int32Array.from([1, 285, 287])];
    const full = await transformerSplice(engine, m.tf.model, identitySae(), HOOK, ids);
    const kept = await transformerSplice(engine, m.tf.model, identitySae(), HOOK, ids, { keepPositions: 1 });
    expect(kept.ce_spliced).toBe(kept.ce_clean);
    expect(kept.ce_clean).toBe(full.ce_clean);
    expect(kept.ce_zero).not.toBe(full.ce_zero);
  });
});

describe('splicing into a GGUF transformer', () => {
  it('a perfect reconstruction gives the clean CE exactly and KL 0; zero ablation costs', async () => {
    const m = await openLanguageModel(GGUF, engine);
    if (m.kind !== 'transformer') throw new Error('expected a transformer');
    const ids = [Int32Array.from([1, 278, 285, 287, 293, 295, 278, 285]), Int32Array.from([1, 285, 287, 293])];
    const r = await transformerSplice(engine, m.tf.model, identitySae(), HOOK, ids);
    expect(r.tokens).toBe(10);
    expect(r.ce_spliced).toBe(r.ce_clean);
    expect(r.kl_spliced).toBe(0);
    expect(r.delta_loss).toBe(0);
    expect(r.loss_recovered).toBe(1);
    expect(Math.abs(r.ce_zero - r.ce_clean)).toBeGreaterThan(1e-3);
  });

  it('sae eval --model prints CE clean/spliced/zero, loss recovered, delta loss and KL', async () => {
    const out = join(dir, 'eval.json');
    const r = await runCli('eval', saeDir, '--model', GGUF, '--text', text, '--max-contexts', '3', '--out', out);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/CE clean .*\nCE spliced .*\nCE zero-ablated .*\nloss recovered +1\ndelta loss +0\nKL\(clean \|\| spliced\), nats +0/);
    const j = JSON.parse(await readFile(out, 'utf8')) as { ce_clean: number; ce_spliced: number; kl_spliced: number };
    expect(j.ce_spliced).toBe(j.ce_clean);
  });
});

describe('sae steer and dashboard on a GGUF transformer', () => {
  it('steers with seeded sampling: the same seed gives the same text', async () => {
    const args = [
      'steer',
      saeDir,
      '--model',
      GGUF,
      '--feature',
      '3',
      '--alpha',
      '20',
      '--prompt',
      'The capital of',
      '--tokens',
      '5',
      '--temperature',
      '1',
      '--top-k',
      '20',
      '--seed',
      '7',
    ];
    const a = await runCli(...args);
    expect(a.stderr).toBe('');
    expect(a.code).toBe(0);
    expect(a.stdout).toMatch(/^feature 3 at blocks\.0\.hook_resid_post: \+20 \* W_dec\[3\]\nprompt: +The capital of\nclean: .*\nsteered: .*\n$/);
    expect((await runCli(...args)).stdout).toBe(a.stdout);
    const clamp = await runCli('steer', saeDir, '--model', GGUF, '--feature', '3', '--clamp', '5', '--prompt', 'The capital of', '--tokens', '2');
    expect(clamp.code).toBe(0);
  });

  it('shows logit effects from the transformer W_U', async () => {
    const out = join(dir, 'dash');
    const r = await runCli('dashboard', saeDir, '--data', join(dir, 'store'), '--model', GGUF, '--out', out);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    const page = await readFile(join(out, 'features', `${(await readdir(join(out, 'features'))).find((f) => f.endsWith('.html'))}`), 'utf8');
    expect(page).toContain('<h3>raises</h3>');
  });
});

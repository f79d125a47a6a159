/**
 * Every published SAE layout loads and computes as its home library does: tiny SAEs written by
 * tools/gen_sae_formats.py in each layout, with the latents and reconstructions that library's
 * formulas give in float64 (test/fixtures/sae-formats/<case>/reference.safetensors).
 */
import { mkdtemp, readdir, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Engine } from '../src/engine/index.js';
import { UserError } from '../src/errors.js';
import { convertToSaeLens, convertToSparsify, type LoadedSae, loadAllSaes, loadAnySae, loadAnySaeAsSae, reconstruct } from '../src/formats/index.js';
import { readSafetensors, toFloat32 } from '../src/io/safetensors.js';

const engine = new Engine({ threads: 2, kernels: 'reference' });
const ROOT = join(import.meta.dirname, 'fixtures', 'sae-formats');

/** Folders holding a case.json, below ROOT (bad/ aside). */
async function caseDirs(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(dir, rel), { withFileTypes: true })) {
    if (!e.isDirectory() || e.name === 'bad') continue;
    const sub = join(rel, e.name);
    if ((await readdir(join(dir, sub))).includes('case.json')) out.push(sub);
    else out.push(...(await caseDirs(dir, sub)));
  }
  return out.sort();
}

const CASES = await caseDirs(ROOT);

/** max |a - b| / max |b| */
function relErr(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let num = 0;
  let den = 1e-12;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!));
    den = Math.max(den, Math.abs(b[i]!));
  }
  return num / den;
}

async function reference(dir: string): Promise<{ x: Float32Array; f: Float32Array; xHat: Float32Array }> {
  const file = join(ROOT, dir, 'reference.safetensors');
  const { tensors } = await readSafetensors(file);
  const get = (n: string): Float32Array => toFloat32(tensors.get(n)!, file);
  return { x: get('x'), f: get('f'), xHat: get('x_hat') };
}

async function expectMatches(loaded: LoadedSae, dir: string): Promise<void> {
  const ref = await reference(dir);
  expect(relErr(await loaded.sae.encode(engine, ref.x), ref.f)).toBeLessThan(1e-5);
  expect(relErr(await reconstruct(engine, loaded, ref.x), ref.xHat)).toBeLessThan(1e-5);
}

async function caseLoad(dir: string): Promise<{ path: string; format: string }> {
  const c = JSON.parse(await readFile(join(ROOT, dir, 'case.json'), 'utf8')) as { load: string; format: string };
  return { path: join(ROOT, dir, c.load), format: c.format };
}

const tmp = (): Promise<string> => mkdtemp(join(tmpdir(), 'sae-formats-'));

describe('published SAE layouts', () => {
  it('the fixtures cover every loader', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(16);
  });

  it.each(CASES)('%s: detected, loaded, encodes and reconstructs as the home library (1e-5 relative)', async (dir) => {
    const { path, format } = await caseLoad(dir);
    const loaded = await loadAnySae(path);
    expect(loaded.format).toBe(format);
    await expectMatches(loaded, dir);
  });

  it('says what it folded', async () => {
    const folded = async (dir: string): Promise<string> => (await loadAnySae((await caseLoad(dir)).path)).folded.join('\n');
    expect(await folded('saelens-v6-topk-rescale')).toMatch(/rescale_acts_by_decoder_norm folded/);
    expect(await folded('saelens-v6-jumprelu-negative-threshold')).toMatch(/negative thresholds? set to 0/);
    expect(await folded('saelens-v6-standard-no-bdec')).toMatch(/b_dec @ W_enc added to b_enc/);
    expect(await folded('saelens-v5-topk-finetuning-scale')).toMatch(/scaling_factor folded into W_dec/);
    expect(await folded('saelens-v5-topk-finetuning-scale')).toMatch(/expected_average_only_in.*inputs not rescaled/);
    expect(await folded('saelens-v5-jumprelu-float16')).toMatch(/dtype float16: computed in float32/);
    expect(await folded('saelens-v3-standard-scaling-factor')).toMatch(/scaling_factor folded/);
    expect(await folded('saelens-v3-ones-scaling-factor')).toBe('');
    expect(await folded('llama-scope')).toMatch(/dataset norm factor/);
    expect(await folded('sparsify-skip-multi-topk-bf16')).toMatch(/multi_topk/);
  });

  it('negative JumpReLU thresholds matter in the fixture: without the ReLU the latents would differ', async () => {
    const dir = 'saelens-v6-jumprelu-negative-threshold';
    const { tensors } = await readSafetensors(join(ROOT, dir, 'sae', 'sae_weights.safetensors'));
    const theta = toFloat32(tensors.get('threshold')!, 'threshold');
    expect(theta.some((v) => v < 0)).toBe(true);
    const { x, f } = await reference(dir);
    const loaded = await loadAnySae(join(ROOT, dir, 'sae'));
    expect(Math.min(...(await loaded.sae.encode(engine, x)))).toBeGreaterThanOrEqual(0);
    expect(Math.min(...f)).toBeGreaterThanOrEqual(0);
  });

  it('keeps hook names and other SAELens metadata', async () => {
    const v6 = await loadAnySae(join(ROOT, 'saelens-v6-standard', 'sae'));
    expect(v6.sae.metadata).toMatchObject({
      hook_name: 'blocks.3.hook_resid_pre',
      neuronpedia_id: 'gpt2-small/3-res',
      model_from_pretrained_kwargs: { center_writing_weights: false },
    });
    const v3 = await loadAnySae(join(ROOT, 'saelens-v3-standard-scaling-factor', 'sae'));
    expect(v3.sae.metadata).toMatchObject({ hook_name: 'blocks.3.hook_resid_pre', hook_layer: 3 });
  });

  it('a sparsify model folder loads each hookpoint, in natural order; loadAnySae asks for one', async () => {
    const all = await loadAllSaes(join(ROOT, 'sparsify-model', 'model'));
    expect([...all.keys()]).toEqual(['layers.2', 'layers.10']);
    for (const [name, loaded] of all) await expectMatches(loaded, join('sparsify-model', name));
    await expect(loadAnySae(join(ROOT, 'sparsify-model', 'model'))).rejects.toThrow(/holds 2 SAEs \(layers\.2, layers\.10\)/);
  });

  it('detects the layout from a file inside it too', async () => {
    for (const [file, format] of [
      [join('saelens-v6-standard', 'sae', 'cfg.json'), 'saelens'],
      [join('saelens-v6-standard', 'sae', 'sae_weights.safetensors'), 'saelens'],
      [join('sparsify-topk', 'layers.3', 'sae.safetensors'), 'sparsify'],
      [join('llama-scope', 'sae', 'checkpoints', 'final.safetensors'), 'llama-scope'],
      ['gemma-scope', 'gemma-scope'],
    ] as const) {
      expect((await loadAnySae(join(ROOT, file))).format).toBe(format);
    }
    const one = await loadAllSaes(join(ROOT, 'gemma-scope'));
    expect([...one.keys()]).toEqual(['']);
  });

  it('loadAnySaeAsSae refuses a skip connection, which Sae.decode would drop', async () => {
    await expect(loadAnySaeAsSae(join(ROOT, 'sparsify-skip-multi-topk-bf16', 'layers.5.mlp'))).rejects.toThrow(/skip connection \(W_skip\)/);
    expect((await loadAnySaeAsSae(join(ROOT, 'sparsify-topk', 'layers.3'))).architecture).toBe('topk');
  });

  it('a forced format that does not match fails with a one-line error', async () => {
    await expect(loadAnySae(join(ROOT, 'gemma-scope'), { format: 'sparsify' })).rejects.toThrow(/cfg\.json: no such file/);
  });
});

describe('convertToSaeLens', () => {
  const convertible = CASES.filter((c) => !c.includes('skip'));
  // SAE_FORMATS_CONVERTED=DIR keeps the converted folders for tools/check_saelens_compat.py.
  const keep = process.env['SAE_FORMATS_CONVERTED'];
  it.each(convertible)('%s: converted, reloads and computes the same', async (dir) => {
    const out = keep ? join(keep, dir) : await tmp();
    const { folded } = await convertToSaeLens((await caseLoad(dir)).path, out);
    expect(Array.isArray(folded)).toBe(true);
    const reloaded = await loadAnySae(out);
    expect(reloaded.format).toBe('saelens');
    await expectMatches(reloaded, dir);
    const cfg = JSON.parse(await readFile(join(out, 'cfg.json'), 'utf8')) as Record<string, unknown>;
    expect(['standard', 'topk', 'jumprelu', 'gated']).toContain(cfg['architecture']);
  });

  it('refuses a skip connection, which SAELens lacks', async () => {
    await expect(convertToSaeLens(join(ROOT, 'sparsify-skip-multi-topk-bf16', 'layers.5.mlp'), await tmp())).rejects.toThrow(/skip connection/);
  });
});

describe('convertToSparsify', () => {
  const topk = CASES.filter((c) => /topk/.test(c) && !c.includes('skip'));
  const keep = process.env['SAE_FORMATS_CONVERTED'];
  it.each(topk)('%s: written as a sparsify folder, reloads and computes the same', async (dir) => {
    const out = keep ? join(keep, 'sparsify', dir) : await tmp();
    await convertToSparsify((await caseLoad(dir)).path, out);
    const cfg = JSON.parse(await readFile(join(out, 'cfg.json'), 'utf8')) as Record<string, unknown>;
    expect(cfg).toMatchObject({ activation: 'topk', skip_connection: false, transcode: false, d_in: 6, num_latents: 16 });
    const reloaded = await loadAnySae(out);
    expect(reloaded.format).toBe('sparsify');
    await expectMatches(reloaded, dir);
  });

  it('refuses architectures sparsify does not compute', async () => {
    await expect(convertToSparsify(join(ROOT, 'gemma-scope', 'params.npz'), await tmp())).rejects.toThrow(/architecture 'jumprelu' has no sparsify form/);
  });
});

describe('bad input: one line naming the file and what is wrong', () => {
  const BAD = join(ROOT, 'bad');
  it.each([
    ['unknown-layout', /unknown-layout: no SAE layout we know here/],
    ['shape-mismatch', /shape-mismatch[\\/]sae_weights\.safetensors: tensor 'W_enc' has shape \[6, 16\], expected \[6, 17\]/],
    ['topk-without-k', /topk-without-k[\\/]cfg\.json: a topk SAE needs k/],
    ['hook-z-mismatch', /cfg\.json: reshape_activations 'hook_z' but hook_name 'blocks\.3\.hook_resid_pre' is not a hook_z/],
    ['constant-norm-rescale', /cfg\.json: normalize_activations 'constant_norm_rescale' normalises each input by its own statistics/],
    ['layer-norm', /cfg\.json: normalize_activations 'layer_norm'/],
    ['unknown-dtype', /cfg\.json: dtype "float8" is not one SAELens knows/],
    ['tanh-relu', /cfg\.json: activation_fn "tanh-relu" is not supported/],
    ['unexpected-tensor', /sae_weights\.safetensors: unexpected tensor 'threshold'/],
    ['scale-without-flag', /sae_weights\.safetensors: tensor 'scaling_factor' is not all ones but cfg\.json has finetuning_scaling_factor false/],
    ['npz-missing-threshold', /params\.npz: array 'threshold' is missing/],
    ['sparsify-no-cfg', /sparsify-no-cfg[\\/]cfg\.json: no such file \(a sparsify folder has cfg\.json beside sae\.safetensors\)/],
    ['openai', /ae\.pt: a PyTorch pickle/],
  ])('%s', async (name, message) => {
    const path = join(BAD, name);
    const target = name === 'openai' ? join(path, 'ae.pt') : path;
    expect((await stat(target)).isDirectory() || name === 'openai').toBe(true);
    const err = await loadAnySae(target).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UserError);
    const msg = (err as Error).message;
    expect(msg).toMatch(message);
    expect(msg).not.toContain('\n');
  });
});

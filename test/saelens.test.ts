import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ARCHITECTURES, architecture } from '../src/arch/index.js';
import { loadAnySae } from '../src/formats/index.js';
import { Engine } from '../src/engine/index.js';
import { UserError } from '../src/errors.js';
import { loadSae, loadSaeLens, loadsInSaeLens, loadSparsity, saveSae } from '../src/io/saelens.js';
import { serializeSafetensors } from '../src/io/safetensors.js';
import { Rng } from '../src/rng.js';
import { type Sae, saeOf } from '../src/sae.js';
import { initParams } from '../src/train/init.js';

const engine = new Engine({ threads: 2, kernels: 'reference' });

function randomSae(arch: 'standard' | 'kl', dIn = 13, dSae = 37, hyper: unknown = {}): Sae {
  const def = architecture(arch);
  const h = def.hyper.parse(hyper);
  const rng = new Rng(3);
  const params = initParams(def, h, { dIn, dSae }, rng, 0.5, engine.kernels);
  for (const p of Object.values(params)) for (let i = 0; i < p.length; i++) p[i]! += 0.1 * rng.normal();
  return saeOf(arch, { dIn, dSae }, h, params, { data: 'test' });
}

function randomX(rows: number, dIn: number): Float32Array {
  const rng = new Rng(9);
  return Float32Array.from({ length: rows * dIn }, () => rng.normal());
}

const tmp = (): Promise<string> => mkdtemp(join(tmpdir(), 'sae-io-'));

describe('SAELens layout', () => {
  it.each(['standard', 'kl'] as const)('%s: a truncated or mis-shaped sparsity.safetensors is refused at load, in one line', async (arch) => {
    const sae = randomSae(arch, 13, 37, arch === 'kl' ? { decoderActivation: 'sigmoid', rho: 0.1 } : {});
    const dir = await tmp();
    await saveSae(dir, sae, { log10FiringRates: new Float32Array(37) });
    const path = join(dir, 'sparsity.safetensors');
    const whole = await readFile(path);
    await writeFile(path, whole.subarray(0, whole.length - 5));
    await expect(loadSae(dir)).rejects.toThrow(new RegExp(`^${path}: .*`));
    await expect(loadSae(dir)).rejects.toBeInstanceOf(UserError);
    await writeFile(path, serializeSafetensors({ sparsity: { dtype: 'F32', shape: [36], data: new Float32Array(36) } }));
    await expect(loadSae(dir)).rejects.toThrow(`${path}: tensor 'sparsity' has shape [36], expected [37] (d_sae)`);
  });

  it.each([
    ['standard', {}],
    ['kl', { decoderActivation: 'sigmoid', rho: 0.1 }],
  ] as const)('%s: save -> load -> encode and decode give identical outputs', async (arch, hyper) => {
    const sae = randomSae(arch, 13, 37, hyper);
    const dir = await tmp();
    const rates = Float32Array.from({ length: 37 }, (_, i) => -i / 10);
    await saveSae(dir, sae, { log10FiringRates: rates });
    const loaded = await loadSae(dir);
    expect(loaded.architecture).toBe(arch);
    expect(loaded.hyper).toEqual(sae.hyper);
    expect(loaded.metadata['data']).toBe('test');
    const x = randomX(50, 13);
    const [f1, f2] = [await sae.encode(engine, x), await loaded.encode(engine, x)];
    expect(f2).toEqual(f1);
    expect(await loaded.decode(engine, f1)).toEqual(await sae.decode(engine, f1));
    expect(await loadSparsity(dir)).toEqual(rates);
  });

  it('writes the fields SAELens v6 reads', async () => {
    const dir = await tmp();
    await saveSae(dir, randomSae('standard'));
    const cfg = JSON.parse(await readFile(join(dir, 'cfg.json'), 'utf8')) as Record<string, unknown>;
    expect(cfg).toMatchObject({ architecture: 'standard', d_in: 13, d_sae: 37, dtype: 'float32', apply_b_dec_to_input: true, normalize_activations: 'none' });
    expect((cfg['metadata'] as Record<string, unknown>)['sae_lens_version']).toBe('6.0.0');
    const kl = await tmp();
    await saveSae(kl, randomSae('kl'));
    const klCfg = JSON.parse(await readFile(join(kl, 'cfg.json'), 'utf8')) as Record<string, unknown>;
    expect(klCfg).toMatchObject({
      format: 'sparse-autoencoder',
      architecture: 'kl',
      apply_b_dec_to_input: false,
      encoder_activation: 'sigmoid',
      decoder_activation: 'identity',
    });
    expect(klCfg['note']).toMatch(/SAELens cannot load this folder/);
    expect(klCfg['metadata']).not.toHaveProperty('sae_lens_version');
  });

  it("folds a finetuning scale saved under the module's own name, and ignores the flag without a tensor, as SAELens does", async () => {
    const dir = await tmp();
    const sae = randomSae('standard');
    await saveSae(dir, sae);
    const cfg = JSON.parse(await readFile(join(dir, 'cfg.json'), 'utf8')) as Record<string, unknown>;
    await writeFile(join(dir, 'cfg.json'), JSON.stringify({ ...cfg, finetuning_scaling_factor: true }));
    const plain = await loadSaeLens(dir);
    expect(plain.folded).toEqual(['finetuning_scaling_factor true but no scaling_factor tensor: no scale, as SAELens does']);
    expect(plain.sae.params['W_dec']).toEqual(sae.params['W_dec']);
    const t = Object.fromEntries(
      Object.entries(sae.params).map(([k, v]) => [
        k,
        { dtype: 'F32' as const, shape: k === 'W_enc' ? [13, 37] : k === 'W_dec' ? [37, 13] : [v.length], data: v },
      ]),
    );
    const s = new Float32Array(37).fill(2);
    await writeFile(join(dir, 'sae_weights.safetensors'), serializeSafetensors({ ...t, finetuning_scaling_factor: { dtype: 'F32', shape: [37], data: s } }));
    const scaled = await loadSaeLens(dir);
    expect(scaled.sae.params['W_dec']).toEqual(sae.params['W_dec']!.map((v) => v * 2));
  });

  it('knows which of our architectures SAELens loads', () => {
    expect(ARCHITECTURES.filter((a) => loadsInSaeLens(a))).toEqual(['standard', 'topk', 'jumprelu', 'gated']);
  });

  it('a jumprelu cfg.json without apply_b_dec_to_input subtracts b_dec, as SAELens (default true) does', async () => {
    const dir = await tmp();
    const { sae: gemma } = await loadAnySae(join(import.meta.dirname, 'fixtures', 'sae-formats', 'saelens-v6-jumprelu-bdec', 'sae'));
    await saveSae(dir, gemma);
    const cfg = JSON.parse(await readFile(join(dir, 'cfg.json'), 'utf8')) as Record<string, unknown>;
    expect(cfg['apply_b_dec_to_input']).toBe(true);
    delete cfg['apply_b_dec_to_input'];
    await writeFile(join(dir, 'cfg.json'), JSON.stringify(cfg));
    expect(architecture('jumprelu').applyBDecToInput((await loadSae(dir)).hyper)).toBe(true);
  });

  it('encodeTopK returns the k largest activations of each row, largest first', async () => {
    const sae = randomSae('standard');
    const x = randomX(20, 13);
    const f = await sae.encode(engine, x);
    const { indices, values } = await sae.encodeTopK(engine, x, 5);
    for (let r = 0; r < 20; r++) {
      const row = Array.from(f.subarray(r * 37, (r + 1) * 37));
      const sorted = [...row].sort((a, b) => b - a).slice(0, 5);
      expect(Array.from(values.subarray(r * 5, r * 5 + 5))).toEqual(sorted);
      for (let j = 0; j < 5; j++) expect(row[indices[r * 5 + j]!]).toBe(values[r * 5 + j]);
    }
  });

  it('folding an input scale gives the SAE that takes unscaled inputs', async () => {
    const sae = randomSae('standard');
    const x = randomX(30, 13);
    const c = 2.5;
    const folded = sae.foldInputScaling(c);
    const fScaled = await sae.encode(
      engine,
      x.map((v) => v * c),
    );
    const fFolded = await folded.encode(engine, x);
    for (let i = 0; i < fScaled.length; i++) expect(fFolded[i]).toBeCloseTo(fScaled[i]!, 4);
    const xHat = await folded.decode(engine, fFolded);
    const xHatScaled = await sae.decode(engine, fScaled);
    for (let i = 0; i < xHat.length; i++) expect(xHat[i]).toBeCloseTo(xHatScaled[i]! / c, 4);
  });

  it('reads a pre-6.0 config', async () => {
    const dir = await tmp();
    const sae = randomSae('standard');
    await saveSae(dir, sae);
    const old = {
      d_in: 13,
      d_sae: 37,
      dtype: 'float32',
      hook_point: 'blocks.8.hook_resid_pre',
      activation_fn_str: 'relu',
      normalize_activations: false,
      apply_b_dec_to_input: true,
    };
    await writeFile(join(dir, 'cfg.json'), JSON.stringify(old));
    const loaded = await loadSae(dir);
    expect(loaded.architecture).toBe('standard');
    expect(loaded.metadata['hook_name']).toBe('blocks.8.hook_resid_pre');
  });

  describe('refuses what it would load wrongly, in one line naming the file', () => {
    async function broken(edit: (dir: string, cfg: Record<string, unknown>) => Promise<void> | void): Promise<string> {
      const dir = await tmp();
      await saveSae(dir, randomSae('standard'));
      const cfg = JSON.parse(await readFile(join(dir, 'cfg.json'), 'utf8')) as Record<string, unknown>;
      await edit(dir, cfg);
      await writeFile(join(dir, 'cfg.json'), JSON.stringify(cfg));
      const e = await loadSae(dir).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(e).toBeInstanceOf(UserError);
      const message = (e as Error).message;
      expect(message).not.toMatch(/\n/);
      return message;
    }
    const weights = (dir: string, tensors: Record<string, { shape: number[] }>): Promise<void> => {
      const t = Object.fromEntries(
        Object.entries(tensors).map(([k, v]) => [k, { dtype: 'F32' as const, shape: v.shape, data: new Float32Array(v.shape.reduce((a, b) => a * b, 1)) }]),
      );
      return writeFile(join(dir, 'sae_weights.safetensors'), serializeSafetensors(t));
    };
    const good = { W_enc: { shape: [13, 37] }, b_enc: { shape: [37] }, W_dec: { shape: [37, 13] }, b_dec: { shape: [13] } };

    it('unknown architecture', async () => {
      expect(await broken((_d, c) => void (c['architecture'] = 'mystery'))).toMatch(/cfg\.json: architecture 'mystery' is not an SAE SAELens loads/);
    });
    it('bad d_in', async () => {
      expect(await broken((_d, c) => void (c['d_in'] = -3))).toMatch(/cfg\.json: d_in must be a positive integer/);
    });
    it('missing tensor', async () => {
      const { b_dec: _, ...rest } = good;
      expect(await broken((d) => weights(d, rest))).toMatch(/sae_weights\.safetensors: tensor 'b_dec' is missing/);
    });
    it('wrong shape', async () => {
      expect(await broken((d) => weights(d, { ...good, W_enc: { shape: [37, 13] } }))).toMatch(/tensor 'W_enc' has shape \[37, 13\], expected \[13, 37\]/);
    });
    it('a tensor it would ignore', async () => {
      expect(await broken((d) => weights(d, { ...good, threshold: { shape: [37] } }))).toMatch(
        /unexpected tensor 'threshold' for SAELens architecture 'standard'/,
      );
    });
    it('unsupported normalisation', async () => {
      expect(await broken((_d, c) => void (c['normalize_activations'] = 'layer_norm'))).toMatch(
        /normalize_activations 'layer_norm' normalises each input by its own statistics/,
      );
    });
    it('missing folder', async () => {
      await expect(loadSae('/nonexistent/sae')).rejects.toThrow(/\/nonexistent\/sae\/cfg\.json: no such file/);
    });
  });
});

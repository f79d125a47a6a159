/**
 * Every architecture through the same paths: a training step gives finite losses and a gradient for
 * every trainable parameter; save -> load -> encode gives identical latents (in the saved form, e.g.
 * BatchTopK as JumpReLU); the threshold parametrisations of JumpReLU agree.
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ARCHITECTURES, architecture } from '../src/arch/index.js';
import type { Architecture, Params } from '../src/arch/types.js';
import { ENCODER_CHUNK, runEncoder } from '../src/arch/sparse-encoder.js';
import { Engine } from '../src/engine/index.js';
import { referenceGemm } from '../src/engine/reference.js';
import { loadSae, saveSae } from '../src/io/saelens.js';
import { Rng } from '../src/rng.js';
import { saeOf } from '../src/sae.js';
import { initParams } from '../src/train/init.js';

const engine = new Engine({ threads: 2 });
const dims = { dIn: 12, dSae: 40 };
const HYPER: Record<Architecture, unknown> = {
  standard: {},
  kl: {},
  topk: { k: 5, auxK: 6 },
  batchtopk: { k: 5, auxK: 6 },
  matryoshka: { k: 5, prefixes: [5, 10, 20] },
  jumprelu: { initThreshold: 0.05, bandwidth: 0.1 },
  gated: {},
};

function randomX(rows: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: rows * dims.dIn }, () => rng.normal());
}

function trained(arch: Architecture): { params: Params; hyper: unknown } {
  const def = architecture(arch);
  const hyper = def.hyper.parse(HYPER[arch]);
  const params = initParams(def, hyper, dims, new Rng(1), 0.5, engine.kernels);
  const rng = new Rng(2);
  for (const [name, p] of Object.entries(params))
    if (name !== 'threshold' && name !== 'log_threshold') for (let i = 0; i < p.length; i++) p[i]! += 0.05 * rng.normal();
  return { params, hyper };
}

describe.each(ARCHITECTURES)('%s', (arch) => {
  it('one training step: finite losses, a gradient for every trainable parameter, fires counted', async () => {
    const def = architecture(arch);
    const { params, hyper } = trained(arch);
    const step = await def.step(engine, dims, hyper, false);
    const deadMask = Uint8Array.from({ length: dims.dSae }, (_, i) => (i % 3 === 0 ? 1 : 0));
    const out = await step.run(params, { x: randomX(64, 3), rows: 64, coef: 0.1, deadMask, progress: 0 });
    for (const [k, v] of Object.entries(out.losses)) expect(Number.isFinite(v), k).toBe(true);
    expect(out.losses['total']).toBeGreaterThan(0);
    for (const spec of def.params(dims, hyper)) {
      if (spec.trainable === false) continue;
      const g = out.grads[spec.name];
      expect(g, spec.name).toBeDefined();
      expect(g!.length).toBe(spec.shape.reduce((a, b) => a * b, 1));
      expect(g!.every(Number.isFinite)).toBe(true);
    }
    expect(out.fires.length).toBe(dims.dSae);
    expect(out.sse).toBeGreaterThan(0);
    expect(out.variance).toBeGreaterThan(0);
  });

  it('save -> load -> encode gives identical latents (in the saved form)', async () => {
    // batchtopk and matryoshka need a step to set their threshold
    const def = architecture(arch);
    const { params, hyper } = trained(arch);
    await (
      await def.step(engine, dims, hyper, false)
    ).run(params, { x: randomX(64, 3), rows: 64, coef: 0.1, deadMask: new Uint8Array(dims.dSae), progress: 0 });
    const sae = saeOf(arch, dims, hyper, params).exported();
    const dir = await mkdtemp(join(tmpdir(), `sae-${arch}-`));
    await saveSae(dir, sae);
    const loaded = await loadSae(dir);
    expect(loaded.architecture).toBe(sae.architecture);
    const x = randomX(30, 4);
    const before = await saeOf(arch, dims, hyper, params).encode(engine, x);
    const after = await loaded.encode(engine, x);
    expect(after).toEqual(await sae.encode(engine, x));
    for (let i = 0; i < before.length; i++) expect(after[i]).toBeCloseTo(before[i]!, 5);
    const fired = before.filter((v) => v !== 0).length;
    expect(fired).toBeGreaterThan(0);
  });
});

describe('saved forms', () => {
  it('batchtopk is saved as SAELens jumprelu with its threshold on every latent and apply_b_dec_to_input', async () => {
    const { params, hyper } = trained('batchtopk');
    await (
      await architecture('batchtopk').step(engine, dims, hyper, false)
    ).run(params, { x: randomX(64, 3), rows: 64, coef: 0, deadMask: new Uint8Array(dims.dSae), progress: 0 });
    expect(params['threshold']![0]).toBeGreaterThan(0);
    const dir = await mkdtemp(join(tmpdir(), 'sae-btk-'));
    await saveSae(dir, saeOf('batchtopk', dims, hyper, params).exported());
    const cfg = JSON.parse(await readFile(join(dir, 'cfg.json'), 'utf8')) as Record<string, unknown>;
    expect(cfg).toMatchObject({ architecture: 'jumprelu', apply_b_dec_to_input: true });
    const loaded = await loadSae(dir);
    expect(Array.from(new Set(loaded.params['threshold']))).toEqual([params['threshold']![0]]);
  });

  it('topk saves k, and its sparse top-k encode is its code', async () => {
    const { params, hyper } = trained('topk');
    const sae = saeOf('topk', dims, hyper, params);
    const dir = await mkdtemp(join(tmpdir(), 'sae-topk-'));
    await saveSae(dir, sae);
    expect(JSON.parse(await readFile(join(dir, 'cfg.json'), 'utf8'))).toMatchObject({ architecture: 'topk', k: 5 });
    const x = randomX(20, 5);
    const f = await sae.encode(engine, x);
    const code = await sae.encodeTopK(engine, x, 5);
    const dense = await sae.decode(engine, f);
    const sparse = await sae.decodeSparse(engine, code);
    for (let i = 0; i < dense.length; i++) expect(sparse[i]).toBeCloseTo(dense[i]!, 5);
    for (let r = 0; r < 20; r++) {
      expect(f.subarray(r * 40, r * 40 + 40).filter((v) => v !== 0).length).toBeLessThanOrEqual(5);
      for (let j = 0; j < 5; j++) expect(f[r * 40 + code.indices[r * 5 + j]!]).toBe(code.values[r * 5 + j]);
    }
  });
});

describe('jumprelu threshold parametrisations', () => {
  it('the linear threshold gradient is the log-threshold gradient divided by theta', async () => {
    const ref = JSON.parse(await readFile(fileURLToPath(new URL('./fixtures/reference/jumprelu.json', import.meta.url)), 'utf8')) as {
      inputs: { x: number[][] };
      params: Record<string, number[] | number[][]>;
      grads: { log_threshold: number[] };
      hyper: { l0_coefficient: number; bandwidth: number };
    };
    const def = architecture('jumprelu');
    const flat = (a: number[] | number[][]): Float32Array => Float32Array.from(a.flat());
    const d = { dIn: ref.inputs.x[0]!.length, dSae: ref.grads.log_threshold.length };
    const { log_threshold: logTheta, ...rest } = ref.params;
    const params: Params = Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, flat(v)]));
    params['threshold'] = flat(logTheta!).map(Math.exp);
    const step = await def.step(engine, d, def.hyper.parse({ bandwidth: ref.hyper.bandwidth, thresholdParam: 'linear' }), false);
    const out = await step.run(params, {
      x: flat(ref.inputs.x),
      rows: ref.inputs.x.length,
      coef: ref.hyper.l0_coefficient,
      deadMask: new Uint8Array(d.dSae),
      progress: 0,
    });
    const g = out.grads['threshold']!;
    ref.grads.log_threshold.forEach((v, i) => expect(g[i]! * params['threshold']![i]!).toBeCloseTo(v, 5));
  });
});

describe('TopK-family steps at batches past one encoder call', () => {
  const rows = ENCODER_CHUNK * 2 + 76;

  it("the chunked encoder selects each row's k largest pre-activations, as a float64 product does", async () => {
    const { params } = trained('topk');
    const x = randomX(rows, 9);
    const enc = await runEncoder(engine, 'test-chunks', dims, { applyBDec: true, aux: false, debug: false }, params, x, rows, 5);
    const xc = x.map((v, i) => v - params['b_dec']![i % dims.dIn]!);
    const pre = referenceGemm(xc, params['W_enc']!, rows, dims.dIn, dims.dSae, { c: params['b_enc']! });
    for (const r of [0, ENCODER_CHUNK - 1, ENCODER_CHUNK, rows - 1]) {
      const row = Array.from(pre.subarray(r * dims.dSae, (r + 1) * dims.dSae));
      const top = row
        .map((v, i) => ({ v, i }))
        .sort((a, b) => b.v - a.v)
        .slice(0, 5);
      expect(Array.from(enc.main.code.idx.subarray(r * 5, r * 5 + 5))).toEqual(top.map((t) => t.i));
      top.forEach((t, j) => expect(enc.main.pre[r * 5 + j]).toBeCloseTo(t.v, 4));
      expect(Array.from(enc.xc.subarray(r * dims.dIn, (r + 1) * dims.dIn))).toEqual(Array.from(xc.subarray(r * dims.dIn, (r + 1) * dims.dIn)));
    }
  });

  it.each(['topk', 'batchtopk', 'matryoshka'] as const)('%s: a step that reuses its buffers gives what a fresh one gives', async (arch) => {
    const def = architecture(arch);
    const { params, hyper } = trained(arch);
    const deadMask = Uint8Array.from({ length: dims.dSae }, (_, i) => (i % 3 === 0 ? 1 : 0));
    const input = (seed: number) => ({ x: randomX(rows, seed), rows, coef: 0.1, deadMask, progress: 0 });
    const reusing = await def.step(engine, dims, hyper, false);
    await reusing.run(params, input(4)); // leaves other values in the buffers
    const threshold = params['threshold']?.slice();
    const again = await reusing.run(params, input(5));
    if (threshold) params['threshold']!.set(threshold); // batchtopk's EMA moved: undo for the fresh step
    const fresh = await (await def.step(engine, dims, hyper, true)).run(params, input(5));
    expect(again.losses).toEqual(fresh.losses);
    for (const [name, g] of Object.entries(fresh.grads)) expect(again.grads[name], name).toEqual(g);
  });
});

describe('batchtopk TopK warm-up', () => {
  const k = 5;
  const rows = 64;
  const perRow = (f: Float32Array): number[] =>
    Array.from({ length: rows }, (_, r) => f.subarray(r * dims.dSae, (r + 1) * dims.dSae).filter((v) => v > 0).length);

  it('keeps each row its own k largest before topkWarmup, then the k * rows largest of the batch', async () => {
    const def = architecture('batchtopk');
    const hyper = def.hyper.parse({ k, topkWarmup: 0.5 });
    const { params } = trained('batchtopk');
    const input = (progress: number) => ({ x: randomX(rows, 7), rows, coef: 0, deadMask: new Uint8Array(dims.dSae), progress });
    const warm = await (await def.step(engine, dims, hyper, true)).run(params, input(0.49));
    expect(new Set(perRow(warm.forward['f']!))).toEqual(new Set([k]));
    const batch = await (await def.step(engine, dims, hyper, true)).run(params, input(0.5));
    const counts = perRow(batch.forward['f']!);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(k * rows);
    expect(new Set(counts).size).toBeGreaterThan(1);
    // the inference threshold follows the batch selection in both phases
    expect(warm.forward['threshold_after']![0]).toBeGreaterThan(0);
  });
});

describe('jumprelu TopK warm-up', () => {
  it('trains as TopK with warmupK per row, every threshold at the batch threshold, then as JumpReLU', async () => {
    const def = architecture('jumprelu');
    const k = 4;
    const rows = 64;
    const hyper = def.hyper.parse({ topkWarmup: 0.5, warmupK: k, initThreshold: 0.05, bandwidth: 0.1 });
    const { params } = trained('jumprelu');
    const input = (progress: number) => ({ x: randomX(rows, 8), rows, coef: 0.1, deadMask: new Uint8Array(dims.dSae), progress });
    const warm = await (await def.step(engine, dims, hyper, true)).run(params, input(0));
    const f = warm.forward['f']!;
    for (let r = 0; r < rows; r++) expect(f.subarray(r * dims.dSae, (r + 1) * dims.dSae).filter((v) => v > 0).length).toBeLessThanOrEqual(k);
    expect(warm.grads['threshold']).toEqual(new Float32Array(dims.dSae));
    const theta = params['threshold']!;
    expect(theta[0]).toBeGreaterThan(0);
    expect(new Set(theta).size).toBe(1);
    expect(warm.losses['l0']).toBeUndefined();
    const after = await (await def.step(engine, dims, hyper, true)).run(params, input(0.5));
    expect(after.losses['l0']).toBeGreaterThan(0);
  });

  it('refuses topkWarmup without warmupK', () => {
    expect(() => architecture('jumprelu').hyper.parse({ topkWarmup: 0.3 })).toThrow(/warmupK/);
  });
});

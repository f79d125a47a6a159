import { existsSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeNpy } from '../src/io/npy.js';
import { readSafetensors, toFloat32 } from '../src/io/safetensors.js';
import { Rng } from '../src/rng.js';
import { learningRate, sparsityCoefficient } from '../src/train/schedule.js';
import { DeadTracker } from '../src/train/dead.js';
import { geometricMedian } from '../src/train/init.js';
import { runSae, startSae } from './helpers/spawn.js';

/** Sparse combinations of 48 random directions in 16 dimensions: [rows, 16]. */
async function syntheticNpy(dir: string, rows = 6000): Promise<string> {
  const d = 16;
  const n = 48;
  const rng = new Rng(4);
  const feats = Float32Array.from({ length: n * d }, () => rng.normal());
  const x = new Float32Array(rows * d);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < n; i++) {
      if (rng.uniform() < 0.06) {
        const a = rng.uniform() * 2;
        for (let j = 0; j < d; j++) x[r * d + j]! += a * feats[i * d + j]!;
      }
    }
  }
  const path = join(dir, 'acts.npy');
  await writeNpy(path, x, [rows, d]);
  return path;
}

const trainArgs = (data: string, out: string, steps: number, extra: string[] = []): string[] => [
  'train',
  '--data',
  data,
  '--out',
  out,
  '--d-sae',
  '64',
  '--batch-size',
  '256',
  '--steps',
  String(steps),
  '--lr',
  '3e-3',
  '--l1-coefficient',
  '0.5',
  '--log-every',
  '5',
  '--quiet',
  '--kernels',
  'reference',
  ...extra,
];

async function weights(dir: string): Promise<Buffer> {
  return readFile(join(dir, 'sae_weights.safetensors'));
}

describe('training', () => {
  it('is deterministic for a seed, and a run killed with SIGKILL resumes onto the same trajectory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sae-train-'));
    const data = await syntheticNpy(dir);
    const steps = 120;
    const a = await runSae(...trainArgs(data, join(dir, 'a'), steps, ['--checkpoint-every', '10']));
    expect(a.stderr).toBe('');
    expect(a.code).toBe(0);
    const b = await runSae(...trainArgs(data, join(dir, 'b'), steps, ['--checkpoint-every', '10']));
    expect(b.code).toBe(0);
    expect((await weights(join(dir, 'b'))).equals(await weights(join(dir, 'a')))).toBe(true);

    // the same run, killed -9 once its first checkpoint is on disk, then resumed
    const outC = join(dir, 'c');
    const { child, done } = startSae(trainArgs(data, outC, steps, ['--checkpoint-every', '10']));
    while (!existsSync(join(outC, 'checkpoint.safetensors'))) await new Promise((r) => setTimeout(r, 20));
    child.kill('SIGKILL');
    const killed = await done;
    expect(killed.signal).toBe('SIGKILL');
    const at = Number((await readSafetensors(join(outC, 'checkpoint.safetensors'))).metadata['step']);
    expect(at).toBeGreaterThan(0);
    expect(at).toBeLessThan(steps); // killed mid-run
    const again = await runSae(...trainArgs(data, outC, steps, ['--checkpoint-every', '10']));
    expect(again.code).toBe(2); // refuses to start afresh over a checkpoint
    expect(again.stderr).toMatch(/holds the checkpoint of an earlier run; pass --resume/);
    const resumed = await runSae(...trainArgs(data, outC, steps, ['--checkpoint-every', '10', '--resume']));
    expect(resumed.code).toBe(0);
    expect((await weights(outC)).equals(await weights(join(dir, 'a')))).toBe(true);
    // the log holds each logged step once
    const logged = (await readFile(join(outC, 'train_log.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { step: number }).step);
    expect(logged).toEqual(Array.from({ length: steps / 5 }, (_, i) => 5 * (i + 1)));
    // a different setting cannot resume that checkpoint
    const other = await runSae(...trainArgs(data, outC, steps + 10, ['--resume', '--lr', '1e-3']));
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/checkpoint\.safetensors: made with other settings/);
  });

  it('learns: explained variance rises and the metrics file says so', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sae-learn-'));
    const data = await syntheticNpy(dir);
    const r = await runSae(...trainArgs(data, join(dir, 'o'), 300, ['--unit-norm-decoder']));
    expect(r.code).toBe(0);
    const metrics = JSON.parse(await readFile(join(dir, 'o', 'metrics.json'), 'utf8')) as {
      held_out: { explained_variance: number; l0: number; dead_fraction: number };
    };
    expect(metrics.held_out.explained_variance).toBeGreaterThan(0.8);
    expect(metrics.held_out.l0).toBeGreaterThan(1);
    expect(metrics.held_out.l0).toBeLessThan(30);
    const w = await readSafetensors(join(dir, 'o', 'sae_weights.safetensors'));
    const wDec = toFloat32(w.tensors.get('W_dec')!, 'W_dec');
    for (let i = 0; i < 64; i++) {
      let s = 0;
      for (let j = 0; j < 16; j++) s += wDec[i * 16 + j]! ** 2;
      expect(Math.sqrt(s)).toBeCloseTo(1, 5);
    }
  });

  it('stops on a non-finite loss with a clear error and keeps the last good checkpoint', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sae-nan-'));
    const data = await syntheticNpy(dir);
    const out = join(dir, 'o');
    const r = await runSae(...trainArgs(data, out, 500, ['--lr', '1e6', '--checkpoint-every', '1']));
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^sae: step \d+: (the loss is not finite|parameter \w+ holds NaN or Inf)/);
    if (existsSync(join(out, 'checkpoint.safetensors'))) {
      const ck = await readSafetensors(join(out, 'checkpoint.safetensors'));
      for (const [name, t] of ck.tensors) if (t.dtype === 'F32') expect(toFloat32(t, name).every(Number.isFinite), name).toBe(true);
    }
    expect(existsSync(join(out, 'sae_weights.safetensors'))).toBe(false);
  });
});

describe('schedules and bookkeeping', () => {
  const s = { steps: 100, lr: 1, warmupSteps: 10, decaySteps: 20, decay: 'linear' as const, decayTo: 0, coefficient: 2, coefWarmupSteps: 5 };
  it('warms up and decays the learning rate', () => {
    expect(learningRate(s, 0)).toBeCloseTo(0.1);
    expect(learningRate(s, 9)).toBeCloseTo(1);
    expect(learningRate(s, 50)).toBe(1);
    expect(learningRate(s, 80)).toBeCloseTo(0.95);
    expect(learningRate(s, 99)).toBeCloseTo(0);
    expect(learningRate({ ...s, decay: 'cosine', decayTo: 0.1 }, 99)).toBeCloseTo(0.1);
  });
  it('warms up the sparsity coefficient', () => {
    expect(sparsityCoefficient(s, 0)).toBeCloseTo(0.4);
    expect(sparsityCoefficient(s, 4)).toBeCloseTo(2);
    expect(sparsityCoefficient(s, 60)).toBe(2);
  });
  it('counts a latent dead after a window of inputs without firing', () => {
    const t = new DeadTracker(3, 100);
    t.update(Float32Array.from([1, 0, 0]), 50);
    expect(Array.from(t.mask())).toEqual([0, 1, 1]);
    t.update(Float32Array.from([0, 1, 0]), 60);
    expect(Array.from(t.mask())).toEqual([0, 0, 1]);
    t.update(Float32Array.from([0, 0, 0]), 60);
    expect(Array.from(t.mask())).toEqual([1, 0, 1]);
    expect(t.deadFraction()).toBeCloseTo(2 / 3);
  });
  it('finds the geometric median, robust to an outlier', () => {
    const x = Float32Array.from([0, 0, 1, 0, 0, 1, 1, 1, 1000, 1000]);
    const m = geometricMedian(x, 5, 2);
    expect(m[0]).toBeGreaterThan(0.3);
    expect(m[0]).toBeLessThan(1.2);
    expect(m[1]).toBeLessThan(1.2);
  });
});

/**
 * `sae convert` and SAE loading by the other commands: a Gemma Scope npz, a SAELens folder with a
 * fold and a sparsify folder written in SAELens's layout compute what their home library computes
 * (fixtures of sae-formats.test.ts); bad input is one line and leaves nothing behind; `sae encode`
 * reads the Gemma Scope and sparsify layouts directly.
 */
import { mkdir, mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../src/engine/index.js';
import { loadSae } from '../src/io/saelens.js';
import { readNpy, writeNpy } from '../src/io/npy.js';
import { readSafetensors, toFloat32 } from '../src/io/safetensors.js';
import { runCli } from './helpers/cli.js';

const engine = new Engine({ threads: 1, kernels: 'reference' });
const ROOT = join(import.meta.dirname, 'fixtures', 'sae-formats');
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sae-convert-'));
});

async function reference(name: string): Promise<{ x: Float32Array; f: Float32Array; rows: number }> {
  const file = join(ROOT, name, 'reference.safetensors');
  const { tensors } = await readSafetensors(file);
  const x = tensors.get('x')!;
  return { x: toFloat32(x, file), f: toFloat32(tensors.get('f')!, file), rows: x.shape[0]! };
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('sae convert', () => {
  it.each([
    ['gemma-scope', 'params.npz', /folded: 7 negative thresholds set to 0/],
    ['saelens-v6-jumprelu-negative-threshold', 'sae', /folded: .*negative threshold/],
    ['saelens-v5-topk-finetuning-scale', 'sae', /folded: .*scaling_factor folded into W_dec/],
    ['sparsify-topk', 'layers.3', /folded: /],
  ])("%s: writes a SAELens folder that computes the home library's latents", async (name, load, folded) => {
    const out = join(dir, `${name}-out`);
    const r = await runCli('convert', join(ROOT, name, load), out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(folded);
    const ref = await reference(name);
    const sae = await loadSae(out);
    expect(maxDiff(await sae.encode(engine, ref.x), ref.f)).toBeLessThan(1e-4);
  });

  it("writes a topk SAE in sparsify's layout with --to sparsify, and refuses another architecture in one line", async () => {
    const out = join(dir, 'to-sparsify');
    const r = await runCli('convert', join(ROOT, 'sparsify-topk', 'layers.3'), out, '--to', 'sparsify');
    expect(r.code, r.stderr).toBe(0);
    expect((await readdir(out)).sort()).toEqual(['cfg.json', 'sae.safetensors']);
    const bad = join(dir, 'jumprelu-to-sparsify');
    const e = await runCli('convert', join(ROOT, 'gemma-scope', 'params.npz'), bad, '--to', 'sparsify');
    expect(e.code).toBe(2);
    expect(e.stderr.trim().split('\n')).toHaveLength(1);
    expect(e.stderr).toMatch(/jumprelu.*no sparsify form/);
  });

  it('bad input: one line naming the file, and nothing left behind', async () => {
    const parent = join(dir, 'bad');
    await mkdir(parent);
    for (const [input, pattern] of [
      [join(ROOT, 'bad', 'unknown-layout'), /unknown-layout: no SAE layout we know/],
      [join(ROOT, 'bad', 'npz-missing-threshold', 'params.npz'), /params\.npz: .*threshold/],
      [join(ROOT, 'bad', 'openai', 'ae.pt'), /ae\.pt: a PyTorch pickle/],
      [join(ROOT, 'sparsify-skip-multi-topk-bf16', 'layers.5.mlp'), /skip connection/],
    ] as const) {
      const r = await runCli('convert', input, join(parent, 'out'));
      expect(r.code, r.stdout).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(pattern);
      expect(await readdir(parent)).toEqual([]);
    }
    await writeFile(join(parent, 'taken'), 'x');
    const r = await runCli('convert', join(ROOT, 'gemma-scope', 'params.npz'), join(parent, 'taken'));
    expect(r.stderr).toMatch(/taken: exists and is not a folder/);
  });
});

describe('commands that load an SAE read every layout', () => {
  it.each([
    ['gemma-scope', 'params.npz'],
    ['sparsify-topk', 'layers.3'],
  ])('sae encode on %s', async (name, load) => {
    const ref = await reference(name);
    const data = join(dir, `${name}-x.npy`);
    await writeNpy(data, ref.x, [ref.rows, ref.x.length / ref.rows]);
    const out = join(dir, `${name}-f.npy`);
    const r = await runCli('encode', join(ROOT, name, load), '--data', data, '--out', out);
    expect(r.code, r.stderr).toBe(0);
    const { data: f } = await readNpy(out);
    expect(maxDiff(f, ref.f)).toBeLessThan(1e-4);
  });

  it('sae encode refuses a sparsify SAE with a skip connection, saying why', async () => {
    const r = await runCli(
      'encode',
      join(ROOT, 'sparsify-skip-multi-topk-bf16', 'layers.5.mlp'),
      '--data',
      join(dir, 'gemma-scope-x.npy'),
      '--out',
      join(dir, 'skip.npy'),
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/skip connection/);
  });
});

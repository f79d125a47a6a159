/**
 * The architecture table is the only place that knows architectures: every entry carries every
 * field under its own name, and a toy architecture added to the table (here, by mocking the table
 * module: one definition and one table line) trains, saves, loads, decodes and joins the recovery
 * benchmark with no edit anywhere else.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { architecture, ARCHITECTURES, TABLE } from '../src/arch/index.js';
import type { ArchitectureDef } from '../src/arch/types.js';
import { Engine } from '../src/engine/index.js';
import { writeNpy } from '../src/io/npy.js';
import { loadSae } from '../src/io/saelens.js';
import { Rng } from '../src/rng.js';
import { settingsFor } from '../src/synthetic/bench.js';
import { runCli } from './helpers/cli.js';

vi.mock('../src/arch/index.js', async (importOriginal) => {
  const m = await importOriginal<typeof import('../src/arch/index.js')>();
  // The toy: the ReLU SAE's formulas under a new name, with no reference vectors.
  const toy = { ...m.TABLE.standard, name: 'toy', formulas: 'standard, renamed', reference: undefined };
  Object.assign(m.TABLE, { toy });
  return { ...m, ARCHITECTURES: Object.keys(m.TABLE) };
});

type RequiredKeys<T> = { [K in keyof T]-?: object extends Pick<T, K> ? never : K }[keyof T];
/** Every required field of ArchitectureDef (the compiler fails here when one is added and not listed). */
const REQUIRED = {
  name: true,
  formulas: true,
  coefficient: true,
  hyper: true,
  options: true,
  unitNormDecoder: true,
  decoder: true,
  recovery: true,
  applyBDecToInput: true,
  params: true,
  encode: true,
  decode: true,
  step: true,
  toCfg: true,
  fromCfg: true,
} satisfies Record<RequiredKeys<ArchitectureDef<unknown>>, true>;

describe('the architecture table', () => {
  it('gives every entry every field, under its own name', () => {
    for (const [key, def] of Object.entries(TABLE)) {
      for (const field of Object.keys(REQUIRED)) expect(def, `${key}.${field}`).toHaveProperty(field);
      expect(def.name).toBe(key);
      const d = architecture(key);
      expect(['affine', 'sigmoid']).toContain(d.decoder(d.hyper.parse({})));
      if (d.reference) expect(d.reference.files.length).toBeGreaterThan(0);
    }
  });

  it('maps every reference file name to one architecture', () => {
    const files = Object.values(TABLE).flatMap((d) => d.reference?.files ?? []);
    expect(new Set(files).size).toBe(files.length);
    expect(files).toEqual(expect.arrayContaining(['standard', 'kl_identity', 'kl_sigmoid', 'topk', 'batchtopk', 'matryoshka', 'jumprelu', 'gated']));
  });

  it('takes a toy architecture added only to the table through training, saving, loading and the benchmark', async () => {
    expect(ARCHITECTURES).toContain('toy');
    const dir = await mkdtemp(join(tmpdir(), 'sae-toy-'));
    const rng = new Rng(3);
    const x = Float32Array.from({ length: 512 * 8 }, () => rng.normal());
    await writeNpy(join(dir, 'x.npy'), x, [512, 8]);
    const out = join(dir, 'toy');
    const r = await runCli(
      'train',
      '--data',
      join(dir, 'x.npy'),
      '--out',
      out,
      '--architecture',
      'toy',
      '--d-sae',
      '16',
      '--steps',
      '20',
      '--batch-size',
      '64',
      '--quiet',
      '--kernels',
      'reference',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const sae = await loadSae(out);
    expect(sae.architecture).toBe('toy');
    const engine = new Engine({ kernels: 'reference', warn: () => {} });
    try {
      const rows = x.subarray(0, 4 * 8);
      const dense = await sae.decode(engine, await sae.encode(engine, rows));
      const sparse = await sae.decodeSparse(engine, await sae.encodeTopK(engine, rows, 16));
      for (let i = 0; i < dense.length; i++) expect(sparse[i]).toBeCloseTo(dense[i]!, 4);
    } finally {
      await engine.release();
    }
    expect(settingsFor('toy' as 'standard', 10).knob).toEqual({ kind: 'coefficient' });
  });
});

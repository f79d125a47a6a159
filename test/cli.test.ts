/**
 * Bad input through the real command: one line naming the file and the problem, exit code 2, no
 * stack trace, and nothing written or replaced.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { writeNpy } from '../src/io/npy.js';
import { serializeSafetensors } from '../src/io/safetensors.js';
import { runCli } from './helpers/cli.js';
import { runSae } from './helpers/spawn.js';

let dir: string;
let good: string;
let sae: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sae-cli-'));
  good = join(dir, 'good.npy');
  await writeNpy(
    good,
    Float32Array.from({ length: 2000 * 8 }, (_, i) => Math.sin(i * 0.37)),
    [2000, 8],
  );
  sae = join(dir, 'sae');
  const r = await runCli('train', '--data', good, '--out', sae, '--d-sae', '16', '--steps', '20', '--batch-size', '128', '--quiet', '--kernels', 'reference');
  expect(r.code, r.stderr).toBe(0);
});

/** The native addon may not be built where the tests run: its one-time note is not part of the error. */
const withoutFallbackNote = (s: string): string => s.replace(/^sparse-autoencoder: the native addon is not built.*\n/m, '');

/** Runs the command in-process; checks the one-line error and returns it. */
async function fails(...argv: string[]): Promise<string> {
  const r = await runCli(...argv);
  expect(r.code, r.stdout).toBe(2);
  const lines = withoutFallbackNote(r.stderr).trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^sae: /);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  return lines[0]!;
}

const train = (data: string, out = join(dir, `out-${Math.random().toString(36).slice(2)}`), ...rest: string[]): string[] => [
  'train',
  '--data',
  data,
  '--out',
  out,
  '--steps',
  '2',
  '--batch-size',
  '64',
  '--quiet',
  '--kernels',
  'reference',
  ...rest,
];

describe('bad input', () => {
  it('missing file', async () => {
    expect(await fails(...train(join(dir, 'nope.npy')))).toBe(`sae: ${join(dir, 'nope.npy')}: no such file`);
  });

  it('truncated or corrupt .npy and .safetensors', async () => {
    const bytes = await readFile(good);
    const truncated = join(dir, 'truncated.npy');
    await writeFile(truncated, bytes.subarray(0, bytes.length - 100));
    expect(await fails(...train(truncated))).toMatch(/truncated\.npy: .*(short|expected|needs)/);
    const magic = join(dir, 'magic.npy');
    await writeFile(magic, Buffer.concat([Buffer.from('NOTNUMPY'), bytes.subarray(8)]));
    expect(await fails(...train(magic))).toMatch(/magic\.npy: .*magic/);
    const st = join(dir, 'long-header.safetensors');
    const header = Buffer.alloc(8);
    header.writeBigUInt64LE(99999n);
    await writeFile(st, Buffer.concat([header, Buffer.from('{}')]));
    expect(await fails(...train(st))).toMatch(/long-header\.safetensors: header length 99999 runs past the end of the file/);
    const dtype = join(dir, 'dtype.safetensors');
    await writeFile(
      dtype,
      Buffer.from(serializeSafetensors({ x: { dtype: 'F32', shape: [2, 2], data: new Float32Array(4) } }))
        .toString('latin1')
        .replace('"F32"', '"Q32"'),
      'latin1',
    );
    expect(await fails(...train(dtype))).toMatch(/dtype\.safetensors: .*Q32/);
    const short = join(dir, 'short.safetensors');
    const full = serializeSafetensors({ x: { dtype: 'F32', shape: [100, 8], data: new Float32Array(800) } });
    await writeFile(short, full.subarray(0, full.length - 40));
    expect(await fails(...train(short))).toMatch(/short\.safetensors: /);
  });

  it('width mismatch between data and SAE', async () => {
    const wide = join(dir, 'wide.npy');
    await writeNpy(wide, new Float32Array(10 * 12), [10, 12]);
    expect(await fails('eval', sae, '--data', wide)).toBe(`sae: ${wide}: rows have width 12, but the SAE in ${sae} takes d_in = 8`);
    expect(await fails('encode', sae, '--data', wide, '--out', join(dir, 'z.safetensors'))).toMatch(/takes d_in = 8/);
  });

  it('NaN/Inf rows: the count and what was done', async () => {
    const x = Float32Array.from({ length: 500 * 8 }, (_, i) => Math.cos(i));
    x[8 * 7 + 2] = Number.NaN;
    x[8 * 300] = Number.POSITIVE_INFINITY;
    const bad = join(dir, 'nan.npy');
    await writeNpy(bad, x, [500, 8]);
    const out = join(dir, 'nan-out');
    expect(await fails(...train(bad, out))).toBe(
      `sae: ${bad}: 2 of 500 rows contain NaN or Inf (first at row 7); nothing was trained. Use --nonfinite skip to drop them.`,
    );
    expect(existsSync(join(out, 'cfg.json'))).toBe(false);
    const skipped = await runCli(...train(bad, out, '--nonfinite', 'skip').filter((a) => a !== '--quiet'));
    expect(skipped.code).toBe(0);
    expect(skipped.stderr).toMatch(/nan\.npy: 2 rows contain NaN or Inf; they are skipped/);
  });

  it('empty dataset', async () => {
    const empty = join(dir, 'empty.npy');
    await writeNpy(empty, new Float32Array(0), [0, 8]);
    expect(await fails(...train(empty))).toBe(`sae: ${empty}: the dataset is empty`);
    const folder = join(dir, 'no-images');
    await mkdir(folder);
    expect(await fails(...train(folder))).toMatch(/no-images: is neither an activation store \(no manifest.json\) nor a folder of images/);
  });

  it('an output folder that cannot be written', async () => {
    const file = join(dir, 'a-file');
    await writeFile(file, 'x');
    expect(await fails(...train(good, join(file, 'out')))).toMatch(/a-file\/out: cannot create the folder/);
  });

  it('unknown architecture, option and value', async () => {
    expect(await fails(...train(good, undefined, '--architecture', 'mystery'))).toMatch(/--architecture: Invalid option: expected one of "standard"\|"kl"/);
    expect(await fails(...train(good, undefined, '--bogus', '1'))).toBe("sae: unknown option --bogus for 'sae train' (see sae train --help)");
    expect(await fails(...train(good, undefined, '--lr', 'fast'))).toBe("sae: --lr: expected a number, got 'fast'");
    expect(await fails(...train(good, undefined, '--beta', '3'))).toBe(
      "sae: --beta does not apply to architecture 'standard': its sparsity coefficient is --l1-coefficient",
    );
    expect(await fails(...train(good, undefined, '--rho', '0.1'))).toBe("sae: --rho does not apply to architecture 'standard'");
    expect(await fails('frobnicate')).toMatch(/unknown command 'frobnicate'/);
    expect(await fails('train', '--out', join(dir, 'x'))).toBe('sae: --data: is required');
  });

  it('a bad config file', async () => {
    const cfg = join(dir, 'cfg.json');
    await writeFile(cfg, '{"data": {"path": 3}');
    expect(await fails('train', '--config', cfg)).toMatch(/cfg\.json: not valid JSON/);
    await writeFile(cfg, JSON.stringify({ data: { path: good, batchSize: 0 }, logging: { out: join(dir, 'c') }, model: { extra: 1 } }));
    const m = await fails('train', '--config', cfg);
    expect(m).toMatch(/cfg\.json: data\.batchSize: Too small/);
    expect(m).toMatch(/cfg\.json: model: Unrecognized key: "extra"/);
  });

  it('a failed encode replaces no existing output file', async () => {
    const out = join(dir, 'latents.safetensors');
    await writeFile(out, 'precious');
    const x = Float32Array.from({ length: 40 * 8 }, () => 1);
    x[8 * 39] = Number.NaN;
    const bad = join(dir, 'enc-nan.npy');
    await writeNpy(bad, x, [40, 8]);
    expect(await fails('encode', sae, '--data', bad, '--out', out)).toMatch(/enc-nan\.npy: row 39 holds NaN or Inf/);
    expect(await readFile(out, 'utf8')).toBe('precious');
    expect((await readdir(dir)).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('the real process: exit code 2, one line, no stack trace', async () => {
    const r = await runSae('train', '--data', join(dir, 'nope.npy'), '--out', join(dir, 'o'));
    expect(r.code).toBe(2);
    expect(withoutFallbackNote(r.stderr)).toBe(`sae: ${join(dir, 'nope.npy')}: no such file\n`);
  });
});

describe('commands', () => {
  it('encode: dense and top-k forms agree', async () => {
    const dense = join(dir, 'dense.safetensors');
    const sparse = join(dir, 'sparse.safetensors');
    expect((await runCli('encode', sae, '--data', good, '--out', dense)).code).toBe(0);
    expect((await runCli('encode', sae, '--data', good, '--out', sparse, '--topk', '3')).code).toBe(0);
    const { readSafetensors, toFloat32 } = await import('../src/io/safetensors.js');
    const d = await readSafetensors(dense);
    const s = await readSafetensors(sparse);
    const lat = toFloat32(d.tensors.get('latents')!, dense);
    const idx = s.tensors.get('indices')!.data as Int32Array;
    const val = toFloat32(s.tensors.get('values')!, sparse);
    expect(d.tensors.get('latents')!.shape).toEqual([2000, 16]);
    for (let r = 0; r < 2000; r += 97) {
      const row = Array.from(lat.subarray(r * 16, r * 16 + 16)).sort((a, b) => b - a);
      expect(val[r * 3]).toBe(row[0]);
      expect(lat[r * 16 + idx[r * 3]!]).toBe(val[r * 3]);
    }
  });

  it('eval prints the table and writes JSON', async () => {
    const out = join(dir, 'eval.json');
    const r = await runCli('eval', sae, '--data', good, '--out', out);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/explained variance\s+\S+/);
    const m = JSON.parse(await readFile(out, 'utf8')) as { inputs: number; l0: number };
    expect(m.inputs).toBe(2000);
    expect(m.l0).toBeGreaterThan(0);
  });

  it('every command has --help', async () => {
    for (const c of ['train', 'encode', 'eval', 'filters', 'demo', 'conformance']) {
      const r = await runCli(c, '--help');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^usage: sae /);
    }
  });
});

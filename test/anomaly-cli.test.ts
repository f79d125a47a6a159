/**
 * sae calibrate and sae score on an SAE whose errors are known exactly: it reconstructs the first
 * three coordinates of 8 and drops the rest, so error(x) = sum_{j >= 3} x_j^2.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { saveSae } from '../src/io/saelens.js';
import { readNpy, writeNpy } from '../src/io/npy.js';
import { Rng } from '../src/rng.js';
import { Sae } from '../src/sae.js';
import { runCli } from './helpers/cli.js';

const D = 8;
const KEPT = 3;

/** [rows, 8]: the kept coordinates ~ N(0, 1), the others ~ N(0, tail^2). */
function rowsWithTail(rows: number, tail: number, rng: Rng): Float32Array {
  return Float32Array.from({ length: rows * D }, (_, k) => rng.normal() * (k % D < KEPT ? 1 : tail));
}

function errorOf(x: Float32Array, r: number): number {
  let e = 0;
  for (let j = KEPT; j < D; j++) e += x[r * D + j]! ** 2;
  return e;
}

/** Latents +e_j and -e_j for j < 3: f = relu(+-x_j), x_hat = projection on the first 3 coordinates. */
function projectionSae(): Sae {
  const dSae = 2 * KEPT;
  const wDec = new Float32Array(dSae * D); // [dSae, D]
  for (let j = 0; j < KEPT; j++) {
    wDec[2 * j * D + j] = 1;
    wDec[(2 * j + 1) * D + j] = -1;
  }
  const wEnc = new Float32Array(D * dSae); // [D, dSae] = W_dec^T
  for (let i = 0; i < dSae; i++) for (let j = 0; j < D; j++) wEnc[j * dSae + i] = wDec[i * D + j]!;
  return new Sae('standard', { dIn: D, dSae }, {}, { W_enc: wEnc, b_enc: new Float32Array(dSae), W_dec: wDec, b_dec: new Float32Array(D) });
}

let dir = '';
let clean: Float32Array;
let test: Float32Array;
const labels: number[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sae-anomaly-'));
  await saveSae(join(dir, 'sae'), projectionSae());
  const rng = new Rng(5);
  clean = rowsWithTail(2000, 0.1, rng);
  await writeNpy(join(dir, 'clean.npy'), clean, [2000, D]);
  // 300 normal rows, then 100 anomalies whose dropped coordinates are large
  test = new Float32Array(400 * D);
  test.set(rowsWithTail(300, 0.1, rng));
  test.set(rowsWithTail(100, 0.25, rng), 300 * D);
  for (let r = 0; r < 400; r++) labels.push(r < 300 ? 0 : 1);
  await writeNpy(join(dir, 'test.npy'), test, [400, D]);
  await writeFile(join(dir, 'labels.txt'), `${labels.join('\n')}\n`);
});

describe('sae calibrate', () => {
  it('takes the threshold from clean errors and reports detection on labelled inputs', async () => {
    const r = await runCli(
      'calibrate',
      join(dir, 'sae'),
      '--data',
      join(dir, 'clean.npy'),
      '--quantile',
      '0.95',
      '--test',
      join(dir, 'test.npy'),
      '--labels',
      join(dir, 'labels.txt'),
      '--report',
      join(dir, 'report'),
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/ROC-AUC\s+0\.9/);
    const cal = JSON.parse(await readFile(join(dir, 'sae', 'calibration.json'), 'utf8')) as Record<string, number> & { detection: Record<string, number> };
    const cleanErrors = Array.from({ length: 2000 }, (_, r) => errorOf(clean, r)).sort((a, b) => a - b);
    const pos = 0.95 * 1999;
    const expected = cleanErrors[Math.floor(pos)]! + (pos % 1) * (cleanErrors[Math.floor(pos) + 1]! - cleanErrors[Math.floor(pos)]!);
    expect(cal['threshold']).toBeCloseTo(expected, 4);
    expect(cal['rows']).toBe(2000);
    expect(cal.detection['rows']).toBe(400);
    expect(cal.detection['anomalies']).toBe(100);
    expect(cal.detection['roc_auc']).toBeGreaterThan(0.9);
    for (const f of ['index.html', 'errors.svg', 'roc.svg']) expect(existsSync(join(dir, 'report', f))).toBe(true);
  });

  it('with labels alone, calibrates on the rows labelled 0', async () => {
    const out = join(dir, 'in-sample.json');
    const r = await runCli('calibrate', join(dir, 'sae'), '--data', join(dir, 'test.npy'), '--labels', join(dir, 'labels.txt'), '--out', out);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/in-sample|not in-sample/);
    const cal = JSON.parse(await readFile(out, 'utf8')) as Record<string, number>;
    expect(cal['rows']).toBe(300);
  });

  it('refuses bad input with one line', async () => {
    const sae = join(dir, 'sae');
    const cases: [string[], RegExp][] = [
      [['--data', join(dir, 'clean.npy'), '--quantile', '1.5'], /--quantile must be in \(0, 1\)/],
      [['--data', join(dir, 'clean.npy'), '--test', join(dir, 'test.npy')], /--test needs --labels/],
      [['--data', join(dir, 'test.npy'), '--labels', join(dir, 'clean.npy')], /holds 16000 labels|labels must be one value per row/],
      [['--data', join(dir, 'clean.npy'), '--test', join(dir, 'test.npy'), '--labels', join(dir, 'missing.txt')], /missing\.txt: no such file/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli('calibrate', sae, ...args);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});

describe('sae score', () => {
  it("writes each input's error, normalised score and flag in order", async () => {
    const out = join(dir, 'scores.csv');
    const r = await runCli('score', join(dir, 'sae'), '--data', join(dir, 'test.npy'), '--out', out);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/flagged\s+\d+/);
    const cal = JSON.parse(await readFile(join(dir, 'sae', 'calibration.json'), 'utf8')) as Record<string, number>;
    const lines = (await readFile(out, 'utf8')).trim().split('\n');
    expect(lines[0]).toBe('row,error,score,flagged');
    expect(lines).toHaveLength(401);
    for (const r of [0, 150, 399]) {
      const [row, error, score, flagged] = lines[r + 1]!.split(',').map(Number);
      const e = errorOf(test, r);
      expect(row).toBe(r);
      expect(error! / e).toBeCloseTo(1, 4);
      expect(score).toBeCloseTo((Math.log(e) - cal['logErrorMedian']!) / cal['logErrorScale']!, 2);
      expect(flagged).toBe(e > cal['threshold']! ? 1 : 0);
    }
    const npy = join(dir, 'scores.npy');
    expect((await runCli('score', join(dir, 'sae'), '--data', join(dir, 'test.npy'), '--out', npy)).code).toBe(0);
    const table = await readNpy(npy);
    expect(table.shape).toEqual([400, 3]);
    expect(table.data[399 * 3]! / errorOf(test, 399)).toBeCloseTo(1, 4);
  });

  it("asks for a calibration when there is none, refuses another SAE's, and wants a known output type", async () => {
    const bare = join(dir, 'bare');
    await saveSae(bare, projectionSae());
    const r = await runCli('score', bare, '--data', join(dir, 'test.npy'), '--out', join(dir, 's.csv'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/calibration\.json: no such file: calibrate first/);
    const other = projectionSae();
    other.params['b_dec']![0] = 0.5;
    await saveSae(join(dir, 'other'), other);
    const o = await runCli(
      'score',
      join(dir, 'other'),
      '--data',
      join(dir, 'test.npy'),
      '--out',
      join(dir, 's.csv'),
      '--calibration',
      join(dir, 'sae', 'calibration.json'),
    );
    expect(o.code).toBe(2);
    expect(o.stderr).toMatch(/was made for another SAE than the one in .*other/);
    const t = await runCli('score', join(dir, 'sae'), '--data', join(dir, 'test.npy'), '--out', join(dir, 's.txt'));
    expect(t.code).toBe(2);
    expect(t.stderr).toMatch(/\.csv or \.npy/);
  });
});

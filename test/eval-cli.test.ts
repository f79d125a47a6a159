/** `sae eval` on the hand-made SAE of eval-metrics.test.ts: the table and the JSON it writes. */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { writeNpy } from '../src/io/npy.js';
import { saveSae } from '../src/io/saelens.js';
import { Sae } from '../src/sae.js';
import { runCli } from './helpers/cli.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sae-eval-'));
  const sae = new Sae(
    'standard',
    { dIn: 2, dSae: 4 },
    {},
    {
      W_enc: Float32Array.from([1, 0, -1, 0, 0, 1, 0, 0]),
      b_enc: Float32Array.from([0, 0, 0, -1]),
      W_dec: Float32Array.from([0.5, 0, 0, 1, -1, 1, 1, 1]),
      b_dec: Float32Array.from([0, 0]),
    },
  );
  await saveSae(join(dir, 'sae'), sae);
  await writeNpy(join(dir, 'x.npy'), Float32Array.from([1, 2, 3, 0, -2, 1]), [3, 2]);
});

describe('sae eval', () => {
  it('prints every metric and writes them with per-latent values and histograms', async () => {
    const out = join(dir, 'eval.json');
    const r = await runCli('eval', join(dir, 'sae'), '--data', join(dir, 'x.npy'), '--out', out);
    expect(r.code, r.stderr).toBe(0);
    for (const row of [
      'mse',
      'explained variance',
      'fvu',
      'explained variance (legacy)',
      'l0',
      'l1',
      'dead fraction',
      'dense fraction > 1%',
      'dense fraction > 10%',
      'l2 ratio',
      'relative reconstruction bias',
      'encoder-decoder cosine',
    ]) {
      expect(r.stdout).toMatch(new RegExp(`^${row.replace(/[()>%]/g, '\\$&')}\\s{2,}\\S`, 'm'));
    }
    expect(r.stdout).toMatch(/^relative reconstruction bias\s+1\.2188/m);
    const j = JSON.parse(await readFile(out, 'utf8')) as Record<string, unknown> & {
      per_latent: { log10_firing_rate: number[]; encoder_decoder_cosine: number[] };
      firing_rate_histogram: { dead: number; counts: number[] };
      l0_histogram: { counts: number[] };
      encoder_decoder_cosine: { median: number };
    };
    expect(j['inputs']).toBe(3);
    expect(j['l0']).toBeCloseTo(5 / 3, 6);
    expect(j['fvu']).toBeCloseTo(6.5 / (132 / 9), 6);
    expect(j['dead_fraction']).toBe(0.25);
    expect(j.per_latent.log10_firing_rate).toHaveLength(4);
    expect(j.per_latent.encoder_decoder_cosine[2]).toBeCloseTo(Math.SQRT1_2, 5);
    expect(j.encoder_decoder_cosine.median).toBeCloseTo((1 + Math.SQRT1_2) / 2, 5);
    expect(j.firing_rate_histogram.dead).toBe(1);
    expect(j.l0_histogram.counts).toEqual([0, 1, 2]);
  });
});

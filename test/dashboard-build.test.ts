/** The dashboard site for plain rows and for token data: its files, its numbers, its escaping. */
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDashboard } from '../src/dashboard/build.js';
import type { NeuronpediaBatch } from '../src/dashboard/neuronpedia.js';
import { tokenRows } from '../src/dashboard/tokens.js';
import { memoryDataset } from '../src/data/memory.js';
import { Engine } from '../src/engine/index.js';
import { Rng } from '../src/rng.js';
import { Sae } from '../src/sae.js';
import { HOSTILE, syntheticTokens } from './helpers/tokens.js';

const engine = new Engine({ kernels: 'reference', threads: 1 });
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dashboard-build-'));
});
afterAll(async () => {
  await engine.release();
  await rm(dir, { recursive: true, force: true });
});

/** A random standard SAE d_in 6 -> d_sae 10 whose last latent never fires (b_enc very negative). */
function randomSae(): Sae {
  const rng = new Rng(5);
  const n = (k: number): Float32Array => Float32Array.from({ length: k }, () => rng.normal());
  const bEnc = n(10).map((v) => v * 0.1);
  bEnc[9] = -1e6;
  return new Sae('standard', { dIn: 6, dSae: 10 }, {}, { W_enc: n(60), b_enc: bEnc, W_dec: n(60), b_dec: new Float32Array(6) });
}

async function readBatches(out: string): Promise<NeuronpediaBatch[]> {
  const files = (await readdir(join(out, 'neuronpedia'))).sort();
  return Promise.all(files.map(async (f) => JSON.parse(await readFile(join(out, 'neuronpedia', f), 'utf8')) as NeuronpediaBatch));
}

describe('dashboard of plain rows', () => {
  const rng = new Rng(9);
  const x = Float32Array.from({ length: 700 * 6 }, () => rng.normal()); // [700, 6]
  x[123 * 6] = NaN; // left out, not shown

  it('writes the overview, a page per live feature and the Neuronpedia export, with the true activations', async () => {
    const out = join(dir, 'rows');
    const sae = randomSae();
    const r = await buildDashboard(
      engine,
      sae,
      memoryDataset('rows.npy', x, 6),
      { kind: 'rows' },
      { out, title: 'random', batchSize: 128, topK: 5, showTop: 5 },
    );
    expect(r.skippedRows).toBe(1);
    expect(r.metrics.inputs).toBe(699);
    expect(r.metrics.dead_fraction).toBe(0.1);
    expect(r.pages).toBe(9);
    const index = await readFile(join(out, 'index.html'), 'utf8');
    expect(index).toContain('id="firing-histogram"');
    expect(index).toContain('id="l0-histogram"');
    expect(index).toMatch(/href="features\/0\.html"/);
    expect(index).not.toMatch(/href="features\/9\.html"/);
    expect(existsSync(join(out, 'features', '9.html'))).toBe(false);
    expect((await readdir(join(out, 'features'))).length).toBe(9);

    const f = await sae.encode(engine, x); // [700, 10]
    const [batch] = await readBatches(out);
    expect(batch!.sae_set).toBe('random');
    expect(batch!.features.map((ft) => ft.feature_index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    for (const ft of batch!.features) {
      const i = ft.feature_index;
      const column = Array.from({ length: 700 }, (_, row) => ({ row, v: f[row * 10 + i]! })).filter((e) => e.row !== 123 && e.v > 0);
      column.sort((a, b) => b.v - a.v || a.row - b.row);
      const top = ft.activations.filter((a) => a.bin_min === -1);
      expect(top.map((a) => a.tokens[0])).toEqual(column.slice(0, 5).map((e) => `row ${e.row}`));
      expect(top[0]!.values[0]).toBe(Number(column[0]!.v.toPrecision(4))); // rounded to 4 digits in the export
      expect(ft.frac_nonzero).toBeCloseTo(column.length / 699, 10);
      expect(ft.freq_hist_data_bar_heights.reduce((a, b) => a + b, 0)).toBe(column.length);
      expect(ft.neuron_alignment_indices).toHaveLength(3);
      const page = await readFile(join(out, 'features', `${i}.html`), 'utf8');
      expect(page).toContain('id="activation-histogram"');
      expect(page).toContain(`row ${column[0]!.row}`);
    }
  });
});

describe('dashboard of token data', () => {
  it('shows contexts shaded by activation, and never lets a token be markup', async () => {
    const out = join(dir, 'tokens');
    const { tokens, documents, x, sae } = syntheticTokens();
    const r = await buildDashboard(
      engine,
      sae,
      memoryDataset('tokens', x, 3),
      { kind: 'tokens', tokens: tokenRows(tokens, documents), context: { before: 3, after: 1 } },
      { out },
    );
    expect(r.pages).toBe(3);
    const files = ['index.html', ...(await readdir(join(out, 'features'))).map((f) => join('features', f))];
    for (const f of files) {
      const html = await readFile(join(out, f), 'utf8');
      expect(html, f).not.toContain('<img src=x');
      expect(html, f).not.toContain('onerror=alert(1)>');
    }
    // latent 2 fires on the hostile token only: its page shows it, escaped, outlined and fully shaded
    const page = await readFile(join(out, 'features', '2.html'), 'utf8');
    expect(page).toContain('<span class="tok hl" style="background:rgba(255,140,0,1.000)" title="1.90"><bdi>&lt;img src=x onerror=alert(1)&gt;</bdi></span>');
    expect(await readFile(join(out, 'index.html'), 'utf8')).toContain('&lt;img src=x onerror=alert(1)&gt;');
    const [batch] = await readBatches(out);
    const top = batch!.features.find((ft) => ft.feature_index === 2)!.activations[0]!;
    expect(top.tokens).toEqual(['A', ' cat', ' & ', HOSTILE]);
    expect(top.values).toEqual([0, 0, 0, 1.9]);
  });
});

/** `sae dashboard` through the command line: a token site, and bad input as one-line errors. */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeNpy } from '../src/io/npy.js';
import { saveSae } from '../src/io/saelens.js';
import { StoreWriter } from '../src/store/writer.js';
import { runCli } from './helpers/cli.js';
import { syntheticTokens } from './helpers/tokens.js';

let dir: string;
let sae: string;
let data: string;
let tokens: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dashboard-cli-'));
  const t = syntheticTokens();
  sae = join(dir, 'sae');
  await saveSae(sae, t.sae);
  data = join(dir, 'acts.npy');
  await writeNpy(data, t.x, [t.tokens.length, 3]);
  tokens = join(dir, 'tokens.json');
  await writeFile(tokens, JSON.stringify({ tokens: t.tokens, documents: t.documents }));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** Runs the command in-process; checks for one line on stderr and exit code 2, and returns the line. */
async function fails(...argv: string[]): Promise<string> {
  const r = await runCli(...argv);
  expect(r.code, r.stdout).toBe(2);
  const lines = r.stderr
    .replace(/^sparse-autoencoder: the native addon is not built.*\n/m, '')
    .trim()
    .split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  return lines[0]!;
}

describe('sae dashboard', () => {
  it('writes a token site and prints the metrics and where to open it', async () => {
    const out = join(dir, 'site');
    const r = await runCli('dashboard', sae, '--data', data, '--tokens', tokens, '--out', out, '--context-before', '2', '--model-id', 'toy', '--layer', '3');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^explained variance\s+1\.0000$/m);
    expect(r.stdout).toContain(`wrote 3 feature pages; open file://${out}/index.html`);
    expect(existsSync(join(out, 'features', '2.html'))).toBe(true);
    const batch = JSON.parse(await readFile(join(out, 'neuronpedia', 'batch-0.json'), 'utf8')) as { model_id: string; layer: number; sae_set: string };
    expect(batch).toMatchObject({ model_id: 'toy', layer: 3, sae_set: 'sae' });
  });

  it('takes the tokens of an activation store from the store itself', async () => {
    const t = syntheticTokens();
    const vocab = [...new Set(t.tokens)];
    const store = join(dir, 'store');
    const w = await StoreWriter.open(store, {
      model: 'toy',
      hookName: 'blocks.0.hook_resid_post',
      hookTensor: 'h',
      dIn: 3,
      contextSize: 8,
      dtype: 'float32',
      source: {},
      vocab,
    });
    for (const doc of [0, 1]) {
      const rows = t.documents.flatMap((d, r) => (d === doc ? [r] : []));
      await w.append({
        context: doc,
        doc,
        x: t.x.slice(rows[0]! * 3, (rows[rows.length - 1]! + 1) * 3),
        pos: Int32Array.from(rows, (_, j) => j),
        token: Int32Array.from(rows, (r) => vocab.indexOf(t.tokens[r]!)),
      });
    }
    await w.finish();
    const out = join(dir, 'store-site');
    const r = await runCli('dashboard', sae, '--data', store, '--out', out);
    expect(r.code, r.stderr).toBe(0);
    const page = await readFile(join(out, 'features', '2.html'), 'utf8');
    expect(page).toContain(
      '<span class="tok" title="0.00"><bdi> &amp; </bdi></span><span class="tok hl" style="background:rgba(255,140,0,1.000)" title="1.90"><bdi>&lt;img src=x onerror=alert(1)&gt;</bdi></span>',
    );
  });

  it('refuses bad input with one line', async () => {
    const out = join(dir, 'bad');
    expect(await fails('dashboard', sae, '--data', data)).toBe(
      'sae: --out is required: the folder to write the site into (index.html, features/, neuronpedia/)',
    );
    const short = join(dir, 'short.json');
    await writeFile(short, JSON.stringify({ tokens: ['a', 'b'] }));
    expect(await fails('dashboard', sae, '--data', data, '--tokens', short, '--out', out)).toBe(
      `sae: ${short}: 2 tokens for 10 rows of data: give one token per row`,
    );
    const split = join(dir, 'split.json');
    await writeFile(split, JSON.stringify({ tokens: Array.from({ length: 10 }, () => 't'), documents: [0, 0, 1, 1, 0, 2, 2, 2, 2, 2] }));
    expect(await fails('dashboard', sae, '--data', data, '--tokens', split, '--out', out)).toBe(
      `sae: ${split}: document 0 is split (row 4): a document's rows must be contiguous`,
    );
    const numbers = join(dir, 'numbers.json');
    await writeFile(numbers, JSON.stringify({ tokens: [1, 2] }));
    expect(await fails('dashboard', sae, '--data', data, '--tokens', numbers, '--out', out)).toMatch(/"tokens" must be an array of strings/);
    expect(await fails('dashboard', sae, '--data', data, '--out', out, '--top-k', '0')).toBe('sae: --top-k must be a positive integer');
  });

  it('has --help', async () => {
    const r = await runCli('dashboard', '--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^usage: sae dashboard SAE_DIR \(--data FILE \| --demo-images\) --out DIR/);
  });
});

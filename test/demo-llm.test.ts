/**
 * sae demo --llm end to end on the tiny llama GGUF fixture (--model instead of TinyLlama from npm,
 * block 1 of its 2): the store, the SAE, splice metrics with KL, the dashboard with logit effects and
 * features.txt with top contexts and logit effects. The real run on TinyLlama is measured, not tested.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';

const GGUF = join(import.meta.dirname, 'fixtures', 'lm', 'llama-gguf', 'model.gguf');
let dir = '';
beforeAll(async () => void (dir = await mkdtemp(join(tmpdir(), 'sae-demo-llm-'))));
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe('sae demo --llm', () => {
  it('harvests, trains, splices (loss recovered, KL) and writes the dashboard and features.txt', async () => {
    const out = join(dir, 'demo');
    const r = await runCli(
      'demo',
      '--llm',
      '--model',
      GGUF,
      '--layer',
      '1',
      '--out',
      out,
      '--tokens',
      '1500',
      '--steps',
      '20',
      '--d-sae',
      '128',
      '--k',
      '8',
      '--splice-contexts',
      '2',
      '--quiet',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /spliced at blocks\.1\.hook_resid_post on \d+ held-out tokens: CE clean [\d.]+, spliced [\d.]+, zero-ablated [\d.]+; loss recovered -?[\d.]+, KL [\d.]+ nats/,
    );
    const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as Record<string, unknown>;
    expect(results).toMatchObject({ hook: 'blocks.1.hook_resid_post', architecture: 'topk', d_in: 64, d_sae: 128, harvest_tokens: 1500, splice_contexts: 2 });
    expect(results['kl_spliced']).toBeGreaterThanOrEqual(0);
    expect(existsSync(join(out, 'dashboard', 'index.html'))).toBe(true);
    const features = await readFile(join(out, 'features.txt'), 'utf8');
    expect(features).toMatch(/^feature \d+ \(top tokens agree \d+%\)\n {2}raises: .+\n {2}lowers: .+\n {2}[\d.]+ {2}.*\[\[.*\]\]/);
  });

  it('refuses a model that is not a transformer, and sae fetch an unknown name', async () => {
    const r = await runCli('demo', '--llm', '--model', 'use-lite', '--out', join(dir, 'x'), '--quiet');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('sae: use-lite: sae demo --llm takes a .gguf file or a Hugging Face folder\n');
    const f = await runCli('fetch', 'gpt5');
    expect(f.code).toBe(2);
    expect(f.stderr).toBe("sae: unknown model 'gpt5': choose one of tinyllama\n");
  });
});

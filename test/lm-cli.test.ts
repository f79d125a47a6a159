import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../src/store/dataset.js';
import { runCli } from './helpers/cli.js';
import { startSae } from './helpers/spawn.js';
import { writeTinyGpt2 } from './helpers/tiny-gpt2.js';

let dir = '';
let model = '';
let text = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sae-lm-cli-'));
  model = join(dir, 'tiny');
  await writeTinyGpt2(model);
  text = join(dir, 'text.jsonl');
  const lines = Array.from({ length: 40 }, (_, i) =>
    JSON.stringify({ text: `Call me Ishmael, number ${i}. Some years ago the whale ${i % 7} swam in the sea.` }),
  );
  await writeFile(text, `${lines.join('\n')}\n`);
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

const harvestArgs = (out: string): string[] => [
  'harvest',
  '--model',
  model,
  '--hook',
  'blocks.0.hook_resid_post',
  '--text',
  text,
  '--out',
  out,
  '--context-size',
  '16',
  '--batch-size',
  '1',
  '--rows-per-shard',
  '40',
  '--quiet',
];

async function allRows(store: string): Promise<{ x: number[]; ctx: number[]; pos: number[] }> {
  const ds = await openStore(store);
  const x = new Float32Array(ds.rows * ds.dIn);
  await ds.read(0, ds.rows, x);
  const info = await ds.rowInfo(0, ds.rows);
  await ds.close();
  return { x: Array.from(x), ctx: Array.from(info.ctx), pos: Array.from(info.pos) };
}

describe('sae harvest, train, eval --model, steer', () => {
  it('harvests, trains on the store, reports splice metrics and steers', async () => {
    const store = join(dir, 'store');
    const h = await runCli(...harvestArgs(store));
    expect(h.stderr).toBe('');
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(/stored \d+ tokens of blocks.0.hook_resid_post \(d_in 16/);
    const sae = join(dir, 'sae');
    const t = await runCli('train', '--data', store, '--out', sae, '--steps', '20', '--batch-size', '64', '--expansion-factor', '2', '--quiet');
    expect(t.code).toBe(0);
    const cfg = JSON.parse(await readFile(join(sae, 'cfg.json'), 'utf8')) as { metadata: Record<string, unknown> };
    expect(cfg.metadata['hook_name']).toBe('blocks.0.hook_resid_post');
    expect(cfg.metadata['model_name']).toBe('tiny');
    expect(cfg.metadata['context_size']).toBe(16);
    expect(cfg.metadata['prepend_bos']).toBe(true);
    const e = await runCli('eval', sae, '--model', model, '--text', text, '--max-contexts', '8', '--out', join(dir, 'splice.json'));
    expect(e.code).toBe(0);
    expect(e.stdout).toMatch(/loss recovered/);
    const m = JSON.parse(await readFile(join(dir, 'splice.json'), 'utf8')) as Record<string, number>;
    expect(m['ce_clean']).toBeGreaterThan(0);
    const kept = await runCli('eval', sae, '--model', model, '--text', text, '--max-contexts', '4', '--keep-error', '--out', join(dir, 'kept.json'));
    expect(kept.code).toBe(0);
    const k = JSON.parse(await readFile(join(dir, 'kept.json'), 'utf8')) as Record<string, number>;
    expect(k['ce_spliced']).toBeCloseTo(k['ce_clean']!, 4);
    const s = await runCli('steer', sae, '--model', model, '--feature', '3', '--alpha', '30', '--prompt', 'Call me | The whale', '--tokens', '4');
    expect(s.code).toBe(0);
    expect(s.stdout.match(/^steered: /gm)?.length).toBe(2);

    const dash = join(dir, 'dash');
    const d = await runCli('dashboard', sae, '--data', store, '--out', dash, '--model', model);
    expect(d.code).toBe(0);
    const feature = readdirSync(join(dash, 'features'))[0]!;
    const html = await readFile(join(dash, 'features', feature), 'utf8');
    expect(html).toMatch(/<h2>Logit effects<\/h2>/);
    expect(html.match(/<td class="v">[+-]\d/g)?.length).toBe(20);
    const np = JSON.parse(await readFile(join(dash, 'neuronpedia', 'batch-0.json'), 'utf8')) as {
      features: { pos_str: string[]; pos_values: number[]; neg_values: number[] }[];
    };
    expect(np.features[0]!.pos_str).toHaveLength(10);
    expect(np.features[0]!.pos_values[0]).toBeGreaterThanOrEqual(np.features[0]!.pos_values[9]!);
    expect(np.features[0]!.neg_values[0]).toBeLessThanOrEqual(np.features[0]!.neg_values[9]!);
    const unnamed = await runCli('dashboard', sae, '--data', store, '--out', join(dir, 'dash2'));
    expect(unnamed.code).toBe(0);
    expect(await readFile(join(dir, 'dash2', 'features', feature), 'utf8')).toMatch(
      /None shown: no path to the model &#39;tiny&#39; is recorded; pass --model PATH/,
    );
  });

  it('resumes a harvest killed with SIGKILL: the same rows as an uninterrupted one', async () => {
    const whole = join(dir, 'whole');
    expect((await runCli(...harvestArgs(whole))).code).toBe(0);
    const killed = join(dir, 'killed');
    const { child, done } = startSae(harvestArgs(killed));
    for (let i = 0; i < 600; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const manifest = join(killed, 'manifest.json');
      if (existsSync(manifest) && (JSON.parse(await readFile(manifest, 'utf8')) as { shards: unknown[] }).shards.length >= 1) break;
    }
    child.kill('SIGKILL');
    const end = await done;
    const partial = (await openStore(killed)).manifest;
    expect(end.signal === 'SIGKILL' || partial.complete).toBe(true);
    const resumed = await runCli(...harvestArgs(killed), '--resume');
    expect(resumed.code).toBe(0);
    expect(await allRows(killed)).toEqual(await allRows(whole));
  }, 60_000);

  it('refuses bad input with one line', async () => {
    const r = await runCli('harvest', '--model', join(dir, 'nothing'), '--out', join(dir, 'x'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^sae: .*no such model file or folder[^\n]*\n$/);
    const again = await runCli(...harvestArgs(join(dir, 'store')));
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already holds an activation store/);
    const hook = await runCli('harvest', '--model', model, '--hook', 'blocks.9.hook_resid_post', '--text', text, '--out', join(dir, 'y'));
    expect(hook.code).toBe(2);
    expect(hook.stderr).toMatch(/not found in this ONNX graph/);
  });
});

import { existsSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { runDefectDemo } from '../src/anomaly/defect-demo.js';
import { Engine } from '../src/engine/index.js';
import { runCli } from './helpers/cli.js';

describe('the defect demo', () => {
  it('reports the three metrics for the SAE and both baselines and leaves what sae inspect needs', async () => {
    const out = await mkdtemp(join(tmpdir(), 'defect-demo-'));
    const engine = new Engine({ threads: 2 });
    try {
      const r = await runDefectDemo(engine, { out, steps: 40, seed: 1, stride: 4, quiet: true }, new PassThrough());
      expect(r.figures.map((f) => f.model)).toEqual(['SAE', `PCA (k = ${Math.min(192, Math.max(1, Math.round(r.sae.l0)))})`, 'dense AE']);
      for (const f of r.figures) for (const v of [f.imageAuroc, f.pixelAuroc, f.auPro30]) expect(v >= 0 && v <= 1).toBe(true);
      expect(r.testImages).toBe(24);
      expect(r.defective).toBe(12);
      const page = await readFile(r.files.report, 'utf8');
      expect(page).toContain('SYNTHETIC');
      expect(page).toContain('overlays/best_');
      for (const f of [
        r.files.overlay,
        join(r.files.sae, 'preprocess.safetensors'),
        join(r.files.sae, 'map-calibration.json'),
        join(r.files.dense, 'map-calibration.json'),
        join(out, 'results.json'),
      ])
        expect(existsSync(f)).toBe(true);
    } finally {
      await engine.release();
    }
    const cli = await runCli('inspect', join(out, 'sae'), join(out, 'data', 'test'), '--out', join(out, 'inspect'), '--threads', '2');
    expect(cli.stderr).toBe('');
    expect(cli.code).toBe(0);
    expect((await readFile(join(out, 'inspect', 'inspect.jsonl'), 'utf8')).trim().split('\n')).toHaveLength(24);
  }, 180_000);

  it('refuses options that do not go with --defects', async () => {
    const r = await runCli('anomaly-demo', '--defects', '--anomalies', 'fashion');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('--anomalies do not apply with --defects');
    const s = await runCli('anomaly-demo', '--stride', '2');
    expect(s.code).not.toBe(0);
    expect(s.stderr).toContain('--stride applies only with --defects');
  });
});

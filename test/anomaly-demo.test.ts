import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { fashionMnist, parseIdx } from '../src/anomaly/demo-data.js';
import { UserError } from '../src/errors.js';
import { runCli } from './helpers/cli.js';

/** An IDX file of unsigned bytes: magic 0 0 8 dims, sizes (u32 BE), data. */
function idx(shape: number[], data: Uint8Array): Uint8Array {
  const head = new Uint8Array(4 + 4 * shape.length);
  const view = new DataView(head.buffer);
  head.set([0, 0, 8, shape.length]);
  shape.forEach((n, i) => view.setUint32(4 + 4 * i, n));
  const out = new Uint8Array(head.length + data.length);
  out.set(head);
  out.set(data, head.length);
  return out;
}

describe('demo data', () => {
  it('reads IDX files and refuses broken ones with one line', async () => {
    const img = Uint8Array.from({ length: 2 * 28 * 28 }, (_, k) => k % 256);
    expect(parseIdx(idx([2, 28, 28], img), 'f').shape).toEqual([2, 28, 28]);
    expect(() => parseIdx(idx([2, 28, 28], img.subarray(1)), 'f')).toThrow(/needs 1584 bytes/);
    expect(() => parseIdx(new Uint8Array([0, 0, 9, 1]), 'f')).toThrow(UserError);

    const dir = await mkdtemp(join(tmpdir(), 'sae-fashion-'));
    await writeFile(join(dir, 't10k-images-idx3-ubyte.gz'), gzipSync(idx([2, 28, 28], img)));
    await writeFile(join(dir, 't10k-labels-idx1-ubyte.gz'), gzipSync(idx([2], Uint8Array.from([7, 3]))));
    const f = await fashionMnist('test', dir);
    expect(f.rows).toBe(2);
    expect(Array.from(f.classes)).toEqual([7, 3]);
    expect(f.x[255]).toBeCloseTo(1, 6);
    await expect(fashionMnist('train', dir)).rejects.toThrow(/apt-get install dataset-fashion-mnist/);
  });
});

describe('sae anomaly-demo', () => {
  it('trains, calibrates and reports on a left-out digit', async () => {
    const out = join(await mkdtemp(join(tmpdir(), 'sae-anomaly-demo-')), 'demo');
    await mkdir(out);
    const r = await runCli('anomaly-demo', '--anomalies', 'digit:1', '--steps', '15', '--out', out, '--quiet');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/ROC-AUC\s+0\.\d{4}/);
    expect(r.stdout).toMatch(/precision\s+[\d.]+/);
    for (const f of ['index.html', 'errors.svg', 'roc.svg', 'top_anomalies.png', 'sae/cfg.json', 'sae/calibration.json', 'data/test_labels.npy']) {
      expect(existsSync(join(out, f))).toBe(true);
    }
    // the mnist package's 10,000 digits less the 1s, 15% of them calibrate
    const cal = JSON.parse(await readFile(join(out, 'sae', 'calibration.json'), 'utf8')) as { rows: number };
    expect(cal.rows).toBeGreaterThan(1200);
    expect(cal.rows).toBeLessThan(1400);
    const bad = await runCli('anomaly-demo', '--anomalies', 'digit:12', '--out', out);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--anomalies: expected fashion or digit:K/);
  });
});

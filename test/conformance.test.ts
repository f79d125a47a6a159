import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CONFORMANCE_TOLERANCE, formatConformance, runConformance } from '../src/conformance.js';
import { Engine } from '../src/engine/index.js';
import { loadNativeBinding } from '../src/engine/native.js';
import { runCli } from './helpers/cli.js';

const FIXTURES = fileURLToPath(new URL('./fixtures/reference', import.meta.url));

/** Why the native kernels cannot run here, or undefined when they can. */
const nativeMissing = ((): string | undefined => {
  const b = loadNativeBinding();
  return b instanceof Error ? `native kernels not built (${b.message}): run npm run build:native` : undefined;
})();

describe.each([
  { kernels: 'reference', missing: undefined },
  { kernels: 'native', missing: nativeMissing },
] as const)('conformance with $kernels kernels', ({ kernels, missing }) => {
  // A missing addon shows as a skipped test (with its reason in the name), never as a pass.
  it.skipIf(missing !== undefined)(
    `matches the float64 PyTorch reference vectors of every implemented architecture${missing ? ` (SKIPPED: ${missing})` : ''}`,
    async () => {
      const engine = new Engine({ threads: 2, kernels });
      const report = await runConformance(engine, FIXTURES);
      const files = new Set(report.rows.map((r) => r.file));
      for (const f of [
        'standard.json',
        'kl_identity.json',
        'kl_sigmoid.json',
        'topk.json',
        'batchtopk.json',
        'jumprelu.json',
        'gated.json',
        'matryoshka.json',
        'adam.json',
      ])
        expect(files).toContain(f);
      expect(report.skipped).toEqual([]);
      // every tensor of the reference is compared, none is missing
      expect(report.rows.filter((r) => Number.isNaN(r.error))).toEqual([]);
      for (const r of report.rows) expect(r.error, `${r.file} ${r.tensor}`).toBeLessThanOrEqual(CONFORMANCE_TOLERANCE);
      expect(report.ok).toBe(true);
      expect(formatConformance(report)).toMatch(/0 over 0.0001/);
      await engine.release();
    },
  );
});

describe('conformance runner', () => {
  it('fails when a reference value is off, and skips architectures it does not know', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sae-conf-'));
    const ref = JSON.parse(await readFile(join(FIXTURES, 'standard.json'), 'utf8')) as { grads: { b_enc: number[] } };
    ref.grads.b_enc[3]! += 1e-2;
    await writeFile(join(dir, 'standard.json'), JSON.stringify(ref));
    await writeFile(join(dir, 'future.json'), JSON.stringify({ architecture: 'hyperbolic', inputs: {} }));
    const engine = new Engine({ threads: 1, kernels: 'reference' });
    const report = await runConformance(engine, dir);
    expect(report.ok).toBe(false);
    expect(report.rows.find((r) => r.tensor === 'grad.b_enc')!.error).toBeGreaterThan(CONFORMANCE_TOLERANCE);
    expect(report.rows.find((r) => r.tensor === 'grad.W_enc')!.error).toBeLessThan(CONFORMANCE_TOLERANCE);
    expect(report.skipped).toEqual([{ file: 'future.json', reason: "architecture 'hyperbolic' is not implemented" }]);
    const run = await runCli('conformance', dir, '--kernels', 'reference');
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/grad\.b_enc .* FAIL/);
  });
});

import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseMagnitude } from '../src/cli/commands/bench-recovery.js';
import { type ArchResult, correctedValue, nextKnobValue, settingsFor } from '../src/synthetic/bench.js';
import { PEERS } from '../src/synthetic/peers.js';
import { runCli } from './helpers/cli.js';

describe('matched sparsity search', () => {
  it('steps 4x until the target is bracketed, then interpolates in log-log inside the bracket', () => {
    // a coefficient: L0 falls as it grows
    expect(nextKnobValue([{ value: 5, l0: 1 }], 4, false)).toBe(1.25);
    expect(nextKnobValue([{ value: 5, l0: 9 }], 4, false)).toBe(20);
    // L0 = 16 / c: the target 4 is at c = 4, which log-log interpolation finds exactly
    expect(
      nextKnobValue(
        [
          { value: 1, l0: 16 },
          { value: 8, l0: 2 },
        ],
        4,
        false,
      ),
    ).toBeCloseTo(4, 10);
    // a rate: L0 grows with it, and the step stays below its maximum
    expect(nextKnobValue([{ value: 0.2, l0: 1 }], 4, true, 0.5)).toBeCloseTo(0.35, 10);
  });

  it('corrects a full run by the secant of the last two, within 4x', () => {
    // full runs on L0 = 16 / c: from c = 2 (L0 8) and c = 3 (L0 5.33) the secant lands on c = 4
    expect(
      correctedValue(
        [
          { value: 2, l0: 8 },
          { value: 3, l0: 16 / 3 },
        ],
        4,
        false,
      ),
    ).toBeCloseTo(4, 10);
    // after one run, L0 ~ 1 / c: from c = 1 at L0 8 to c = 2
    expect(correctedValue([{ value: 1, l0: 8 }], 4, false)).toBeCloseTo(2, 10);
    expect(correctedValue([{ value: 1, l0: 1000 }], 4, false)).toBe(4); // at most 4x in one step
  });

  it('sets k directly for architectures that take one, and searches the others', () => {
    expect(settingsFor('topk', 10).knob).toEqual({ kind: 'l0', key: 'k' });
    expect(settingsFor('standard', 10).knob.kind).toBe('coefficient');
    expect(settingsFor('kl', 10).knob).toMatchObject({ kind: 'rate', key: 'rho' });
  });

  it('trains jumprelu with its TopK warm-up at the target L0, unless hyper-parameters given say otherwise', () => {
    expect(settingsFor('jumprelu', 10.24).hyper).toEqual({ topkWarmup: 0.5, warmupK: 10 });
    expect(settingsFor('jumprelu', 10.24, { topkWarmup: 0 }).hyper).toMatchObject({ topkWarmup: 0 });
    expect(settingsFor('topk', 10.24).hyper).toEqual({});
  });
});

const hasTorch = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;

describe('sae bench-recovery', () => {
  it.skipIf(!hasTorch)(
    '--peers prints the reference recipes beside ours, scored on the same held-out rows',
    async () => {
      const r = await runCli(
        'bench-recovery',
        '--d-in',
        '8',
        '--features',
        '12',
        '--firing-probability',
        '0.1',
        '--d-sae',
        '24',
        '--batch-size',
        '64',
        '--steps',
        '30',
        '--search-steps',
        '10',
        '--max-probes',
        '2',
        '--eval-rows',
        '256',
        '--architectures',
        'topk',
        '--peers',
        '--quiet',
      );
      expect(r.code, r.stderr).toBe(0);
      for (const peer of PEERS) expect(r.stdout).toMatch(new RegExp(`^${peer}\\s+\\S+\\s+[\\d.e+-]+\\s+0\\.\\d{4}\\s`, 'm'));
    },
    120_000,
  );

  it('recovers the features of an easy case and matches the L0 of a searched architecture', async () => {
    const out = join(await mkdtemp(join(tmpdir(), 'sae-recovery-')), 'recovery.json');
    const r = await runCli(
      'bench-recovery',
      '--d-in',
      '16',
      '--features',
      '24',
      '--firing-probability',
      '0.05',
      '--d-sae',
      '48',
      '--batch-size',
      '256',
      '--steps',
      '400',
      '--search-steps',
      '150',
      '--max-probes',
      '4',
      '--eval-rows',
      '2048',
      '--architectures',
      'topk,standard',
      '--out',
      out,
      '--quiet',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^architecture\s+knob\s+value\s+MMCS\s+recovered\s+L0\s+FVU/);
    const json = JSON.parse(await readFile(out, 'utf8')) as { targetL0: number; results: ArchResult[] };
    expect(json.targetL0).toBeCloseTo(2.4, 10); // 2 n p
    const [topk, standard] = json.results;
    expect(topk!.architecture).toBe('topk');
    expect(topk!.l0).toBe(2);
    expect(topk!.mmcs).toBeGreaterThan(0.98);
    expect(topk!.recovered).toBeGreaterThan(0.9);
    expect(standard!.probes.length).toBeGreaterThan(0);
    expect(Math.abs(standard!.l0 / json.targetL0 - 1)).toBeLessThan(0.15);
  });

  it('refuses bad options with one line', async () => {
    const cases: [string[], RegExp][] = [
      [['--magnitude', 'gauss:1'], /--magnitude: expected constant:V/],
      [['--architectures', 'standard,nope'], /unknown architecture 'nope'/],
      [['--firing-probability', '2'], /--firing-probability must be in \(0, 1\]/],
      [['--steps', '0'], /--steps must be a positive integer/],
      [['--hyper', '{nope'], /--hyper: not JSON/],
      [['--hyper', '{"jumprelu":{"bandwidth":-1}}'], /--hyper: jumprelu: bandwidth: /],
      [['--hyper', '{"nope":{}}'], /unknown architecture 'nope'/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli('bench-recovery', ...args);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    expect(parseMagnitude('uniform:0:1')).toEqual({ kind: 'uniform', low: 0, high: 1 });
    expect(parseMagnitude('exponential:2')).toEqual({ kind: 'exponential', mean: 2 });
  });
});

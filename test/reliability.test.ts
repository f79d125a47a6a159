/**
 * The defects of issue 12, each pinned by a test that failed before its fix: non-finite numbers,
 * divergence, overflowing metric sums, trusted store manifests, crash leftovers, FIFOs as data,
 * loose safetensors headers and hostile dashboard tokens.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import { decodeSafetensors } from '../src/io/safetensors.js';
import type { Sae } from '../src/sae.js';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'reliab-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A safetensors file: 8-byte length, the header text as given, then data. */
function rawSafetensors(header: string, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

/** The UserError message of fn, or a failure. */
function userErrorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof UserError) return err.message;
    throw err;
  }
  throw new Error('expected a UserError');
}

describe('7. safetensors headers as strict as the Rust reader', () => {
  const u8 = (name: string, begin: number, end: number): string => `"${name}":{"dtype":"U8","shape":[${end - begin}],"data_offsets":[${begin},${end}]}`;
  it('refuses a name given twice', () => {
    expect(userErrorOf(() => decodeSafetensors(rawSafetensors(`{${u8('a', 0, 2)},${u8('a', 2, 4)}}`, new Uint8Array(4)), 'f'))).toBe(
      "f: the header names 'a' twice",
    );
  });
  it('refuses unused bytes between tensors, before the first and after the last', () => {
    expect(userErrorOf(() => decodeSafetensors(rawSafetensors(`{${u8('a', 0, 2)},${u8('b', 3, 4)}}`, new Uint8Array(4)), 'f'))).toContain(
      "1 unused bytes between 'a' [0, 2] and 'b' [3, 4]",
    );
    expect(userErrorOf(() => decodeSafetensors(rawSafetensors(`{${u8('a', 1, 2)}}`, new Uint8Array(2)), 'f'))).toContain(
      '1 unused bytes between the start of the data section',
    );
    expect(userErrorOf(() => decodeSafetensors(rawSafetensors(`{${u8('a', 0, 2)}}`, new Uint8Array(3)), 'f'))).toContain('1 bytes after the last');
  });
  it('still reads tiled files, zero-sized tensors and escaped names included', () => {
    const file = rawSafetensors(`{${u8('a\\"{', 0, 2)},${u8('e', 2, 2)},"__metadata__":{"k":"v,\\"x\\":1"},${u8('b', 2, 4)}}`, new Uint8Array(4));
    expect([...decodeSafetensors(file, 'f').tensors.keys()]).toEqual(['a"{', 'e', 'b']);
  });
});

describe('7. one rule for arrays of more than 2 dimensions: refused in every data format', () => {
  it('npy and safetensors give the same reason', async () => {
    const { writeFile } = await import('node:fs/promises');
    const { serializeNpy } = await import('../src/io/npy.js');
    const { serializeSafetensors } = await import('../src/io/safetensors.js');
    const { openDataset } = await import('../src/store/open.js');
    const { Engine } = await import('../src/engine/index.js');
    const engine = new Engine({ kernels: 'reference' });
    await writeFile(join(dir, 'x3.npy'), serializeNpy(new Float32Array(24), [2, 3, 4]));
    await writeFile(join(dir, 'x3.safetensors'), serializeSafetensors({ x: { dtype: 'F32', shape: [2, 3, 4], data: new Float32Array(24) } }));
    for (const f of ['x3.npy', 'x3.safetensors']) {
      await expect(openDataset({ path: join(dir, f) }, engine)).rejects.toThrow(/shape \[2, 3, 4\]; data must be 2-D, \[rows, width\]: reshape it first/);
    }
  });
});

describe('6. --data must be a regular file or a folder', () => {
  it('refuses a FIFO at once, without waiting for a writer', async () => {
    const { execFileSync } = await import('node:child_process');
    const { openDataset } = await import('../src/store/open.js');
    const { openForReading } = await import('../src/io/atomic.js');
    const { Engine } = await import('../src/engine/index.js');
    const fifo = join(dir, 'pipe.npy');
    execFileSync('mkfifo', [fifo]);
    const engine = new Engine({ kernels: 'reference' });
    const within = <T>(p: Promise<T>): Promise<T | 'hung'> => Promise.race([p, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 3000))]);
    await expect(within(openDataset({ path: fifo }, engine))).rejects.toThrow(`${fifo}: is a FIFO (named pipe); data must be a regular file or a folder`);
    await expect(within(openDataset({ path: fifo, format: 'npy' }, engine))).rejects.toThrow('is a FIFO (named pipe)');
    await expect(within(openForReading(fifo))).rejects.toThrow(`${fifo}: is not a regular file`);
  });
});

describe('4. activation store manifests are checked, not trusted', () => {
  /** A store of one shard of `rows` rows of width 2 in `at`; the manifest's shards as given. */
  async function store(at: string, shards?: { file: string; rows: number }[], shardRows = 3): Promise<void> {
    const { mkdir, writeFile } = await import('node:fs/promises');
    const { serializeSafetensors } = await import('../src/io/safetensors.js');
    await mkdir(at, { recursive: true });
    const col = { dtype: 'I32', shape: [shardRows], data: new Int32Array(shardRows) } as const;
    await writeFile(
      join(at, 'shard-00000.safetensors'),
      serializeSafetensors({
        activations: { dtype: 'F32', shape: [shardRows, 2], data: new Float32Array(shardRows * 2).fill(1) },
        doc: col,
        ctx: col,
        pos: col,
        token: col,
      }),
    );
    await writeFile(join(at, 'vocab.json'), '["a"]');
    const list = shards ?? [{ file: 'shard-00000.safetensors', rows: shardRows }];
    const rows = list.reduce((n, s) => n + s.rows, 0);
    const manifest = {
      format: 'sae-activation-store',
      version: 1,
      model: 'm',
      hook_name: 'h',
      hook_tensor: 't',
      dtype: 'float32',
      d_in: 2,
      rows_per_shard: 3,
      context_size: 4,
      source: {},
      shards: list,
      rows,
      documents: 1,
      contexts: 1,
      next: { context: 1, row: 0 },
      complete: true,
      vocab: 'vocab.json',
    };
    await writeFile(join(at, 'manifest.json'), JSON.stringify(manifest));
  }
  const open = async (at: string): Promise<unknown> => {
    const { openDataset } = await import('../src/store/open.js');
    const { Engine } = await import('../src/engine/index.js');
    return openDataset({ path: at }, new Engine({ kernels: 'reference' }));
  };

  it('refuses a shard path that leaves the store folder', async () => {
    await store(join(dir, 'elsewhere'));
    const at = join(dir, 'stores', 'a');
    await store(at, [{ file: '../../elsewhere/shard-00000.safetensors', rows: 3 }]);
    await expect(open(at)).rejects.toThrow("manifest.json: '../../elsewhere/shard-00000.safetensors' is not a file name inside the store folder");
  });
  it('refuses a shard listed twice', async () => {
    const at = join(dir, 'stores', 'b');
    await store(
      at,
      [1, 2, 3, 4].map(() => ({ file: 'shard-00000.safetensors', rows: 3 })),
    );
    await expect(open(at)).rejects.toThrow("manifest.json: shard 'shard-00000.safetensors' is listed twice");
  });
  it('checks every shard header against the manifest at open', async () => {
    const at = join(dir, 'stores', 'c');
    await store(at, [{ file: 'shard-00000.safetensors', rows: 2 }]);
    await expect(open(at)).rejects.toThrow("shard-00000.safetensors: tensor 'activations' should be F32 [2, 2] as the manifest says, but it is F32 [3, 2]");
  });
  it('says what a folder that is neither a store nor images should hold', async () => {
    const { mkdir, writeFile } = await import('node:fs/promises');
    const at = join(dir, 'stores', 'd');
    await mkdir(at, { recursive: true });
    await writeFile(join(at, 'notes.txt'), 'x');
    await expect(open(at)).rejects.toThrow(`${at}: is neither an activation store (no manifest.json) nor a folder of images (no .jpg, .jpeg, .png file in it)`);
  });
});

/** Rows of noise: [rows, d] float32, as a .npy file in dir. */
async function noiseNpy(name: string, rows: number, d: number, scale = 1): Promise<string> {
  const { writeNpy } = await import('../src/io/npy.js');
  const { Rng } = await import('../src/rng.js');
  const rng = new Rng(7);
  const path = join(dir, name);
  await writeNpy(
    path,
    Float32Array.from({ length: rows * d }, () => rng.normal() * scale),
    [rows, d],
  );
  return path;
}

const tinyTrain = (data: string, out: string, extra: string[] = []): string[] => [
  'train',
  '--data',
  data,
  '--out',
  out,
  '--d-sae',
  '16',
  '--batch-size',
  '64',
  '--steps',
  '20',
  '--lr',
  '3e-3',
  '--log-every',
  '5',
  '--kernels',
  'reference',
  ...extra,
];

describe('5. crash leftovers and resuming a finished run', () => {
  it('removes the temporary files of dead writers in the output folder, not those of live ones', async () => {
    const { mkdir, readdir, writeFile } = await import('node:fs/promises');
    const { spawnSync } = await import('node:child_process');
    const { runCli } = await import('./helpers/cli.js');
    const dead = spawnSync(process.execPath, ['-e', '0']).pid;
    const out = join(dir, 'leftovers');
    await mkdir(out, { recursive: true });
    const stale = [`checkpoint.safetensors.tmp-${dead}-0123456789ab`, `metrics.json.tmp-${dead}-ba9876543210`];
    const live = `train_log.jsonl.tmp-${process.pid}-aaaaaaaaaaaa`;
    for (const f of [...stale, live]) await writeFile(join(out, f), 'partial');
    const data = await noiseNpy('leftovers.npy', 400, 8);
    const r = await runCli(...tinyTrain(data, out, ['--quiet']));
    expect(r.stderr).toBe('');
    const names = await readdir(out);
    for (const f of stale) expect(names).not.toContain(f);
    expect(names).toContain(live);
  });

  it('--resume of a finished run says it is finished and keeps last_step in metrics.json', async () => {
    const { readFile } = await import('node:fs/promises');
    const { runCli } = await import('./helpers/cli.js');
    const data = await noiseNpy('finished.npy', 400, 8);
    const out = join(dir, 'finished');
    expect((await runCli(...tinyTrain(data, out, ['--quiet']))).code).toBe(0);
    const again = await runCli(...tinyTrain(data, out, ['--resume']));
    expect(again.code).toBe(0);
    expect(again.stderr).toContain('the run is already finished (step 20 of 20)');
    const metrics = JSON.parse(await readFile(join(out, 'metrics.json'), 'utf8')) as { last_step: { step: number } | null };
    expect(metrics.last_step?.step).toBe(20);
  });
});

describe('2. divergence stops the run whatever the schedule', () => {
  it('a warm-up to lr 1e6 fails with a non-zero exit, no weights saved, no checkpoint claimed', async () => {
    const { existsSync } = await import('node:fs');
    const { runCli } = await import('./helpers/cli.js');
    const data = await noiseNpy('diverge.npy', 400, 8);
    const out = join(dir, 'diverge-warmup');
    const r = await runCli(...tinyTrain(data, out, ['--lr', '1e6', '--warmup-steps', '10', '--steps', '40', '--quiet']));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/^sae: step \d+: .*(diverged|not finite).*; the run stopped and no checkpoint was saved before it\. Try a lower learning rate/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(existsSync(join(out, 'sae_weights.safetensors'))).toBe(false);
    expect(existsSync(join(out, 'checkpoint.safetensors'))).toBe(false);
  });
  it('names the last checkpoint only when one was written', async () => {
    const { existsSync } = await import('node:fs');
    const { runCli } = await import('./helpers/cli.js');
    const data = await noiseNpy('diverge.npy', 400, 8);
    const out = join(dir, 'diverge-checkpoint');
    const r = await runCli(...tinyTrain(data, out, ['--lr', '1e6', '--checkpoint-every', '1', '--steps', '40', '--quiet']));
    expect(r.code).not.toBe(0);
    const m = /the last good checkpoint \(step (\d+)\) is kept in (\S+)\./.exec(r.stderr);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(0);
    expect(existsSync(m![2]!)).toBe(true);
  });
});

describe('1 and 3. non-finite and overflowing numbers: float64 sums, errors instead of Inf', () => {
  /** A standard SAE 2 -> 4 in dir/name whose encoder is scaled by `scale`. */
  async function saeDir(name: string, scale: number): Promise<string> {
    const { saveSae } = await import('../src/io/saelens.js');
    const { Sae } = await import('../src/sae.js');
    const sae = new Sae(
      'standard',
      { dIn: 2, dSae: 4 },
      {},
      {
        W_enc: Float32Array.from([1, 0, -1, 0, 0, 1, 0, 0], (v) => v * scale),
        b_enc: Float32Array.from([0, 0, 0, -1]),
        W_dec: Float32Array.from([0.5, 0, 0, 1, -1, 1, 1, 1]),
        b_dec: Float32Array.from([0, 0]),
      },
    );
    await saveSae(join(dir, name), sae);
    return join(dir, name);
  }
  async function npy(name: string, values: number[]): Promise<string> {
    const { writeNpy } = await import('../src/io/npy.js');
    await writeNpy(join(dir, name), Float32Array.from(values), [values.length / 2, 2]);
    return join(dir, name);
  }

  it('3. eval of data at 1e30 gives finite metrics (sums in float64)', async () => {
    const { runCli } = await import('./helpers/cli.js');
    const sae = await saeDir('sae-plain', 1);
    const data = await npy('huge.npy', [1e30, 2e30, 3e30, 0, -2e30, 1e30]);
    const out = join(dir, 'huge-metrics.json');
    const r = await runCli('eval', sae, '--data', data, '--out', out);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const { readFile } = await import('node:fs/promises');
    const m = JSON.parse(await readFile(out, 'utf8')) as { mse: number; fvu: number };
    expect(m.mse).toBeGreaterThan(1e59);
    expect(Number.isFinite(m.mse) && Number.isFinite(m.fvu)).toBe(true);
  });

  it('3. training on data at 1e30 never exits 0 with Inf or null metrics', async () => {
    const { readFile } = await import('node:fs/promises');
    const { runCli } = await import('./helpers/cli.js');
    const data = await noiseNpy('train-huge.npy', 400, 8, 1e30);
    for (const normalize of ['none', 'expected_average_only_in']) {
      const out = join(dir, `train-huge-${normalize}`);
      const r = await runCli(...tinyTrain(data, out, ['--quiet', '--normalize-activations', normalize]));
      if (r.code === 0) {
        const text = await readFile(join(out, 'metrics.json'), 'utf8');
        expect(text).not.toMatch(/null|Infinity|NaN/);
      } else expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });

  it('1. eval and encode refuse latents that overflow to Inf, and write nothing', async () => {
    const { existsSync } = await import('node:fs');
    const { runCli } = await import('./helpers/cli.js');
    const sae = await saeDir('sae-overflow', 1e20);
    const data = await npy('big.npy', [1e20, 2e20, 3e20, 0]);
    const ev = await runCli('eval', sae, '--data', data, '--out', join(dir, 'overflow.json'));
    expect(ev.code).not.toBe(0);
    expect(ev.stderr).toMatch(/^sae: input 0: the SAE's latents or reconstruction hold NaN or Inf \(the input is finite\)/);
    expect(existsSync(join(dir, 'overflow.json'))).toBe(false);
    const en = await runCli('encode', sae, '--data', data, '--out', join(dir, 'overflow.npy'));
    expect(en.code).not.toBe(0);
    expect(en.stderr).toMatch(/latents hold NaN or Inf/);
    expect(existsSync(join(dir, 'overflow.npy'))).toBe(false);
  });

  it('1. the dashboard ends with an error on an Inf activation (it spun forever)', async () => {
    const { readdir } = await import('node:fs/promises');
    const { startSae } = await import('./helpers/spawn.js');
    const sae = await saeDir('sae-overflow-dash', 1e20);
    const data = await npy('big-dash.npy', [1e20, 2e20, 3e20, 0]);
    const out = join(dir, 'dash-overflow');
    const { child, done } = startSae(['dashboard', sae, '--data', data, '--out', out]);
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const r = await done;
    clearTimeout(timer);
    expect(r.signal).toBeNull();
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/NaN or Inf/);
    expect(await readdir(out).catch(() => [])).not.toContain('index.html');
  }, 60_000);

  it('1. the feature collector refuses an infinite activation instead of doubling its bins forever', async () => {
    const { FeatureCollector } = await import('../src/dashboard/collect.js');
    const c = new FeatureCollector(2);
    expect(() => c.add(Float32Array.from([1, Infinity]), 1, [0])).toThrow(/latent 1 .* Inf/);
  });
});

describe('1. anomaly scores: float64 error sums, Inf refused', () => {
  it('scores data at 1e15 (squares beyond float32) and refuses an SAE that overflows', async () => {
    const { reconstructionErrors } = await import('../src/anomaly/score.js');
    const { Engine } = await import('../src/engine/index.js');
    const { Sae } = await import('../src/sae.js');
    const engine = new Engine({ kernels: 'reference' });
    const make = (scale: number): Sae<'standard'> =>
      new Sae(
        'standard',
        { dIn: 2, dSae: 2 },
        {},
        { W_enc: Float32Array.from([scale, 0, 0, scale]), b_enc: new Float32Array(2), W_dec: Float32Array.from([0.5, 0, 0, 0.5]), b_dec: new Float32Array(2) },
      );
    // eslint-disable-next-line @typescript-eslint/require-await -- an AsyncIterable (what reconstructionErrors takes) of rows already in memory
    const chunk = async function* (x: number[]) {
      yield { x: Float32Array.from(x), rows: x.length / 2 };
    };
    const errors = await reconstructionErrors(engine, make(1), chunk([1e15, 2e15]));
    expect(errors[0]).toBeCloseTo(1.25e30, -26);
    await expect(reconstructionErrors(engine, make(1e10), chunk([1, 0, 1e20, 0]))).rejects.toThrow(
      /^input 1: its reconstruction error is 2.5\d*e\+59 \(NaN, Inf or beyond float32\)/,
    );
  });
});

describe('8. hostile dashboard tokens', () => {
  it('isolates every token, shows control characters as escapes and cuts long tokens with their length', async () => {
    const { renderTokenExample } = await import('../src/dashboard/tokens.js');
    const tokens = ['a\u202Eb', '\0', 'x\u2028y', '\u200F', 'A'.repeat(100_000), 'تست', '👨\u200D👩'];
    const html = renderTokenExample({ tokens, activations: tokens.map(() => 1), highlight: 0 }, 1);
    expect(html).not.toMatch(/[\u202E\u0000\u2028\u200F]/);
    expect(html).toContain('a&lt;U+202E&gt;b');
    expect(html).toContain('&lt;U+0000&gt;');
    expect(html).toContain('x&lt;U+2028&gt;y');
    expect(html).toContain('…(100000 chars)');
    expect(html).toContain('👨\u200D👩');
    expect(html.match(/<bdi>/g)).toHaveLength(tokens.length);
    expect(html.length).toBeLessThan(3000);
  });
  it('cuts tokens for the Neuronpedia export at a larger limit, never inside a surrogate pair', async () => {
    const { cutToken, MAX_EXPORT_TOKEN_CHARS } = await import('../src/dashboard/tokens.js');
    expect(cutToken('x'.repeat(1000), MAX_EXPORT_TOKEN_CHARS)).toHaveLength(MAX_EXPORT_TOKEN_CHARS + '…(1000 chars)'.length);
    expect(cutToken(`${'x'.repeat(63)}😀`, 64)).toBe(`${'x'.repeat(63)}…(65 chars)`);
  });
});

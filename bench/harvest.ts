/**
 * npm run bench -- harvest: the harvest case on TinyLlama-1.1B (the GGUF in the model cache,
 * or TINYLLAMA_GGUF=path): blocks.4.hook_resid_post for a batch of 8 contexts of 128 tokens, loaded
 * with upTo (the embedding and blocks 0-4), 2 threads: tokens/s and peak RSS against the f32
 * weights of the layers run. Then the full forward with logits (what eval --model runs).
 * Peer, in the same run: PyTorch eager (bench/torch_llama.py, /usr/bin/python3, 2 threads) on the
 * same dequantised f32 weights, which this script dumps to a temporary safetensors file, through the
 * same layers; it also checks its output against ours (max |ours - torch| / max |ours|).
 *   npx tsx bench/harvest.ts     (or npm run bench -- harvest)
 * Measured (2 cores shared with other jobs, load average 6.4 at start, 3.9 at the end): ours 112
 * tokens/s, peak RSS 1361 MB = 1.25x the 1090 MB of f32 weights run; torch 162 tokens/s (ratio
 * 0.69x; torch's 2688 MB counts the memory-mapped file pages as well as its copies). Full forward
 * with logits: ours 47 tokens/s, torch 33 (1.40x). Torch's outputs differ from ours by 6.6e-7
 * (hook) and 2.5e-6 (logits), relative to the largest value. An earlier run at load ~13: 59 vs 87
 * (0.68x), full 20 vs 16 (1.22x).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Engine } from '../src/engine/index.js';
import { type TensorToWrite, writeSafetensors } from '../src/io/safetensors.js';
import { cachedModelPath, TINYLLAMA } from '../src/lm/model-cache.js';
import { HookedTransformer } from '../src/lm/transformer/index.js';
import { peakRssMb, torchAvailable } from './util.js';

const HOOK = 'blocks.4.hook_resid_post';
const BATCH = 8;
const LEN = 128;

/** The same ids torch_llama.py makes when none are given. */
function contexts(vocab: number): Int32Array[] {
  return Array.from({ length: BATCH }, (_, b) => Int32Array.from({ length: LEN }, (_, i) => (b * 7919 + i * 104729) % vocab));
}

async function tokensPerSecond(run: () => Promise<unknown>, reps: number): Promise<number> {
  await run(); // compile + warm
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) await run();
  return (BATCH * LEN * reps) / ((performance.now() - t0) / 1000);
}

function torchPeer(file: string, layers: number, logits: boolean): { tokens_s: number; peak_rss_mb: number; max_rel_diff: number | null } {
  const script = fileURLToPath(new URL('./torch_llama.py', import.meta.url));
  const args = [script, file, '--layers', String(layers), '--threads', '2', '--reps', logits ? '1' : '2', ...(logits ? ['--logits'] : [])];
  const r = spawnSync('/usr/bin/python3', args, { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '2' } });
  if (r.status !== 0) throw new Error(`PyTorch peer failed: ${r.stderr.trim().split('\n').pop()}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as { tokens_s: number; peak_rss_mb: number; max_rel_diff: number | null };
}

const mb = (b: number): number => Math.round(b / 2 ** 20);
const load = (): string =>
  loadavg()
    .map((x) => x.toFixed(1))
    .join(' ');

export async function benchHarvest(log: (l: string) => void): Promise<object> {
  const path = process.env['TINYLLAMA_GGUF'] ?? cachedModelPath(TINYLLAMA);
  if (!existsSync(path)) {
    log(`harvest: ${path} is absent (run: sae fetch tinyllama, or set TINYLLAMA_GGUF); skipped`);
    return { bench: 'harvest', skipped: true };
  }
  const engine = new Engine({ threads: 2 });
  log(`harvest bench on ${path}, batch ${BATCH} x ${LEN}, 2 threads; load average at start ${load()}`);
  const part = await HookedTransformer.load(path, engine, { upTo: HOOK });
  const ctx = contexts(part.config.vocab);
  const ours = await tokensPerSecond(() => part.run(ctx, { stopAfter: HOOK }), 2);
  const partMb = mb(part.weights.bytes());
  const peakHarvest = Math.round(peakRssMb());
  log(
    `  ours  ${HOOK}: ${ours.toFixed(1)} tokens/s; f32 weights of the blocks run ${partMb} MB, peak RSS ${peakHarvest} MB (${(peakHarvest / partMb).toFixed(2)}x)`,
  );

  const full = await HookedTransformer.load(path, engine);
  const fullRun = await full.run(ctx, { returnHooks: [HOOK] });
  const oursFull = await tokensPerSecond(() => full.run(ctx), 1);
  log(`  ours  full forward + logits: ${oursFull.toFixed(1)} tokens/s (f32 weights ${mb(full.weights.bytes())} MB, peak RSS ${Math.round(peakRssMb())} MB)`);

  if (!torchAvailable()) {
    log('  PyTorch (/usr/bin/python3 with torch) is not available: no peer');
    return { bench: 'harvest', harvest_tokens_s: ours, full_tokens_s: oursFull, weights_mb: partMb, peak_rss_mb: peakHarvest };
  }
  const dir = await mkdtemp(join(tmpdir(), 'sae-bench-harvest-'));
  try {
    const file = join(dir, 'weights.safetensors');
    const tensors: Record<string, TensorToWrite> = {};
    for (const [name, t] of Object.entries(full.weights.feeds())) tensors[name] = { dtype: 'F32', shape: [...t.dims], data: t.data };
    tensors['check_ids'] = { dtype: 'I32', shape: [BATCH, LEN], data: Int32Array.from(ctx.flatMap((c) => Array.from(c))) };
    tensors['check_hook'] = { dtype: 'F32', shape: [BATCH, LEN, full.config.dModel], data: fullRun.hooks[HOOK]!.data };
    tensors['check_logits'] = { dtype: 'F32', shape: [BATCH, LEN, full.config.vocab], data: fullRun.logits!.data };
    const c = full.config;
    const config = { d_model: c.dModel, n_heads: c.nHeads, n_kv_heads: c.nKvHeads, eps: c.norm.eps, rope_base: c.rotary[0]!.base, vocab: c.vocab };
    await writeSafetensors(file, tensors, { config: JSON.stringify(config) });
    await engine.release();
    const th = torchPeer(file, 5, false);
    log(
      `  torch ${HOOK}: ${th.tokens_s.toFixed(1)} tokens/s, peak RSS ${Math.round(th.peak_rss_mb)} MB, max rel diff from ours ${th.max_rel_diff?.toExponential(2)}`,
    );
    const tf = torchPeer(file, c.nLayers, true);
    log(
      `  torch full forward + logits: ${tf.tokens_s.toFixed(1)} tokens/s, peak RSS ${Math.round(tf.peak_rss_mb)} MB, max rel diff of logits ${tf.max_rel_diff?.toExponential(2)}`,
    );
    log(
      `  ratio ours / torch: harvest ${(ours / th.tokens_s).toFixed(2)}x, full forward ${(oursFull / tf.tokens_s).toFixed(2)}x; load average at end ${load()}`,
    );
    return {
      bench: 'harvest',
      harvest_tokens_s: ours,
      torch_harvest_tokens_s: th.tokens_s,
      harvest_ratio: ours / th.tokens_s,
      weights_mb: partMb,
      peak_rss_mb: peakHarvest,
      torch_peak_rss_mb: th.peak_rss_mb,
      full_tokens_s: oursFull,
      torch_full_tokens_s: tf.tokens_s,
      full_ratio: oursFull / tf.tokens_s,
      torch_max_rel_diff_hook: th.max_rel_diff,
      torch_max_rel_diff_logits: tf.max_rel_diff,
      loadavg: loadavg(),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await benchHarvest((l) => console.log(l))));
}

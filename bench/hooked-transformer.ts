/**
 * The hooked transformer on a random ~125M-parameter Llama config (d 768, 12 layers, 12 heads /
 * 4 kv heads, d_mlp 2048, vocab 32000, untied): weights fed as graph inputs (the design), RSS
 * against the f32 weights, tokens/s of a harvest run that stops after layer 2 and of the full
 * forward with logits, batch 8 x 128 tokens. Then, on a ~10M config, the same graph with the
 * weights as initializers inside the model, to see what feeding them as inputs costs.
 * With TINYLLAMA_GGUF=path (the TinyLlama-1.1B GGUF of ../shared/DATA.md), first the case:
 * harvest blocks.4.hook_resid_post, batch 8 x 128, loaded with upTo (embedding + 5 blocks), peak RSS.
 *   npx tsx bench/hooked-transformer.ts      (or npm run bench -- hooked)
 */
import { Engine } from '../src/engine/index.js';
import { llamaConfig } from '../src/lm/transformer/families/llama.js';
import { buildGraph, type GraphPlan } from '../src/lm/transformer/graph.js';
import { HookedTransformer } from '../src/lm/transformer/model.js';
import { Weights } from '../src/lm/transformer/weights.js';
import { compileGraph, type Feeds } from '../src/engine/ort.js';
import ortNode from 'onnxruntime-node';
import { peakRssMb, randomArray } from './util.js';

interface Size {
  readonly d: number;
  readonly layers: number;
  readonly heads: number;
  readonly kv: number;
  readonly mlp: number;
  readonly vocab: number;
}

function randomModel(engine: Engine, s: Size): HookedTransformer {
  const json = {
    model_type: 'llama',
    hidden_size: s.d,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    num_key_value_heads: s.kv,
    intermediate_size: s.mlp,
    vocab_size: s.vocab,
    max_position_embeddings: 2048,
    rms_norm_eps: 1e-5,
  };
  const cfg = llamaConfig({ file: 'bench config.json', json });
  const w = new Weights({ layers: s.layers, head: true });
  let seed = 1;
  const put = (name: string, dims: number[], scale = 0.02): void =>
    w.set(
      name,
      randomArray(
        dims.reduce((a, b) => a * b, 1),
        scale,
        seed++,
      ),
      dims,
    );
  const dh = s.d / s.heads;
  put('embed.W_E', [s.vocab, s.d]);
  for (let l = 0; l < s.layers; l++) {
    const p = `blocks.${l}.`;
    w.set(`${p}ln1.w`, new Float32Array(s.d).fill(1), [s.d]);
    w.set(`${p}ln2.w`, new Float32Array(s.d).fill(1), [s.d]);
    put(`${p}attn.W_Q`, [s.heads * dh, s.d]);
    put(`${p}attn.W_K`, [s.kv * dh, s.d]);
    put(`${p}attn.W_V`, [s.kv * dh, s.d]);
    put(`${p}attn.W_O`, [s.d, s.heads * dh]);
    put(`${p}mlp.W_gate`, [s.mlp, s.d]);
    put(`${p}mlp.W_in`, [s.mlp, s.d]);
    put(`${p}mlp.W_out`, [s.d, s.mlp]);
  }
  w.set('ln_final.w', new Float32Array(s.d).fill(1), [s.d]);
  put('unembed.W_U', [s.vocab, s.d]);
  return new HookedTransformer(engine, 'random-llama', cfg, w, 'bench');
}

function contexts(batch: number, len: number, vocab: number): Int32Array[] {
  return Array.from({ length: batch }, (_, b) => Int32Array.from({ length: len }, (_, i) => (b * 7919 + i * 104729) % vocab));
}

async function tokensPerSecond(run: () => Promise<unknown>, tokens: number, reps: number): Promise<number> {
  await run(); // compile + warm
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) await run();
  return (tokens * reps) / ((performance.now() - t0) / 1000);
}

const mb = (b: number): number => Math.round(b / 2 ** 20);

/** The harvest case on TinyLlama, when its GGUF is given; measured first, for a clean peak RSS. */
async function tinyLlama(engine: Engine, log: (l: string) => void): Promise<object> {
  const path = process.env['TINYLLAMA_GGUF'];
  if (!path) {
    log('hooked: TINYLLAMA_GGUF not set, TinyLlama harvest skipped');
    return {};
  }
  const hook = 'blocks.4.hook_resid_post';
  const t0 = performance.now();
  const m = await HookedTransformer.load(path, engine, { upTo: hook });
  const loadS = (performance.now() - t0) / 1000;
  const ctx = contexts(8, 128, m.config.vocab);
  const rate = await tokensPerSecond(() => m.run(ctx, { stopAfter: hook }), 1024, 2);
  const weightsMb = mb(m.weights.bytes());
  const peak = Math.round(peakRssMb());
  log(
    `TinyLlama GGUF harvest ${hook}, 8 x 128: ${rate.toFixed(0)} tokens/s; load ${loadS.toFixed(1)} s; f32 weights of the blocks run ${weightsMb} MB, peak RSS ${peak} MB (${(peak / weightsMb).toFixed(2)}x)`,
  );
  return { tinyllama_harvest_tokens_s: rate, tinyllama_weights_mb: weightsMb, tinyllama_peak_rss_mb: peak };
}

export async function benchHooked(log: (l: string) => void): Promise<object> {
  const engine = new Engine({ threads: 2 });
  const tiny = await tinyLlama(engine, log);
  const big: Size = { d: 768, layers: 12, heads: 12, kv: 4, mlp: 2048, vocab: 32000 };
  const rss0 = mb(process.memoryUsage().rss);
  const m = randomModel(engine, big);
  const weightsMb = mb(m.weights.bytes());
  const params = m.weights.bytes() / 4 / 1e6;
  const ctx = contexts(8, 128, big.vocab);
  const hook = 'blocks.2.hook_resid_post';
  const harvest = await tokensPerSecond(() => m.run(ctx, { stopAfter: hook }), 1024, 3);
  const rssHarvest = mb(process.memoryUsage().rss);
  const full = await tokensPerSecond(() => m.run(ctx, {}), 1024, 2);
  const rssFull = mb(process.memoryUsage().rss);
  const peak = Math.round(peakRssMb());
  log(`hooked llama ${params.toFixed(0)}M params (${weightsMb} MB f32), weights as graph inputs, batch 8 x 128, 2 threads:`);
  log(`  harvest ${hook}: ${harvest.toFixed(0)} tokens/s; full forward + logits: ${full.toFixed(0)} tokens/s`);
  log(`  RSS: ${rss0} MB before, ${rssHarvest} MB after harvest runs, ${rssFull} MB after full runs, peak ${peak} MB (weights ${weightsMb} MB)`);

  // weights as inputs vs as initializers, on a small model (the builder holds initializers in JS arrays)
  const small: Size = { d: 256, layers: 4, heads: 8, kv: 4, mlp: 704, vocab: 8000 };
  const s = randomModel(engine, small);
  const sctx = contexts(8, 128, small.vocab);
  const plan: GraphPlan = { outputs: [], logits: true, edits: {}, layers: small.layers, head: true };
  const asInputs = await tokensPerSecond(() => s.run(sctx, {}), 1024, 5);
  const inline = await compileGraph(
    ortNode,
    buildGraph(
      s.config,
      (n) => s.weights.dims(n),
      plan,
      (n) => s.weights.get(n)!.data,
    ),
    2,
  );
  const asInit = await tokensPerSecond(() => inline.run(inlineFeeds(s, sctx)), 1024, 5);
  log(
    `  small model (${(s.weights.bytes() / 4e6).toFixed(1)}M params) full forward: weights as inputs ${asInputs.toFixed(0)} tokens/s, as initializers ${asInit.toFixed(0)} tokens/s`,
  );
  await inline.release();
  await engine.release();
  return {
    bench: 'hooked',
    ...tiny,
    params_m: params,
    weights_mb: weightsMb,
    harvest_tokens_s: harvest,
    full_tokens_s: full,
    rss_after_harvest_mb: rssHarvest,
    rss_after_full_mb: rssFull,
    peak_rss_mb: peak,
    small_inputs_tokens_s: asInputs,
    small_initializers_tokens_s: asInit,
  };
}

function inlineFeeds(m: HookedTransformer, ctx: Int32Array[]): Feeds {
  return m.positionInputs(ctx);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await benchHooked((l) => console.log(l))));
}

/**
 * ONNX language models as published: a GPT-2-shaped model (random weights, d 512, 24 layers,
 * ~290 MB of float32 weights) written with its weights in model.onnx_data, and the same model as
 * one file; then, in a fresh process each (peak RSS is per process):
 *   steer    load + 8 greedy tokens with an edit at blocks.8 (one splice session): peak RSS, and its
 *            growth from before loading, against the weights' size (target < 1.5x)
 *   harvest  blocks.4.hook_resid_post over 8 contexts of 128 tokens: the cut graph (layers 0-4)
 *            against the splice graph's clean run of the same hook, and the plain logits graph
 *            (what the Where on the flag costs), tokens/s
 * and the protobuf codec on a ~500 MB single-file model: GraphBuilder's encode (writer), reading it
 * from disk with weights located (OnnxModel.open) and from memory (OnnxModel.fromBytes).
 *   npm run bench -- onnx-lm        (tsx bench/onnx-lm.ts child ... runs one measurement)
 */
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Engine } from '../src/engine/index.js';
import { GraphBuilder } from '../src/engine/onnx.js';
import { OnnxLm } from '../src/lm/onnx-lm.js';
import type { Feeds } from '../src/engine/ort.js';
import { OnnxModel } from '../src/lm/onnx-proto.js';
import { SESSION, sessionPlan } from '../src/lm/onnx-session.js';
import { logitsOutput } from '../src/lm/unembedding.js';
import { steerEdit } from '../src/lm/splice.js';
import { Sae } from '../src/sae.js';
import { toExternalData } from '../test/helpers/onnx-layouts.js';
import { buildTinyGpt2, type Dims, tokenizerJson } from '../test/helpers/tiny-gpt2.js';
import { readFileSync } from 'node:fs';
import { median, randomArray } from './util.js';

const MODEL: Dims = { d: 512, heads: 8, layers: 24, mlp: 2048, maxLen: 128 };
/** ~500 MB of weights for the codec. */
const BIG: Dims = { d: 1024, heads: 8, layers: 10, mlp: 4096, maxLen: 128 };

async function writeFolder(dir: string, dims: Dims, external: boolean): Promise<number> {
  const tok = tokenizerJson();
  await mkdir(join(dir, 'onnx'), { recursive: true });
  await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(tok.json));
  await writeFile(join(dir, 'config.json'), JSON.stringify({ model_type: 'gpt2', bos_token_id: tok.bos }));
  const model = buildTinyGpt2(tok.vocabSize, 1, dims);
  if (!external) {
    await writeFile(join(dir, 'onnx', 'model.onnx'), model);
    return model.length;
  }
  toExternalData(model, join(dir, 'onnx'), 'model.onnx', false);
  return (await stat(join(dir, 'onnx', 'model.onnx_data'))).size;
}

/** Feeds of right-padded contexts (all of one length here) for the bench's own sessions. */
function lmFeeds(batch: readonly Int32Array[]): { feeds: Feeds } {
  const [B, S] = [batch.length, batch[0]!.length];
  const ids = BigInt64Array.from(batch.flatMap((c) => Array.from(c, BigInt)));
  return {
    feeds: {
      input_ids: { data: ids, dims: [B, S] },
      attention_mask: { data: new BigInt64Array(B * S).fill(1n), dims: [B, S] },
      [SESSION.replacement]: { data: new Float32Array(1), dims: [1] },
      [SESSION.splice]: { data: new Uint8Array(1), dims: [] },
    },
  };
}

function contexts(lm: OnnxLm, n: number, len: number): Int32Array[] {
  const words = 'Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my purse, I thought I would sail about. '.repeat(
    20,
  );
  const ids = lm.tokenize(words);
  return Array.from({ length: n }, (_, i) => Int32Array.from(ids.slice(i * 7, i * 7 + len)));
}

/**
 * Peak resident memory of this process in MB: VmHWM, which starts afresh at exec (getrusage's
 * maxRSS keeps the parent's high-water mark across fork and exec, so a child would report the
 * parent's models).
 */
function peakRssMb(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : process.resourceUsage().maxRSS / 1024;
}

/** One measurement in this process; prints one JSON line. */
async function child(kind: string, dir: string): Promise<void> {
  const engine = new Engine({ threads: 2 });
  const before = peakRssMb();
  const lm = await OnnxLm.load(dir, engine);
  const t0 = performance.now();
  if (kind === 'steer') {
    const d = MODEL.d;
    const W_dec = Float32Array.from({ length: 2 * d * d }, (_, i) => (i % (d + 1) === 0 ? 1 : 0));
    const sae = new Sae(
      'standard',
      { dIn: d, dSae: 2 * d },
      {},
      { W_enc: new Float32Array(d * 2 * d), W_dec, b_enc: new Float32Array(2 * d), b_dec: new Float32Array(d) },
    );
    const prompt = Array.from(contexts(lm, 1, 32)[0]!);
    await lm.generate(prompt, 8, lm.hookTensor('blocks.8.hook_resid_post'), steerEdit(engine, sae, { feature: 3, add: 4 }));
    console.log(JSON.stringify({ kind, seconds: (performance.now() - t0) / 1000, rss_before_mb: before, peak_rss_mb: peakRssMb() }));
  } else {
    const batch = contexts(lm, 8, 128);
    const tokens = batch.reduce((n, c) => n + c.length, 0);
    const hook = lm.hookTensor('blocks.4.hook_resid_post');
    const rate = async (run: () => Promise<unknown>): Promise<number> => {
      await run();
      const t = performance.now();
      for (let i = 0; i < 3; i++) await run();
      return (3 * tokens) / ((performance.now() - t) / 1000);
    };
    const cut = await rate(() => lm.activations(batch, hook));
    await lm.dispose();
    // the splice graph's clean run against the plain logits graph, run in turns (both loaded here
    // on purpose, to measure what the Where costs; OnnxLm itself holds one)
    const { feeds } = lmFeeds(batch);
    const graphs = [];
    for (const k of ['logits', 'splice'] as const) {
      const { bytes, folder } = lm.model.sessionModel(sessionPlan(lm.model, k, logitsOutput(lm.graph)!, k === 'logits' ? undefined : hook).graph);
      graphs.push(await engine.session(bytes, { externalDataFolder: folder, arena: false }));
    }
    const seconds: number[][] = [[], []];
    for (let r = 0; r < 4; r++) {
      for (const [i, g] of graphs.entries()) {
        const t = performance.now();
        await g.run(feeds);
        if (r > 0) seconds[i]!.push((performance.now() - t) / 1000);
      }
    }
    const [logits, full] = seconds.map((s) => tokens / median(s));
    for (const g of graphs) await g.release();
    console.log(JSON.stringify({ kind, cut_tokens_per_s: cut, logits_tokens_per_s: logits, full_tokens_per_s: full, peak_rss_mb: peakRssMb() }));
    return;
  }
  await lm.dispose();
}

function runChild(kind: string, dir: string): Record<string, number> {
  const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), 'child', kind, dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bench child ${kind} failed: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, number>;
}

async function codec(dir: string): Promise<Record<string, number>> {
  const tok = tokenizerJson();
  const bytes = buildTinyGpt2(tok.vocabSize, 1, BIG);
  const g = new GraphBuilder();
  for (let i = 0; i < 10; i++) g.output(g.constant(randomArray(BIG.d * BIG.mlp * 3, 1, i + 1), [BIG.d, BIG.mlp * 3]), `w${i}`, [BIG.d, BIG.mlp * 3]);
  let t = performance.now();
  const encoded = g.encode(); // 10 weights of 50 MB
  const encode = (performance.now() - t) / 1000;
  const file = join(dir, 'big.onnx');
  await writeFile(file, bytes);
  t = performance.now();
  const fromDisk = OnnxModel.open(file);
  const open = (performance.now() - t) / 1000;
  t = performance.now();
  OnnxModel.fromBytes(bytes, 'big');
  const parse = (performance.now() - t) / 1000;
  t = performance.now();
  const { bytes: session } = fromDisk.sessionModel({
    nodes: fromDisk.nodeFields().map((n) => n.raw),
    inputs: fromDisk.graphFieldsOf(11),
    outputs: fromDisk.graphFieldsOf(12),
    uses: new Set(fromDisk.initializers.keys()),
  });
  const rewrite = (performance.now() - t) / 1000;
  return {
    model_mb: bytes.length / 1e6,
    encode_mb: encoded.length / 1e6,
    encode_s: encode,
    open_from_disk_s: open,
    parse_in_memory_s: parse,
    rewrite_s: rewrite,
    rewritten_kb: session.length / 1e3,
  };
}

export async function benchOnnxLm(log: (line: string) => void): Promise<object> {
  const dir = await mkdtemp(join(tmpdir(), 'sae-bench-onnx-'));
  try {
    const weights = (await writeFolder(join(dir, 'model'), MODEL, true)) / 2 ** 20;
    await writeFolder(join(dir, 'single'), MODEL, false);
    log(`model: d ${MODEL.d}, ${MODEL.layers} layers, ${weights.toFixed(0)} MB of weights in model.onnx_data (and as one model.onnx)`);
    const steer = runChild('steer', join(dir, 'model'));
    const single = runChild('steer', join(dir, 'single'));
    for (const [what, s] of [
      ['external data', steer],
      ['one file', single],
    ] as const) {
      const grown = s['peak_rss_mb']! - s['rss_before_mb']!;
      log(
        `steer, ${what} (8 tokens, edit at blocks.8): peak RSS ${s['peak_rss_mb']!.toFixed(0)} MB = ${(s['peak_rss_mb']! / weights).toFixed(2)}x the weights; grown by ${grown.toFixed(0)} MB = ${(grown / weights).toFixed(2)}x from ${s['rss_before_mb']!.toFixed(0)} MB before loading; ${s['seconds']!.toFixed(1)} s`,
      );
    }
    const harvest = runChild('harvest', join(dir, 'model'));
    log(
      `harvest blocks.4 (8 x 128 tokens): cut graph ${harvest['cut_tokens_per_s']!.toFixed(0)} tokens/s; whole graph: splice graph (clean run) ${harvest['full_tokens_per_s']!.toFixed(0)} tokens/s, plain logits graph ${harvest['logits_tokens_per_s']!.toFixed(0)} tokens/s (run in turns: the cost of the Where)`,
    );
    const c = await codec(dir);
    log(
      `codec: GraphBuilder.encode of ${c['encode_mb']!.toFixed(0)} MB ${c['encode_s']!.toFixed(2)} s; ${c['model_mb']!.toFixed(0)} MB model: open from disk (weights located) ${c['open_from_disk_s']!.toFixed(3)} s, parse in memory ${c['parse_in_memory_s']!.toFixed(3)} s, rewrite ${c['rewrite_s']!.toFixed(3)} s (${c['rewritten_kb']!.toFixed(0)} kB)`,
    );
    return {
      bench: 'onnx-lm',
      weights_mb: weights,
      steer_peak_rss_mb: steer['peak_rss_mb'],
      steer_rss_before_mb: steer['rss_before_mb'],
      steer_s: steer['seconds'],
      single_file_steer_peak_rss_mb: single['peak_rss_mb'],
      ...harvest,
      ...c,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'child') await child(process.argv[3]!, process.argv[4]!);

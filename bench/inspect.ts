/**
 * Visual inspection speed: megapixels per second of mapImage at stride 4 on a 1024 x 1024 image
 * (random pixels; random SAE weights: the cost does not depend on them), for a grey 12 x 12 SAE
 * (144 -> 1024, ZCA) and a colour 8 x 8 x 3 one (192 -> 384, the defect demo's shape). Baseline in
 * the same run: the same patch errors in separate steps (JS gather of all patches, preprocessPatches,
 * Sae.encode, Sae.decode, error in JS), without the fused per-band graph.
 */
import { inspector, mapImage, patchOrigins, saeModel } from '../src/anomaly/inspect.js';
import type { ChannelImage } from '../src/data/images.js';
import { fitPreprocess, preprocessPatches } from '../src/data/whitening.js';
import { Engine } from '../src/engine/index.js';
import { Rng } from '../src/rng.js';
import { Sae } from '../src/sae.js';
import { median } from './util.js';

const SIDE = 1024;
const STRIDE = 4;
const REPEATS = 3;

interface Case {
  readonly name: string;
  readonly p: number;
  readonly channels: 1 | 3;
  readonly dSae: number;
}

const CASES: readonly Case[] = [
  { name: 'grey 12x12, 144 -> 1024', p: 12, channels: 1, dSae: 1024 },
  { name: 'rgb 8x8x3, 192 -> 384', p: 8, channels: 3, dSae: 384 },
];

async function separateSteps(engine: Engine, sae: Sae, pre: Awaited<ReturnType<typeof fitPreprocess>>, image: ChannelImage): Promise<Float32Array> {
  const { patchSize: p } = pre;
  const c = image.channels;
  const d = p * p * c;
  const ys = patchOrigins(image.height, p, STRIDE);
  const xs = patchOrigins(image.width, p, STRIDE);
  const n = ys.length * xs.length;
  const x = new Float32Array(n * d);
  let at = 0;
  for (const oy of ys)
    for (const ox of xs)
      for (let r = 0; r < p; r++) {
        const from = ((oy + r) * image.width + ox) * c;
        x.set(image.pixels.subarray(from, from + p * c), at);
        at += p * c;
      }
  await preprocessPatches(pre, x, n, engine);
  const xHat = await sae.decode(engine, await sae.encode(engine, x));
  const err = new Float32Array(n);
  for (let k = 0; k < n; k++) {
    let e = 0;
    for (let t = k * d; t < (k + 1) * d; t++) e += (xHat[t]! - x[t]!) ** 2;
    err[k] = e;
  }
  return err;
}

export async function benchInspect(log: (l: string) => void): Promise<object> {
  const engine = new Engine();
  const results: Record<string, number> = {};
  try {
    for (const k of CASES) {
      const rng = new Rng(1);
      const d = k.p * k.p * k.channels;
      const image: ChannelImage = {
        path: 'bench',
        width: SIDE,
        height: SIDE,
        channels: k.channels,
        pixels: Float32Array.from({ length: SIDE * SIDE * k.channels }, () => rng.uniform()),
      };
      const sample = Float32Array.from({ length: 2000 * d }, () => rng.uniform());
      const pre = await fitPreprocess(sample, 2000, { patchSize: k.p, channels: k.channels, meanRemoval: true, whitening: 'zca', eps: 1e-3 }, engine);
      const r = (n: number, s: number): Float32Array => Float32Array.from({ length: n }, () => s * rng.normal());
      const sae = new Sae(
        'standard',
        { dIn: d, dSae: k.dSae },
        {},
        { W_enc: r(d * k.dSae, 0.1), b_enc: r(k.dSae, 0.1), W_dec: r(k.dSae * d, 0.1), b_dec: r(d, 0.1) },
      );
      const ins = inspector(pre, saeModel(sae));
      await mapImage(engine, ins, image, STRIDE); // warm-up: graph building, session
      const fused: number[] = [];
      for (let i = 0; i < REPEATS; i++) {
        const t = performance.now();
        await mapImage(engine, ins, image, STRIDE);
        fused.push((performance.now() - t) / 1000);
      }
      await separateSteps(engine, sae, pre, image);
      const t = performance.now();
      await separateSteps(engine, sae, pre, image);
      const separate = (performance.now() - t) / 1000;
      const mp = (SIDE * SIDE) / 1e6;
      const patches = patchOrigins(SIDE, k.p, STRIDE).length ** 2;
      log(
        `inspect ${k.name}: ${(mp / median(fused)).toFixed(2)} MP/s at stride ${STRIDE} (${patches} patches, ${median(fused).toFixed(3)} s per 1024x1024 map); separate steps (errors only) ${(mp / separate).toFixed(2)} MP/s, ratio ${(separate / median(fused)).toFixed(2)}x`,
      );
      results[`${k.channels === 1 ? 'grey' : 'rgb'}MegapixelsPerSecond`] = mp / median(fused);
      results[`${k.channels === 1 ? 'grey' : 'rgb'}SeparateStepsMegapixelsPerSecond`] = mp / separate;
    }
  } finally {
    await engine.release();
  }
  return { bench: 'inspect', stride: STRIDE, side: SIDE, threads: engine.threads, ...results };
}

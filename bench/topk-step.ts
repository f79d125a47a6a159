/**
 * The TopK SAE's training step at batch 4096, 768 -> 16384, k 32: the encoder product and TopK on
 * onnxruntime, the rest on the sparse kernels (native, and the TypeScript fallback), against PyTorch
 * doing the same step with a dense decoder (as SAELens) and with F.embedding_bag (as sparsify on a
 * CPU), in the same run. Also inference: sparse top-k encode throughput.
 */
import { architecture } from '../src/arch/index.js';
import { Engine, type KernelsChoice } from '../src/engine/index.js';
import { Rng } from '../src/rng.js';
import { saeOf } from '../src/sae.js';
import { initParams } from '../src/train/init.js';
import { StepRunner, type TrainSettings } from '../src/train/trainer.js';
import { median, randomArray, torchStep } from './util.js';

const SHAPE = { batch: 4096, dIn: 768, dSae: 16384, k: 32 } as const;

function settings(steps: number): TrainSettings {
  return {
    architecture: 'topk',
    dims: { dIn: SHAPE.dIn, dSae: SHAPE.dSae },
    hyper: architecture('topk').hyper.parse({ k: SHAPE.k }),
    schedule: { steps, lr: 4e-4, warmupSteps: 0, decaySteps: 0, decay: 'linear', decayTo: 0, coefficient: 1 / 32, coefWarmupSteps: 0 },
    adam: { beta1: 0.9, beta2: 0.999, eps: 1e-8 },
    unitNormDecoder: true,
    decoderInitNorm: 1,
    bDecInit: 'zeros',
    normalizeActivations: 'none',
    deadWindow: 1e9,
    seed: 0,
  };
}

async function ourStep(kernels: KernelsChoice, steps: number): Promise<{ stepS: number; name: string; encodeRowsPerS: number }> {
  const { batch: B, dIn, dSae } = SHAPE;
  const engine = new Engine({ threads: 2, kernels });
  const s = settings(steps + 1);
  const params = initParams(architecture('topk'), s.hyper, s.dims, new Rng(0), 1, engine.kernels);
  const runner = await StepRunner.create(engine, s, params);
  const x = randomArray(B * dIn, 1, 7);
  const noneDead = new Uint8Array(dSae); // no dead latents: no AuxK term (as in the PyTorch peers)
  const times: number[] = [];
  for (let i = 0; i <= steps; i++) {
    const t = performance.now();
    await runner.step(x.slice(), B, i, noneDead);
    if (i > 0) times.push((performance.now() - t) / 1000);
  }
  const sae = saeOf('topk', s.dims, s.hyper, params);
  const rows = 4 * B;
  const xs = randomArray(rows * dIn, 1, 8);
  await sae.encodeTopK(engine, xs.subarray(0, B * dIn), SHAPE.k);
  const t = performance.now();
  await sae.encodeTopK(engine, xs, SHAPE.k);
  const encodeRowsPerS = rows / ((performance.now() - t) / 1000);
  await engine.release();
  return { stepS: median(times), name: engine.kernels.name, encodeRowsPerS };
}

export interface TopKStepFigures {
  bench: 'topk_step';
  step_s: number;
  fallback_step_s: number;
  torch_dense_step_s: number | null;
  torch_embedding_bag_step_s: number | null;
  ratio_vs_torch_dense: number | null;
  ratio_vs_torch_embedding_bag: number | null;
  fallback_ratio_vs_torch_dense: number | null;
  encode_rows_per_s: number;
  kernels: string;
}

export async function benchTopKStep(log: (line: string) => void): Promise<TopKStepFigures> {
  const { batch: B, dIn, dSae, k } = SHAPE;
  const ours = await ourStep('auto', 3);
  log(`topk step (batch ${B}, ${dIn} -> ${dSae}, k ${k}, ${ours.name} kernels): ${ours.stepS.toFixed(3)} s/step, ${(B / ours.stepS).toFixed(0)} inputs/s`);
  log(`  inference: sparse top-k encode ${ours.encodeRowsPerS.toFixed(0)} rows/s`);
  const fallback = await ourStep('reference', 2);
  log(`  TypeScript fallback kernels: ${fallback.stepS.toFixed(3)} s/step`);
  const dense = torchStep([`topk-dense:${k}`, B, dIn, dSae])?.['step_s'] ?? null;
  const bag = torchStep([`topk-embedding_bag:${k}`, B, dIn, dSae])?.['step_s'] ?? null;
  const ratio = (a: number, b: number | null): number | null => (b === null ? null : a / b);
  if (dense !== null && bag !== null) {
    log(
      `  PyTorch dense decoder (SAELens style): ${dense.toFixed(3)} s/step; ours is ${(dense / ours.stepS).toFixed(1)}x faster (fallback ${(dense / fallback.stepS).toFixed(1)}x)`,
    );
    log(`  PyTorch embedding_bag (sparsify style): ${bag.toFixed(3)} s/step; ours is ${(bag / ours.stepS).toFixed(1)}x faster`);
  } else log('  PyTorch not found: no ratios');
  return {
    bench: 'topk_step',
    step_s: ours.stepS,
    fallback_step_s: fallback.stepS,
    torch_dense_step_s: dense,
    torch_embedding_bag_step_s: bag,
    ratio_vs_torch_dense: ratio(ours.stepS, dense),
    ratio_vs_torch_embedding_bag: ratio(ours.stepS, bag),
    fallback_ratio_vs_torch_dense: ratio(fallback.stepS, dense),
    encode_rows_per_s: ours.encodeRowsPerS,
    kernels: ours.name,
  };
}

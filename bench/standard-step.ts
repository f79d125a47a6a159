/**
 * The standard SAE's training step at batch 4096, 768 -> 16384 (onnxruntime forward + backward,
 * Adam on the kernels), against the same step in PyTorch run by the same script.
 */
import { architecture } from '../src/arch/index.js';
import { Engine } from '../src/engine/index.js';
import { GraphBuilder } from '../src/engine/onnx.js';
import { Rng } from '../src/rng.js';
import { initParams } from '../src/train/init.js';
import { StepRunner, type TrainSettings } from '../src/train/trainer.js';
import { median, peakRssMb, randomArray, torchStep } from './util.js';

export const SHAPE = { batch: 4096, dIn: 768, dSae: 16384 } as const;

function settings(steps: number): TrainSettings {
  return {
    architecture: 'standard',
    dims: { dIn: SHAPE.dIn, dSae: SHAPE.dSae },
    hyper: {},
    schedule: { steps, lr: 4e-4, warmupSteps: 0, decaySteps: 0, decay: 'linear', decayTo: 0, coefficient: 5, coefWarmupSteps: 0 },
    adam: { beta1: 0.9, beta2: 0.999, eps: 1e-8 },
    unitNormDecoder: false,
    decoderInitNorm: 0.1,
    bDecInit: 'zeros',
    normalizeActivations: 'none',
    deadWindow: 1e6,
    seed: 0,
  };
}

/** The five matrix products of the step alone, to measure onnxruntime's GEMM rate at these shapes. */
async function gemmRate(engine: Engine): Promise<number> {
  const { batch: B, dIn: D, dSae: S } = SHAPE;
  const graph = await engine.graph('bench:gemms', () => {
    const g = new GraphBuilder();
    const x = g.input('x', [B, D]);
    const wEnc = g.input('W_enc', [D, S]);
    const wDec = g.input('W_dec', [S, D]);
    const f = g.gemm(x, wEnc); // [B, S]
    const xHat = g.gemm(f, wDec); // [B, D]
    const dWdec = g.gemm(f, xHat, { transA: true }); // [S, D]
    const df = g.gemm(xHat, wDec, { transB: true }); // [B, S]
    const dWenc = g.gemm(x, df, { transA: true }); // [D, S]
    g.output(g.add(g.sum(dWdec), g.sum(dWenc)), 'y', []);
    return g.encode();
  });
  const feeds = {
    x: { data: randomArray(B * D, 1), dims: [B, D] },
    W_enc: { data: randomArray(D * S, 0.05, 2), dims: [D, S] },
    W_dec: { data: randomArray(S * D, 0.05, 3), dims: [S, D] },
  };
  await graph.run(feeds);
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    await graph.run(feeds);
    times.push((performance.now() - t) / 1000);
  }
  return (5 * 2 * B * D * S) / median(times) / 1e9;
}

export interface StandardStepFigures {
  bench: 'standard_step';
  step_s: number;
  inputs_per_s: number;
  step_gflops: number;
  gemm_gflops: number;
  peak_rss_mb: number;
  kernels: string;
  torch_step_s: number | null;
  ratio_vs_torch: number | null;
}

export async function benchStandardStep(log: (line: string) => void, steps = 3): Promise<StandardStepFigures> {
  const { batch: B, dIn: D, dSae: S } = SHAPE;
  const engine = new Engine({ threads: 2 });
  const s = settings(steps + 1);
  const params = initParams(architecture('standard'), {}, s.dims, new Rng(0), 0.1, engine.kernels);
  const runner = await StepRunner.create(engine, s, params);
  const x = randomArray(B * D, 1, 7);
  const deadMask = new Uint8Array(S);
  const times: number[] = [];
  for (let i = 0; i <= steps; i++) {
    const t = performance.now();
    await runner.step(x, B, i, deadMask);
    if (i > 0) times.push((performance.now() - t) / 1000); // the first step compiles the graph
  }
  const stepS = median(times);
  const peak = peakRssMb();
  const flops = 5 * 2 * B * D * S;
  log(
    `standard step (batch ${B}, ${D} -> ${S}, ${engine.kernels.name} kernels): ${stepS.toFixed(3)} s/step, ${(B / stepS).toFixed(0)} inputs/s, ${(flops / stepS / 1e9).toFixed(0)} GFLOP/s over the whole step, peak RSS ${peak.toFixed(0)} MB`,
  );
  const gemm = await gemmRate(engine);
  log(`  the step's five matrix products alone on onnxruntime: ${gemm.toFixed(0)} GFLOP/s`);
  await engine.release();
  const torch = torchStep(['standard', B, D, S]);
  const torchS = torch?.['step_s'] ?? null;
  if (torchS !== null)
    log(`  PyTorch ${torch?.['torch'] ?? ''} (2 threads, autograd, Adam): ${torchS.toFixed(3)} s/step; ours / PyTorch = ${(stepS / torchS).toFixed(2)}`);
  else log('  PyTorch not found (/usr/bin/python3 -c "import torch" failed): no ratio');
  return {
    bench: 'standard_step',
    step_s: stepS,
    inputs_per_s: B / stepS,
    step_gflops: flops / stepS / 1e9,
    gemm_gflops: gemm,
    peak_rss_mb: peak,
    kernels: engine.kernels.name,
    torch_step_s: torchS,
    ratio_vs_torch: torchS === null ? null : stepS / torchS,
  };
}

/**
 * The training step shared by the TopK family (topk, batchtopk, matryoshka): dead latents for AuxK,
 * the encoder and its per-row selection (sparse-encoder.ts), the architecture's choice of entries
 * among them, then the sparse decode, losses and backward (sparse-backward.ts).
 *   k_aux = min(aux_k, n_dead);  aux scale = min(n_dead / aux_k, 1);  aux_k defaults to d_in / 2
 */
import { paramsOf } from './common.js';
import type { Engine } from '../engine/index.js';
import { type ReconstructionLoss, sparsePass } from './sparse-backward.js';
import { deadBias, densify, firesOf, type Selection } from './sparse-code.js';
import { type EncoderOutput, runEncoder } from './sparse-encoder.js';
import type { Dims, Params, StepResult, TrainStep } from './types.js';
import { Workspace } from './workspace.js';

/** What an architecture of the family decides; the rest of the step is shared. */
export interface TopKFamily {
  /** The graph cache key's prefix (the architecture's name). */
  readonly name: string;
  /** Dead latents in the AuxK loss (default d_in / 2). */
  readonly auxK: number | undefined;
  readonly loss: ReconstructionLoss;
  /** Encode x - b_dec (default) or x (jumprelu's TopK warm-up, whose pre has no b_dec shift). */
  readonly applyBDec?: boolean;
  /** Matryoshka's nested prefix widths (default: one, dSae). */
  readonly prefixes?: readonly number[] | undefined;
  /** Entries per row the encoder returns, asked before every encoder call. */
  perRow(): number;
  /**
   * The step's entries from the encoder's per-row selection [rows, perRow()]; undefined: call the
   * encoder again (perRow() has changed). progress: the fraction of the run done (StepInputs).
   */
  select(enc: EncoderOutput, rows: number, progress: number): Selection | undefined;
  /** After the gradients: updates of state parameters in place, and what debug adds to the forward record. */
  finish?(params: Params, forward: Record<string, Float32Array> | undefined): void;
}

/** The step of a TopK-family architecture: see TopKFamily for what varies. */
export function topKFamilyStep(engine: Engine, d: Dims, family: TopKFamily, debug: boolean): TrainStep {
  const { dIn, dSae } = d;
  const auxK = family.auxK ?? Math.max(1, Math.floor(dIn / 2));
  const applyBDec = family.applyBDec ?? true;
  const workspace = debug ? undefined : new Workspace(); // debug results must outlive the step
  return {
    async run(params, inp): Promise<StepResult> {
      const B = inp.rows;
      const x = inp.x.subarray(0, B * dIn);
      const { bias, dead } = deadBias(inp.deadMask);
      const kAux = Math.min(auxK, dead);
      const aux = kAux > 0 ? { deadBias: bias, kAux } : undefined;
      for (;;) {
        const enc = await runEncoder(
          engine,
          `${family.name}:${dIn}x${dSae}`,
          d,
          { applyBDec, aux: aux !== undefined, debug },
          params,
          x,
          B,
          family.perRow(),
          aux,
        );
        const main = family.select(enc, B, inp.progress);
        if (main === undefined) continue;
        const pass = sparsePass(
          engine,
          d,
          params,
          x,
          B,
          { ...enc, main, auxScale: Math.min(dead / auxK, 1) },
          {
            loss: family.loss,
            auxCoefficient: inp.coef,
            ...(family.prefixes ? { prefixes: family.prefixes } : {}),
            ...(workspace ? { workspace } : {}),
          },
        );
        if (applyBDec) await pass.grads.finishBDec(engine, paramsOf(params, 'W_enc').W_enc);
        const forward: Record<string, Float32Array> = {};
        if (debug) {
          forward['pre'] = enc.pre!;
          forward['f'] = densify(main, pass.f, dSae);
          forward['x_hat'] = pass.xHat;
          forward['f_aux'] = enc.aux && pass.fAux ? densify(enc.aux, pass.fAux, dSae) : new Float32Array(B * dSae);
        }
        family.finish?.(params, debug ? forward : undefined);
        const fires = firesOf(engine.kernels, main, dSae);
        return { grads: pass.grads.record(), losses: pass.losses, fires, sse: pass.sse, variance: pass.variance, forward };
      }
    },
  };
}

/**
 * Learning-rate and sparsity-coefficient schedules, as functions of the step (0-based), so that a
 * resumed run computes the same values.
 *   lr: linear warm-up from 0 over `warmupSteps`, then constant, then a decay to `lr * decayTo` over
 *       the last `decaySteps` steps (linear or cosine).
 *   coefficient: linear warm-up from 0 over `coefWarmupSteps` (SAELens's l1_warm_up_steps).
 */

export interface ScheduleOptions {
  readonly steps: number;
  readonly lr: number;
  readonly warmupSteps: number;
  readonly decaySteps: number;
  readonly decay: 'linear' | 'cosine';
  /** Final learning rate as a fraction of lr. */
  readonly decayTo: number;
  readonly coefficient: number;
  readonly coefWarmupSteps: number;
}

export function learningRate(s: ScheduleOptions, step: number): number {
  if (step < s.warmupSteps) return (s.lr * (step + 1)) / s.warmupSteps;
  const decayStart = s.steps - s.decaySteps;
  if (s.decaySteps > 0 && step >= decayStart) {
    const t = Math.min(1, (step - decayStart + 1) / s.decaySteps); // 0 -> 1 over the decay
    const k = s.decay === 'cosine' ? 0.5 * (1 + Math.cos(Math.PI * t)) : 1 - t;
    return s.lr * (s.decayTo + (1 - s.decayTo) * k);
  }
  return s.lr;
}

export function sparsityCoefficient(s: ScheduleOptions, step: number): number {
  if (step < s.coefWarmupSteps) return (s.coefficient * (step + 1)) / s.coefWarmupSteps;
  return s.coefficient;
}

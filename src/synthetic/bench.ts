/**
 * The ground-truth recovery benchmark: every architecture of the table is trained on the same
 * synthetic stream (src/synthetic/generator.ts) at a matched sparsity, then scored by how well its
 * decoder rows recover the true features (MMCS, fraction above a cosine threshold), with L0 and FVU
 * on held-out inputs.
 *
 * Matched sparsity: each architecture has one sparsity knob. A knob that is the L0 itself (a top-k
 * `k`) is set to the target; any other (an L1 coefficient, a KL target rate) is searched: probe runs
 * of `searchSteps` steps (4x steps until the target is bracketed, then log-log interpolation) until
 * the held-out L0 is within `tolerance` of the target; then the full run, and, since L0 drifts as
 * training goes on, up to `maxCorrections` more full runs with the knob corrected (secant in log-log).
 * The full run nearest the target is scored. Each architecture's knob is its `recovery` field in the
 * table (src/arch/); a coefficient search starts at the architecture's default coefficient.
 */
import { architecture } from '../arch/index.js';
import type { Architecture, SparsityKnob } from '../arch/types.js';
import type { Engine } from '../engine/index.js';
import { evaluate, type Metrics } from '../eval.js';
import type { Sae } from '../sae.js';
import { Progress } from '../train/progress.js';
import type { OutStream } from '../io/terminal.js';
import { train, type TrainSettings } from '../train/trainer.js';
import { SyntheticData, type SyntheticBatch, type SyntheticSpec } from './generator.js';
import { type Peer, type PeerResult, type RecoveryScore, runPeers } from './peers.js';
import { maxCosines, recoveryScores } from './recovery.js';

export interface ArchSettings {
  readonly knob: SparsityKnob;
  /** Keep decoder rows at unit norm while training. */
  readonly unitNormDecoder: boolean;
  /** Learning rate as a multiple of the benchmark's. */
  readonly lrScale: number;
  /** Hyper-parameters besides the knob. */
  readonly hyper: Readonly<Record<string, unknown>>;
}

/** The benchmark's settings of an architecture at a target L0: its `recovery` field in the table, and hyper-parameters given for it. */
export function settingsFor(name: Architecture, targetL0: number, hyper: Readonly<Record<string, unknown>> = {}): ArchSettings {
  const recovery = architecture(name).recovery;
  return { knob: recovery.knob, unitNormDecoder: recovery.unitNormDecoder, lrScale: 1, hyper: { ...recovery.hyper?.(targetL0), ...hyper } };
}

export interface RecoveryBenchOptions {
  readonly data: SyntheticSpec;
  readonly dSae: number;
  readonly steps: number;
  readonly lr: number;
  /** The L0 every architecture is brought to. */
  readonly targetL0: number;
  readonly architectures: readonly Architecture[];
  /** Steps of each probe run of the sparsity search. */
  readonly searchSteps: number;
  readonly maxProbes: number;
  /** Full runs at most after the first one, to correct the knob when its L0 drifted. */
  readonly maxCorrections: number;
  /** Relative L0 error at which the search stops. */
  readonly tolerance: number;
  readonly evalRows: number;
  /** Cosine above which a true feature counts as recovered. */
  readonly threshold: number;
  readonly seed: number;
  /** Reference recipes to run on the same data (tools/peers_recovery.py, python3 + torch). */
  readonly peers?: readonly Peer[];
  /** Hyper-parameters by architecture, besides the knob (e.g. { batchtopk: { auxLatents: 'dead' } }). */
  readonly hyper?: Readonly<Partial<Record<Architecture, Readonly<Record<string, unknown>>>>>;
}

export const BENCH_DEFAULTS = {
  /**
   * The target L0 as a multiple of the data's L0 (n p). An L1 SAE pays for each active latent with
   * shrinkage: at the data's own L0 it must drop the weakest activations, and recovers less
   * (measured, standard, n p = 5.1: MMCS 0.979 at L0 5.2 and 0.999 at L0 6.7 after 6000 steps,
   * 0.9986 at L0 9.8 after 5000), so the default matches at 2 n p.
   */
  targetL0OverData: 2,
  dIn: 64,
  features: 256,
  dSae: 512,
  steps: 5000,
  lr: 3e-3,
  searchSteps: 800,
  maxProbes: 8,
  maxCorrections: 1,
  tolerance: 0.1,
  evalRows: 16_384,
  threshold: 0.9,
} as const;

export interface Probe {
  readonly value: number;
  readonly l0: number;
}

export interface ArchResult extends RecoveryScore {
  readonly architecture: Architecture;
  /** Seconds of the final run's training, and of the whole (search included). */
  readonly trainSeconds: number;
  readonly totalSeconds: number;
  /** Short probe runs of the search, and the full runs (the result is the one nearest the target L0). */
  readonly probes: readonly Probe[];
  readonly fullRuns: readonly Probe[];
}

export interface BenchReport {
  readonly targetL0: number;
  readonly trueL0: number;
  readonly results: readonly ArchResult[];
  /** The peers' figures on the same data (with --peers). */
  readonly peers?: readonly PeerResult[];
  readonly seconds: number;
}

/** Where the benchmark reports: a line per event, and the trainer's progress bar. */
export interface BenchLog {
  readonly stream: OutStream;
  readonly quiet: boolean;
}

interface Trained {
  readonly sae: Sae;
  readonly metrics: Metrics;
  readonly seconds: number;
}

function knobName(arch: Architecture, knob: SparsityKnob): string {
  return knob.kind === 'coefficient' ? architecture(arch).coefficient.name : knob.key;
}

function trainSettings(o: RecoveryBenchOptions, arch: Architecture, s: ArchSettings, value: number, steps: number): TrainSettings {
  const def = architecture(arch);
  const knobHyper = s.knob.kind === 'coefficient' ? {} : { [s.knob.key]: value };
  return {
    architecture: arch,
    dims: { dIn: o.data.dIn, dSae: o.dSae },
    hyper: def.hyper.parse({ ...s.hyper, ...knobHyper }),
    schedule: {
      steps,
      lr: o.lr * s.lrScale,
      warmupSteps: Math.floor(steps / 20),
      decaySteps: Math.floor(steps / 5),
      decay: 'linear',
      decayTo: 0,
      coefficient: s.knob.kind === 'coefficient' ? value : def.coefficient.default,
      coefWarmupSteps: Math.floor(steps / 20),
    },
    adam: { beta1: 0.9, beta2: 0.999, eps: 1e-8 },
    unitNormDecoder: s.unitNormDecoder,
    decoderInitNorm: 0.1,
    bDecInit: 'geometric_median',
    normalizeActivations: 'none',
    deadWindow: 100 * o.data.batchSize,
    seed: o.seed,
  };
}

// eslint-disable-next-line @typescript-eslint/require-await -- an AsyncIterable (what evaluate takes) of rows already in memory
async function* chunksOf(b: SyntheticBatch, dIn: number, rows = 4096): AsyncGenerator<{ x: Float32Array; rows: number }> {
  for (let r = 0; r < b.rows; r += rows) {
    const n = Math.min(rows, b.rows - r);
    yield { x: b.x.subarray(r * dIn, (r + n) * dIn), rows: n };
  }
}

async function trainOne(
  engine: Engine,
  data: SyntheticData,
  evalSet: SyntheticBatch,
  s: TrainSettings,
  log: BenchLog,
  showProgress: boolean,
): Promise<Trained> {
  const progress = new Progress({ stream: log.stream, every: Math.max(1, Math.floor(s.schedule.steps / 10)), quiet: log.quiet || !showProgress });
  const r = await train(engine, s, data, { checkpointEvery: 0, progress, key: 'bench-recovery', sampleRows: 4096 });
  const metrics = (await evaluate(engine, r.sae, chunksOf(evalSet, s.dims.dIn))).metrics();
  return { sae: r.sae, metrics, seconds: r.seconds };
}

/**
 * The next value of a knob whose L0 grows with it (a rate) or falls with it (a coefficient): log-log
 * interpolation inside the bracket of the probes so far (kept off its ends), else a step of 4x.
 */
export function nextKnobValue(probes: readonly Probe[], target: number, l0GrowsWithValue: boolean, max = Infinity): number {
  const tooSparse = (p: Probe): boolean => p.l0 < target;
  // the largest value known to need growing, and the smallest known to need shrinking
  const up = probes.filter((p) => tooSparse(p) === l0GrowsWithValue).map((p) => p.value);
  const down = probes.filter((p) => tooSparse(p) !== l0GrowsWithValue).map((p) => p.value);
  const lo = up.length ? Math.max(...up) : undefined;
  const hi = down.length ? Math.min(...down) : undefined;
  if (lo !== undefined && hi !== undefined) {
    const at = (v: number): Probe => probes.find((p) => p.value === v)!;
    const [a, b] = [at(lo), at(hi)];
    const t = a.l0 > 0 && b.l0 > 0 && a.l0 !== b.l0 ? Math.log(target / a.l0) / Math.log(b.l0 / a.l0) : 0.5;
    return Math.exp(Math.log(lo) + Math.min(0.9, Math.max(0.1, t)) * Math.log(hi / lo));
  }
  if (lo !== undefined) return Math.min(lo * 4, (lo + max) / 2);
  return hi! / 4;
}

function relativeMiss(l0: number, target: number): number {
  return Math.abs(l0 / target - 1);
}

/** The knob value whose short probe run is nearest the target L0, and the probes. */
async function searchKnob(
  engine: Engine,
  data: SyntheticData,
  evalSet: SyntheticBatch,
  o: RecoveryBenchOptions,
  arch: Architecture,
  s: ArchSettings,
  log: BenchLog,
): Promise<{ value: number; probes: Probe[] }> {
  const knob = s.knob;
  if (knob.kind === 'l0') return { value: Math.max(1, Math.round(o.targetL0)), probes: [] };
  const grows = knob.kind === 'rate';
  const max = knob.kind === 'rate' ? knob.max : Infinity;
  const probes: Probe[] = [];
  let value = knob.kind === 'rate' ? knob.start : architecture(arch).coefficient.default;
  for (let i = 0; i < o.maxProbes; i++) {
    const t = await trainOne(engine, data, evalSet, trainSettings(o, arch, s, value, o.searchSteps), log, false);
    probes.push({ value, l0: t.metrics.l0 });
    say(
      log,
      `  ${arch}: probe of ${o.searchSteps} steps, ${knobName(arch, knob)} = ${value.toPrecision(4)} -> L0 ${t.metrics.l0.toFixed(2)} (target ${o.targetL0.toFixed(2)})`,
    );
    if (relativeMiss(t.metrics.l0, o.targetL0) <= o.tolerance) break;
    value = nextKnobValue(probes, o.targetL0, grows, max);
  }
  const best = probes.reduce((a, b) => (Math.abs(Math.log(b.l0 / o.targetL0)) < Math.abs(Math.log(a.l0 / o.targetL0)) ? b : a));
  return { value: best.value, probes };
}

function say(log: BenchLog, line: string): void {
  if (!log.quiet) log.stream.write(`${line}\n`);
}

/**
 * The knob for the next full run, from the full runs so far: the secant in log-log through the last
 * two, or, after one, an elasticity of 1 in size (L0 ~ 1 / coefficient: short probes overstate it,
 * as L0 keeps drifting after them); the size kept within [0.5, 2], a step at most 4x.
 */
export function correctedValue(runs: readonly Probe[], target: number, l0GrowsWithValue: boolean): number {
  const last = runs[runs.length - 1]!;
  const prev = runs[runs.length - 2];
  const sign = l0GrowsWithValue ? 1 : -1;
  let e = sign;
  if (prev && prev.value !== last.value && prev.l0 > 0 && last.l0 > 0) {
    const secant = Math.log(last.l0 / prev.l0) / Math.log(last.value / prev.value);
    if (Math.sign(secant) === sign) e = secant;
  }
  e = sign * Math.min(2, Math.max(0.5, Math.abs(e)));
  const step = (target / Math.max(last.l0, 1e-3)) ** (1 / e);
  return last.value * Math.min(4, Math.max(0.25, step));
}

export async function benchArchitecture(
  engine: Engine,
  data: SyntheticData,
  evalSet: SyntheticBatch,
  o: RecoveryBenchOptions,
  arch: Architecture,
  log: BenchLog,
): Promise<ArchResult> {
  const start = performance.now();
  const s = settingsFor(arch, o.targetL0, o.hyper?.[arch]);
  const name = knobName(arch, s.knob);
  const found = await searchKnob(engine, data, evalSet, o, arch, s, log);
  let value = found.value;
  const runs: Probe[] = [];
  let best: { t: Trained; value: number } | undefined;
  // L0 drifts as training goes on: a full run that misses the target corrects the knob and runs again.
  for (;;) {
    say(log, `  ${arch}: training ${o.steps} steps with ${name} = ${value.toPrecision(4)}`);
    const t = await trainOne(engine, data, evalSet, trainSettings(o, arch, s, value, o.steps), log, true);
    runs.push({ value, l0: t.metrics.l0 });
    if (!best || relativeMiss(t.metrics.l0, o.targetL0) < relativeMiss(best.t.metrics.l0, o.targetL0)) best = { t, value };
    if (s.knob.kind === 'l0' || relativeMiss(t.metrics.l0, o.targetL0) <= o.tolerance || runs.length > o.maxCorrections) break;
    say(
      log,
      `  ${arch}: L0 ${t.metrics.l0.toFixed(2)} after the full run misses the target by more than ${(o.tolerance * 100).toFixed(0)}%; correcting ${name}`,
    );
    value = correctedValue(runs, o.targetL0, s.knob.kind === 'rate');
    if (s.knob.kind === 'rate') value = Math.min(value, (runs[runs.length - 1]!.value + s.knob.max) / 2);
  }
  const { t } = best;
  const { dIn, features } = o.data;
  const maxCos = await maxCosines(engine, data.features, features, t.sae.param('W_dec'), o.dSae, dIn);
  const scores = recoveryScores(maxCos, o.threshold);
  return {
    architecture: arch,
    knob: name,
    value: best.value,
    mmcs: scores.mmcs,
    recovered: scores.recovered,
    l0: t.metrics.l0,
    fvu: t.metrics.fvu,
    deadFraction: t.metrics.dead_fraction,
    trainSeconds: t.seconds,
    totalSeconds: (performance.now() - start) / 1000,
    probes: found.probes,
    fullRuns: runs,
  };
}

/** Mean number of active features per input in a batch of codes: [rows, n]. */
export function meanL0(codes: Float32Array, rows: number): number {
  let active = 0;
  for (const a of codes) if (a !== 0) active++;
  return active / Math.max(1, rows);
}

export async function runRecoveryBench(engine: Engine, o: RecoveryBenchOptions, log: BenchLog): Promise<BenchReport> {
  const start = performance.now();
  const data = new SyntheticData(engine, o.data);
  const evalSet = await data.evalSet(o.evalRows);
  const results: ArchResult[] = [];
  for (const arch of o.architectures) {
    say(log, `${arch}:`);
    results.push(await benchArchitecture(engine, data, evalSet, o, arch, log));
  }
  const peers = o.peers?.length
    ? await runPeers({ ...o, peers: o.peers, threads: engine.threads }, data.features, evalSet, log.quiet ? undefined : log.stream)
    : undefined;
  return {
    targetL0: o.targetL0,
    trueL0: meanL0(evalSet.codes, evalSet.rows),
    results,
    ...(peers ? { peers } : {}),
    seconds: (performance.now() - start) / 1000,
  };
}

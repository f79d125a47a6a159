/** sae bench-recovery: the ground-truth recovery benchmark (see src/synthetic/bench.ts). */
import { ARCHITECTURES, architecture } from '../../arch/index.js';
import type { Architecture } from '../../arch/types.js';
import { Engine, kernelsChoice } from '../../engine/index.js';
import { UserError } from '../../errors.js';
import { writeFileAtomic } from '../../io/atomic.js';
import { BENCH_DEFAULTS, type BenchReport, type RecoveryBenchOptions, runRecoveryBench } from '../../synthetic/bench.js';
import { checkSyntheticSpec, type Magnitude, SYNTHETIC_DEFAULTS, type SyntheticSpec } from '../../synthetic/generator.js';
import { formatDuration } from '../../train/progress.js';
import type { OptionSpec } from '../args.js';
import { commandArgs, type Command, print } from '../command.js';

const D = BENCH_DEFAULTS;
const S = SYNTHETIC_DEFAULTS;

const options: OptionSpec[] = [
  { flag: 'd-in', key: 'dIn', kind: 'integer', help: `input dimension d (default ${D.dIn})`, group: 'data' },
  { flag: 'features', key: 'features', kind: 'integer', help: `true features n (default ${D.features})`, group: 'data' },
  { flag: 'firing-probability', key: 'firingProbability', kind: 'number', help: `probability that a feature is active (default ${S.firingProbability})`, group: 'data' },
  { flag: 'magnitude', key: 'magnitude', kind: 'string', help: 'magnitudes of active features: constant:V | uniform:LOW:HIGH | exponential:MEAN (default uniform:0.5:1.5)', group: 'data' },
  { flag: 'group-size', key: 'groupSize', kind: 'integer', help: 'features per correlated group (default 1: none)', group: 'data' },
  { flag: 'group-correlation', key: 'groupCorrelation', kind: 'number', help: 'firing correlation within a group, in [0, 1] (default 0)', group: 'data' },
  { flag: 'noise', key: 'noise', kind: 'number', help: 'standard deviation of Gaussian noise per coordinate (default 0)', group: 'data' },
  { flag: 'seed', key: 'seed', kind: 'integer', help: 'seed of the features, the data and the initialisation (default 0)', group: 'data' },

  { flag: 'architectures', key: 'architectures', kind: 'string', help: `comma-separated (default all: ${ARCHITECTURES.join(',')})`, group: 'training' },
  { flag: 'd-sae', key: 'dSae', kind: 'integer', help: `latents of every SAE (default ${D.dSae})`, group: 'training' },
  { flag: 'steps', key: 'steps', kind: 'integer', help: `training steps (default ${D.steps})`, group: 'training' },
  { flag: 'batch-size', key: 'batchSize', kind: 'integer', help: `inputs per step (default ${S.batchSize})`, group: 'training' },
  { flag: 'lr', key: 'lr', kind: 'number', help: `Adam learning rate (default ${D.lr})`, group: 'training' },
  { flag: 'target-l0', key: 'targetL0', kind: 'number', help: `the matched sparsity (default ${D.targetL0OverData} n p, ${D.targetL0OverData} x the data's own L0)`, group: 'training' },
  { flag: 'search-steps', key: 'searchSteps', kind: 'integer', help: `steps of each probe run of the sparsity search (default ${D.searchSteps})`, group: 'training' },
  { flag: 'max-probes', key: 'maxProbes', kind: 'integer', help: `probe runs at most per architecture (default ${D.maxProbes})`, group: 'training' },
  { flag: 'max-corrections', key: 'maxCorrections', kind: 'integer', help: `extra full runs when the first misses the target L0 (default ${D.maxCorrections})`, group: 'training' },
  { flag: 'tolerance', key: 'tolerance', kind: 'number', help: `relative L0 error that ends the search (default ${D.tolerance})`, group: 'training' },

  { flag: 'eval-rows', key: 'evalRows', kind: 'integer', help: `held-out inputs for L0 and FVU (default ${D.evalRows})`, group: 'output' },
  { flag: 'threshold', key: 'threshold', kind: 'number', help: `cosine above which a feature counts as recovered (default ${D.threshold})`, group: 'output' },
  { flag: 'out', key: 'out', kind: 'string', help: 'write the results as JSON to this file', group: 'output' },
  { flag: 'threads', key: 'threads', kind: 'integer', help: 'threads (default: every core)', group: 'output' },
  { flag: 'kernels', key: 'kernels', kind: 'string', help: 'auto | native | reference (default auto)', group: 'output' },
  { flag: 'quiet', key: 'quiet', kind: 'boolean', help: 'no progress output', group: 'output' },
];

/** "uniform:0.5:1.5" -> a Magnitude. */
export function parseMagnitude(text: string): Magnitude {
  const [kind, ...rest] = text.split(':');
  const nums = rest.map(Number);
  const bad = (): never => {
    throw new UserError(`--magnitude: expected constant:V, uniform:LOW:HIGH or exponential:MEAN, got '${text}'`);
  };
  if (rest.some((r) => r.trim() === '') || nums.some((v) => !Number.isFinite(v))) bad();
  if (kind === 'constant' && nums.length === 1) return { kind, value: nums[0]! };
  if (kind === 'uniform' && nums.length === 2) return { kind, low: nums[0]!, high: nums[1]! };
  if (kind === 'exponential' && nums.length === 1) return { kind, mean: nums[0]! };
  return bad();
}

function parseArchitectures(text: string | undefined): Architecture[] {
  if (text === undefined) return [...ARCHITECTURES];
  const names = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (names.length === 0) throw new UserError('--architectures: name at least one');
  return names.map((n) => architecture(n).name);
}

function num(v: Record<string, unknown>, key: string, fallback: number): number {
  const x = v[key];
  return typeof x === 'number' ? x : fallback;
}

/** The benchmark's options from the flags, checked. */
export function benchOptionsFrom(v: Record<string, unknown>): RecoveryBenchOptions {
  const data: SyntheticSpec = {
    dIn: num(v, 'dIn', D.dIn),
    features: num(v, 'features', D.features),
    firingProbability: num(v, 'firingProbability', S.firingProbability),
    magnitude: typeof v['magnitude'] === 'string' ? parseMagnitude(v['magnitude']) : S.magnitude,
    groupSize: num(v, 'groupSize', S.groupSize),
    groupCorrelation: num(v, 'groupCorrelation', S.groupCorrelation),
    noise: num(v, 'noise', S.noise),
    batchSize: num(v, 'batchSize', S.batchSize),
    seed: num(v, 'seed', S.seed),
  };
  try {
    checkSyntheticSpec(data);
  } catch (e) {
    // name the flag: "synthetic data: groupSize must be ..." -> "--group-size must be ..."
    const message = e instanceof Error ? e.message : String(e);
    const field = /^synthetic data: (\w+)/.exec(message)?.[1];
    const flag = options.find((o) => o.key === field)?.flag;
    throw new UserError(flag ? message.replace(`synthetic data: ${field}`, `--${flag}`) : message);
  }
  const o: RecoveryBenchOptions = {
    data,
    dSae: num(v, 'dSae', D.dSae),
    steps: num(v, 'steps', D.steps),
    lr: num(v, 'lr', D.lr),
    targetL0: num(v, 'targetL0', D.targetL0OverData * data.features * data.firingProbability),
    architectures: parseArchitectures(typeof v['architectures'] === 'string' ? v['architectures'] : undefined),
    searchSteps: num(v, 'searchSteps', D.searchSteps),
    maxProbes: num(v, 'maxProbes', D.maxProbes),
    maxCorrections: num(v, 'maxCorrections', D.maxCorrections),
    tolerance: num(v, 'tolerance', D.tolerance),
    evalRows: num(v, 'evalRows', D.evalRows),
    threshold: num(v, 'threshold', D.threshold),
    seed: data.seed,
  };
  const positive: (keyof RecoveryBenchOptions)[] = ['dSae', 'steps', 'lr', 'targetL0', 'searchSteps', 'maxProbes', 'tolerance', 'evalRows'];
  for (const k of positive) {
    if (!((o[k] as number) > 0)) throw new UserError(`--${options.find((s) => s.key === k)!.flag} must be positive, got ${String(o[k])}`);
  }
  if (!(Number.isInteger(o.maxCorrections) && o.maxCorrections >= 0)) throw new UserError(`--max-corrections must be a non-negative integer, got ${o.maxCorrections}`);
  if (!(o.threshold > -1 && o.threshold < 1)) throw new UserError(`--threshold must be in (-1, 1), got ${o.threshold}`);
  return o;
}

export function formatBenchTable(r: BenchReport): string {
  const head = ['architecture', 'knob', 'value', 'MMCS', 'recovered', 'L0', 'FVU', 'dead', 'train s', 'total s'];
  const rows = r.results.map((a) => [
    a.architecture,
    a.knob,
    a.value.toPrecision(3),
    a.mmcs.toFixed(4),
    `${(a.recovered * 100).toFixed(1)}%`,
    a.l0.toFixed(2),
    a.fvu.toFixed(4),
    `${(a.deadFraction * 100).toFixed(1)}%`,
    a.trainSeconds.toFixed(0),
    a.totalSeconds.toFixed(0),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), ...rows.map(line)].join('\n');
}

export const benchRecoveryCommand: Command = {
  name: 'bench-recovery',
  summary:
    'Ground-truth recovery benchmark: trains every architecture at a matched L0 on synthetic sparse combinations of known unit-norm features and prints how well each recovers them (MMCS, fraction above 0.9 cosine), with L0 and FVU.',
  usage: 'sae bench-recovery [options]',
  options,
  async run(argv, io) {
    const args = commandArgs(this, argv, io);
    if (!args) return 0;
    if (args.positionals.length) throw new UserError(`unexpected argument '${args.positionals[0]}' (see sae bench-recovery --help)`);
    const v = args.values;
    const o = benchOptionsFrom(v);
    const out = typeof v['out'] === 'string' ? v['out'] : undefined;
    if (out !== undefined) await writeFileAtomic(out, '{}\n'); // fail now, not after the benchmark, if it cannot be written
    const engine = new Engine({
      ...(typeof v['threads'] === 'number' ? { threads: v['threads'] } : {}),
      ...(typeof v['kernels'] === 'string' ? { kernels: kernelsChoice(v['kernels']) } : {}),
      warn: (m) => print(io.stderr, m),
    });
    const quiet = v['quiet'] === true;
    const { dIn, features, firingProbability } = o.data;
    if (!quiet) {
      print(io.stderr, `recovery benchmark: n = ${features} features in d = ${dIn}, p = ${firingProbability}, SAEs ${dIn} -> ${o.dSae}, ${o.steps} steps of ${o.data.batchSize}, target L0 ${o.targetL0.toFixed(2)}, ${engine.threads} threads`);
    }
    try {
      const report = await runRecoveryBench(engine, o, { stream: io.stderr, quiet });
      print(io.stdout, `${formatBenchTable(report)}\nd = ${dIn}, n = ${features}, true L0 ${report.trueL0.toFixed(2)}, recovered: max cosine > ${o.threshold}; ${formatDuration(report.seconds)} in all`);
      if (out !== undefined) {
        await writeFileAtomic(out, `${JSON.stringify({ options: o, ...report }, null, 2)}\n`);
        print(io.stdout, `wrote ${out}`);
      }
    } finally {
      await engine.release();
    }
    return 0;
  },
};

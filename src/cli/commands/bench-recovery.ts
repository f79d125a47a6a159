/** sae bench-recovery: the ground-truth recovery benchmark (see src/synthetic/bench.ts). */
import { ARCHITECTURES, architecture } from '../../arch/index.js';
import type { Architecture } from '../../arch/types.js';
import { UserError } from '../../errors.js';
import { writeFileAtomic } from '../../io/atomic.js';
import { isRecord } from '../../io/json.js';
import { BENCH_DEFAULTS, type BenchReport, type RecoveryBenchOptions, runRecoveryBench } from '../../synthetic/bench.js';
import { PEERS } from '../../synthetic/peers.js';
import { checkSyntheticSpec, type Magnitude, SYNTHETIC_DEFAULTS, type SyntheticSpec } from '../../synthetic/generator.js';
import { formatDuration } from '../../io/terminal.js';
import { kebab, type Parsed } from '../args.js';
import { defineCommand, print } from '../command.js';
import { ENGINE_OPTIONS, engineOf } from './inference-data.js';

const D = BENCH_DEFAULTS;
const S = SYNTHETIC_DEFAULTS;

const spec = {
  name: 'bench-recovery',
  summary:
    'Ground-truth recovery benchmark: trains every architecture at a matched L0 on synthetic sparse combinations of known unit-norm features and prints how well each recovers them (MMCS, fraction above 0.9 cosine), with L0 and FVU.',
  usage: 'sae bench-recovery [options]',
  options: {
    dIn: { kind: 'integer', help: `input dimension d (default ${D.dIn})`, group: 'data', default: D.dIn },
    features: { kind: 'integer', help: `true features n (default ${D.features})`, group: 'data', default: D.features },
    firingProbability: {
      kind: 'number',
      help: `probability that a feature is active (default ${S.firingProbability})`,
      group: 'data',
      default: S.firingProbability,
    },
    magnitude: {
      kind: 'string',
      help: 'magnitudes of active features: constant:V | uniform:LOW:HIGH | exponential:MEAN (default uniform:0.5:1.5)',
      group: 'data',
    },
    groupSize: { kind: 'integer', help: 'features per correlated group (default 1: none)', group: 'data', default: S.groupSize },
    groupCorrelation: { kind: 'number', help: 'firing correlation within a group, in [0, 1] (default 0)', group: 'data', default: S.groupCorrelation },
    noise: { kind: 'number', help: 'standard deviation of Gaussian noise per coordinate (default 0)', group: 'data', default: S.noise },
    seed: { kind: 'integer', help: 'seed of the features, the data and the initialisation (default 0)', group: 'data', default: S.seed },

    architectures: { kind: 'string', help: `comma-separated (default all: ${ARCHITECTURES.join(',')})`, group: 'training' },
    peers: {
      kind: 'boolean',
      help: `also train the reference recipes on the same data (${PEERS.join(', ')}; python3 with torch, tools/peers_recovery.py)`,
      group: 'training',
      default: false,
    },
    hyper: { kind: 'string', help: 'JSON of hyper-parameters by architecture, e.g. \'{"jumprelu":{"preActCoefficient":0.01}}\'', group: 'training' },
    dSae: { kind: 'integer', help: `latents of every SAE (default ${D.dSae})`, group: 'training', default: D.dSae, min: 1 },
    steps: { kind: 'integer', help: `training steps (default ${D.steps})`, group: 'training', default: D.steps, min: 1 },
    batchSize: { kind: 'integer', help: `inputs per step (default ${S.batchSize})`, group: 'training', default: S.batchSize },
    lr: { kind: 'number', help: `Adam learning rate (default ${D.lr})`, group: 'training', default: D.lr },
    targetL0: {
      kind: 'number',
      help: `the matched sparsity (default ${D.targetL0OverData} n p, ${D.targetL0OverData} x the data's own L0)`,
      group: 'training',
    },
    searchSteps: {
      kind: 'integer',
      help: `steps of each probe run of the sparsity search (default ${D.searchSteps})`,
      group: 'training',
      default: D.searchSteps,
      min: 1,
    },
    maxProbes: { kind: 'integer', help: `probe runs at most per architecture (default ${D.maxProbes})`, group: 'training', default: D.maxProbes, min: 1 },
    maxCorrections: {
      kind: 'integer',
      help: `extra full runs when the first misses the target L0 (default ${D.maxCorrections})`,
      group: 'training',
      default: D.maxCorrections,
      min: 0,
    },
    tolerance: { kind: 'number', help: `relative L0 error that ends the search (default ${D.tolerance})`, group: 'training', default: D.tolerance },

    evalRows: { kind: 'integer', help: `held-out inputs for L0 and FVU (default ${D.evalRows})`, group: 'output', default: D.evalRows, min: 1 },
    threshold: { kind: 'number', help: `cosine above which a feature counts as recovered (default ${D.threshold})`, group: 'output', default: D.threshold },
    out: { kind: 'string', help: 'write the results as JSON to this file', group: 'output' },
    threads: { ...ENGINE_OPTIONS.threads, group: 'output' },
    kernels: { ...ENGINE_OPTIONS.kernels, group: 'output' },
    quiet: { kind: 'boolean', help: 'no progress output', group: 'output', default: false },
  },
} as const;

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
  const names = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (names.length === 0) throw new UserError('--architectures: name at least one');
  return names.map((n) => architecture(n).name);
}

/** --hyper: {"arch": {key: value}}, each architecture's hyper-parameters checked by its schema now. */
function parseHyper(text: string): Partial<Record<Architecture, Record<string, unknown>>> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new UserError(`--hyper: not JSON: ${text}`);
  }
  if (!isRecord(v)) throw new UserError('--hyper: expected a JSON object of hyper-parameters by architecture');
  const out: Partial<Record<Architecture, Record<string, unknown>>> = {};
  for (const [name, h] of Object.entries(v)) {
    const def = architecture(name);
    if (!isRecord(h)) throw new UserError(`--hyper: ${name}: expected an object of hyper-parameters`);
    const parsed = def.hyper.safeParse(h);
    if (!parsed.success) throw new UserError(`--hyper: ${name}: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'value'}: ${i.message}`).join('; ')}`);
    out[def.name] = h;
  }
  return out;
}

/** The benchmark's options from the flags, checked. */
export function benchOptionsFrom(v: Parsed<typeof spec>): RecoveryBenchOptions {
  const { dIn, features, firingProbability, groupSize, groupCorrelation, noise, batchSize, seed } = v;
  const data: SyntheticSpec = {
    dIn,
    features,
    firingProbability,
    magnitude: v.magnitude !== undefined ? parseMagnitude(v.magnitude) : S.magnitude,
    groupSize,
    groupCorrelation,
    noise,
    batchSize,
    seed,
  };
  try {
    checkSyntheticSpec(data);
  } catch (e) {
    // name the flag: "synthetic data: groupSize must be ..." -> "--group-size must be ..."
    const message = e instanceof Error ? e.message : String(e);
    const field = /^synthetic data: (\w+)/.exec(message)?.[1];
    const flag = field !== undefined && field in spec.options ? kebab(field) : undefined;
    throw new UserError(flag ? message.replace(`synthetic data: ${field}`, `--${flag}`) : message);
  }
  const { dSae, steps, lr, searchSteps, maxProbes, maxCorrections, tolerance, evalRows, threshold } = v;
  const targetL0 = v.targetL0 ?? D.targetL0OverData * data.features * data.firingProbability;
  const architectures = parseArchitectures(v.architectures);
  const hyper = v.hyper !== undefined ? parseHyper(v.hyper) : undefined;
  const o: RecoveryBenchOptions = {
    data,
    dSae,
    steps,
    lr,
    targetL0,
    architectures,
    searchSteps,
    maxProbes,
    maxCorrections,
    tolerance,
    evalRows,
    threshold,
    seed,
    ...(hyper ? { hyper } : {}),
    ...(v.peers ? { peers: PEERS } : {}),
  };
  for (const k of ['lr', 'targetL0', 'tolerance'] as const) {
    if (!(o[k] > 0)) throw new UserError(`--${kebab(k)} must be positive, got ${String(o[k])}`);
  }
  if (!(o.threshold > -1 && o.threshold < 1)) throw new UserError(`--threshold must be in (-1, 1), got ${o.threshold}`);
  return o;
}

export function formatBenchTable(r: BenchReport): string {
  const head = ['architecture', 'knob', 'value', 'MMCS', 'recovered', 'L0', 'FVU', 'dead', 'train s', 'total s'];
  const rows = [...r.results, ...(r.peers ?? []).map((p) => ({ ...p, trainSeconds: p.seconds, totalSeconds: p.seconds }))].map((a) => [
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

export const benchRecoveryCommand = defineCommand(spec, async (v, io) => {
  const o = benchOptionsFrom(v);
  const { out, quiet } = v;
  if (out !== undefined) await writeFileAtomic(out, '{}\n'); // fail now, not after the benchmark, if it cannot be written
  const engine = engineOf(v, io);
  const { dIn, features, firingProbability } = o.data;
  if (!quiet) {
    print(
      io.stderr,
      `recovery benchmark: n = ${features} features in d = ${dIn}, p = ${firingProbability}, SAEs ${dIn} -> ${o.dSae}, ${o.steps} steps of ${o.data.batchSize}, target L0 ${o.targetL0.toFixed(2)}, ${engine.threads} threads`,
    );
  }
  try {
    const report = await runRecoveryBench(engine, o, { stream: io.stderr, quiet });
    print(
      io.stdout,
      `${formatBenchTable(report)}\nd = ${dIn}, n = ${features}, true L0 ${report.trueL0.toFixed(2)}, recovered: max cosine > ${o.threshold}; ${formatDuration(report.seconds)} in all`,
    );
    if (out !== undefined) {
      await writeFileAtomic(out, `${JSON.stringify({ options: o, ...report }, null, 2)}\n`);
      print(io.stdout, `wrote ${out}`);
    }
  } finally {
    await engine.release();
  }
  return 0;
});

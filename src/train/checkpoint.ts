/**
 * Training checkpoints: one safetensors file holding the parameters, the Adam moments and the
 * dead-latent counters, with the step, the input scale and the settings key in its metadata.
 * Written to a temporary file and renamed, so a good checkpoint is never replaced by a partial one.
 */
import type { Params } from '../arch/types.js';
import { fileError } from '../errors.js';
import { type TensorToWrite, readSafetensors, toFloat32, writeSafetensors } from '../io/safetensors.js';
import { DeadTracker } from './dead.js';
import type { StepStats } from './progress.js';

const FORMAT = 'sparse-autoencoder-checkpoint/1';

export interface Checkpoint {
  /** Steps done. */
  readonly step: number;
  readonly params: Params;
  readonly m: Params;
  readonly v: Params;
  readonly dead: DeadTracker;
  /** Factor the inputs are multiplied by (normalisation). */
  readonly scale: number;
  /** The settings it belongs to (see resumeKey). */
  readonly key: string;
  /** The figures of its last step (none at step 0): what a resumed, already finished run reports. */
  readonly lastStats?: StepStats | undefined;
}

export async function saveCheckpoint(path: string, c: Checkpoint): Promise<void> {
  const tensors: Record<string, TensorToWrite> = {};
  const put = (prefix: string, params: Params): void => {
    for (const [name, p] of Object.entries(params)) tensors[`${prefix}.${name}`] = { dtype: 'F32', shape: [p.length], data: p };
  };
  put('param', c.params);
  put('adam_m', c.m);
  put('adam_v', c.v);
  tensors['dead.last_fired'] = { dtype: 'I64', shape: [c.dead.dSae], data: BigInt64Array.from(c.dead.lastFired, (x) => BigInt(x)) };
  await writeSafetensors(path, tensors, {
    format: FORMAT,
    step: String(c.step),
    seen: String(c.dead.seen),
    dead_window: String(c.dead.window),
    scale: String(c.scale),
    key: c.key,
    ...(c.lastStats !== undefined ? { last_stats: JSON.stringify(c.lastStats) } : {}),
  });
}

export async function loadCheckpoint(path: string): Promise<Checkpoint> {
  const { tensors, metadata } = await readSafetensors(path);
  if (metadata['format'] !== FORMAT) throw fileError(path, `not a checkpoint of this trainer (format '${metadata['format'] ?? 'none'}')`);
  const numberField = (name: string): number => {
    const v = Number(metadata[name]);
    if (!Number.isFinite(v)) throw fileError(path, `checkpoint metadata '${name}' is missing or not a number`);
    return v;
  };
  const group = (prefix: string): Params => {
    const out: Params = {};
    for (const [name, t] of tensors) if (name.startsWith(`${prefix}.`)) out[name.slice(prefix.length + 1)] = toFloat32(t, path);
    return out;
  };
  const lastFired = tensors.get('dead.last_fired');
  if (!lastFired || lastFired.dtype !== 'I64') throw fileError(path, "checkpoint tensor 'dead.last_fired' is missing");
  const dead = new DeadTracker(lastFired.data.length, numberField('dead_window'));
  dead.lastFired.set(Array.from(lastFired.data, Number));
  dead.seen = numberField('seen');
  const key = metadata['key'];
  if (key === undefined) throw fileError(path, "checkpoint metadata 'key' is missing");
  const lastStats = parseLastStats(metadata['last_stats'], path);
  return { step: numberField('step'), params: group('param'), m: group('adam_m'), v: group('adam_v'), dead, scale: numberField('scale'), key, lastStats };
}

/** The 'last_stats' metadata: a StepStats as JSON, absent in checkpoints of step 0 and older ones. */
function parseLastStats(text: string | undefined, path: string): StepStats | undefined {
  if (text === undefined) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    v = undefined;
  }
  const numbers = ['step', 'steps', 'inputs', 'lr', 'coefficient', 'explainedVariance', 'l0', 'deadFraction', 'inputsPerSecond', 'elapsedSeconds'] as const;
  if (typeof v !== 'object' || v === null || !numbers.every((k) => typeof (v as Record<string, unknown>)[k] === 'number')) {
    throw fileError(path, "checkpoint metadata 'last_stats' is not a record of the last step's figures");
  }
  const losses: unknown = (v as Record<string, unknown>)['losses'];
  if (typeof losses !== 'object' || losses === null || !Object.values(losses).every((x) => typeof x === 'number')) {
    throw fileError(path, "checkpoint metadata 'last_stats' has no losses");
  }
  return v as StepStats;
}

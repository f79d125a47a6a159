/**
 * Checks the float32 engine against float64 PyTorch-autograd reference vectors (one JSON file per
 * architecture: definition, hyper, inputs, params, forward, loss, grads; adam.json for the
 * optimiser). Error per tensor: max |ours - ref| / max(max |ref|, 1e-12).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { refNumber } from './arch/common.js';
import { architecture, ARCHITECTURES } from './arch/index.js';
import type { ArchitectureDef, Dims, Params, ReferenceCase, ReferenceHyper } from './arch/types.js';
import type { Engine } from './engine/index.js';
import type { HostTensor } from './engine/ort.js';
import { UserError, fileError } from './errors.js';

export const CONFORMANCE_TOLERANCE = 1e-4;

type Nested = number | Nested[];

interface ReferenceFile {
  architecture: string;
  hyper: Record<string, number | string | number[]>;
  inputs: Record<string, Nested>;
  params?: Record<string, Nested>;
  forward?: Record<string, Nested>;
  loss?: Record<string, number>;
  grads?: Record<string, Nested>;
}

/** One compared tensor: its file, name and relative error. */
export interface ConformanceRow {
  readonly file: string;
  readonly tensor: string;
  /** NaN when the engine did not produce the tensor. */
  readonly error: number;
}

/** Every compared tensor, the files skipped and why, and whether all were within tolerance. */
export interface ConformanceReport {
  readonly rows: ConformanceRow[];
  readonly skipped: { readonly file: string; readonly reason: string }[];
  readonly ok: boolean;
}

/** A reference file's architecture mapped to ours (the `reference` field of the table's entries). */
interface Case extends ReferenceCase<unknown> {
  readonly def: ArchitectureDef<unknown>;
}

/** The architecture whose reference mapping lists this file's `architecture`; undefined when none does. */
function caseFor(refArchitecture: string, h: ReferenceHyper): Case | undefined {
  for (const name of ARCHITECTURES) {
    const def = architecture(name);
    if (def.reference?.files.includes(refArchitecture)) return { def, ...def.reference.map(h) };
  }
  return undefined;
}

function shapeOf(a: Nested): number[] {
  const shape: number[] = [];
  let cur: Nested = a;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    cur = cur[0] ?? 0;
  }
  return shape;
}

function flat(a: Nested): number[] {
  return Array.isArray(a) ? (a.flat(Infinity as 1) as number[]) : [a];
}

function tensor(a: Nested): HostTensor<Float32Array> {
  return { data: Float32Array.from(flat(a)), dims: shapeOf(a) };
}

export function relativeError(ours: ArrayLike<number>, ref: readonly number[]): number {
  if (ours.length !== ref.length) return NaN;
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < ref.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(ours[i]! - ref[i]!));
    maxRef = Math.max(maxRef, Math.abs(ref[i]!));
  }
  return maxDiff / Math.max(maxRef, 1e-12);
}

async function checkArchitecture(engine: Engine, file: string, ref: ReferenceFile, c: Case): Promise<ConformanceRow[]> {
  const params = ref.params ?? {};
  const x = tensor(ref.inputs['x'] ?? []);
  const wEnc = shapeOf(params['W_enc'] ?? []);
  const dims: Dims = { dIn: wEnc[0] ?? 0, dSae: wEnc[1] ?? 0 };
  const step = await c.def.step(engine, dims, c.hyper, true);
  const p: Params = {};
  const ours = (name: string): string => c.rename?.[name] ?? name;
  for (const [name, value] of Object.entries(params)) p[ours(name)] = tensor(value).data;
  for (const [name, value] of Object.entries(c.extra ?? {})) p[name] = value.slice();
  const deadMask = Uint8Array.from(flat(ref.inputs['dead_mask'] ?? Array<number>(dims.dSae).fill(0)), (v) => (v ? 1 : 0));
  const out = await step.run(p, { x: x.data, rows: x.dims[0] ?? 0, coef: c.coef, deadMask, progress: 0 });
  const rows: ConformanceRow[] = [];
  const compare = (label: string, got: ArrayLike<number> | undefined, expected: Nested): void => {
    rows.push({ file, tensor: label, error: got ? relativeError(got, flat(expected)) : NaN });
  };
  for (const [name, v] of Object.entries(ref.forward ?? {})) compare(`forward.${name}`, out.forward[name], v);
  for (const [name, v] of Object.entries(ref.loss ?? {})) compare(`loss.${name}`, name in out.losses ? [out.losses[name]!] : undefined, v);
  for (const [name, v] of Object.entries(ref.grads ?? {})) compare(`grad.${name}`, out.grads[ours(name)], v);
  return rows;
}

function checkAdam(engine: Engine, file: string, ref: ReferenceFile & { forward: { params_after: Nested } }): ConformanceRow[] {
  const h = { lr: refNumber(ref.hyper['lr']), beta1: refNumber(ref.hyper['beta1']), beta2: refNumber(ref.hyper['beta2']), eps: refNumber(ref.hyper['eps']) };
  const param = tensor(ref.inputs['param'] ?? []).data;
  const grads = Array.isArray(ref.inputs['grads']) ? ref.inputs['grads'] : [];
  const after = Array.isArray(ref.forward.params_after) ? ref.forward.params_after : [];
  const m = new Float32Array(param.length);
  const v = new Float32Array(param.length);
  return grads.map((g, t) => {
    engine.kernels.adam(param, tensor(g).data, m, v, h, t + 1);
    return { file, tensor: `adam step ${t + 1} (${engine.kernels.name})`, error: relativeError(param, flat(after[t] ?? [])) };
  });
}

async function readReference(path: string): Promise<ReferenceFile> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw fileError(path, e instanceof SyntaxError ? `not valid JSON (${e.message.replace(/\s+/g, ' ')})` : 'cannot be read');
  }
  if (typeof parsed !== 'object' || parsed === null || !('architecture' in parsed) || !('inputs' in parsed)) {
    throw fileError(path, 'not a reference vector file (no "architecture" or "inputs")');
  }
  return parsed as ReferenceFile;
}

/** Runs every reference file in `dir` that the implementation knows; reports the others as skipped. */
export async function runConformance(engine: Engine, dir: string): Promise<ConformanceReport> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.json')).sort();
  } catch {
    throw new UserError(`${dir}: no such folder`);
  }
  if (names.length === 0) throw new UserError(`${dir}: no reference vector files (*.json)`);
  const rows: ConformanceRow[] = [];
  const skipped: ConformanceReport['skipped'] = [];
  for (const name of names) {
    const ref = await readReference(join(dir, name));
    if (ref.architecture === 'adam' && ref.forward && 'params_after' in ref.forward) {
      rows.push(...checkAdam(engine, name, ref as ReferenceFile & { forward: { params_after: Nested } }));
      continue;
    }
    const c = caseFor(ref.architecture, ref.hyper);
    if (!c) {
      skipped.push({ file: name, reason: `architecture '${ref.architecture}' is not implemented` });
      continue;
    }
    rows.push(...(await checkArchitecture(engine, name, ref, c)));
  }
  const ok = rows.every((r) => r.error <= CONFORMANCE_TOLERANCE);
  return { rows, skipped, ok };
}

/** The report as a table, one line per tensor, with a summary line. */
export function formatConformance(report: ConformanceReport): string {
  const width = Math.max(...report.rows.map((r) => r.file.length + r.tensor.length + 3), 20);
  const lines = report.rows.map((r) => {
    const label = `${r.file} ${r.tensor}`.padEnd(width);
    const err = Number.isNaN(r.error) ? 'missing'.padStart(10) : r.error.toExponential(2).padStart(10);
    return `${label} ${err}  ${r.error <= CONFORMANCE_TOLERANCE ? 'ok' : 'FAIL'}`;
  });
  for (const s of report.skipped) lines.push(`${s.file}: skipped (${s.reason})`);
  const failed = report.rows.filter((r) => !(r.error <= CONFORMANCE_TOLERANCE)).length;
  const worst = Math.max(...report.rows.map((r) => (Number.isNaN(r.error) ? Infinity : r.error)));
  lines.push(
    `${report.rows.length} tensors checked, ${failed} over ${CONFORMANCE_TOLERANCE}, worst ${worst.toExponential(2)}; ${report.skipped.length} files skipped`,
  );
  return lines.join('\n');
}

/**
 * The kernel suite, written once and run on every backend (tfjs's describeWithFlags): each kernel
 * against the TypeScript reference (the oracle) on odd and power-of-two shapes, multi-step Adam, edge
 * cases, and Adam against the float64 PyTorch vectors. Then what only the native addon has: bitwise
 * independence from the thread count, argument validation, and the fallback when it is missing.
 *
 * Tolerances against the reference (float64 inside each loop, rounded on store):
 * - scale, nonFiniteRows: exact.
 * - rowNorms, normalizeRows, removeParallelComponent: 1 float32 ulp (row sums in double, another
 *   order), or |diff| <= 1e-12 * the row's scale for removeParallelComponent's cancellations.
 * - adam (float32 arithmetic like torch): per element, 1 ulp of the parameter per step (each step
 *   rounds the parameter) or 1e-6 * lr per step;
 *   m and v within 1e-6 of max|g| and max g^2 (float32 rounding of a few operations).
 * - adam against PyTorch: max|ours - ref| / max|ref| <= 1e-5 per step.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { UserError } from '../src/errors.js';
import { Engine } from '../src/engine/index.js';
import type { AdamHyper, Kernels } from '../src/engine/kernels.js';
import { loadNativeBinding, loadNativeKernels } from '../src/engine/native.js';
import { referenceKernels } from '../src/engine/reference.js';
import { Rng } from '../src/rng.js';

// ---------------------------------------------------------------- backends

interface Backend {
  readonly name: string;
  /** The kernels, or why this backend is not available here (its suite is then skipped with that note). */
  readonly kernels: Kernels | Error;
}

const native = loadNativeKernels(2);
const BACKENDS: readonly Backend[] = [
  { name: 'reference', kernels: referenceKernels },
  { name: 'native', kernels: native },
];
const skipNote = (b: Backend): string =>
  b.kernels instanceof Error ? ` (SKIPPED: ${b.kernels.message}; run npm run build:native)` : '';

// ---------------------------------------------------------------- data and comparisons

const MATRICES: readonly (readonly [number, number])[] = [
  [1, 1], [1, 7], [7, 1], [7, 7], [64, 64], [129, 33], [1000, 33], [33, 1000], [257, 129],
];
const LENGTHS: readonly number[] = [1, 7, 64, 129, 1000, 33_000, 100_003];
const HYPER: AdamHyper = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8 };

/** n floats ~ N(0, scale^2), seeded. */
function randn(n: number, seed: number, scale = 1): Float32Array {
  const rng = new Rng(seed);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = rng.normal() * scale;
  return x;
}

const F32 = new Float32Array(1);
const I32 = new Int32Array(F32.buffer);

/** x's float32 bits as an integer ordered like the floats (-0 and +0 both 0). */
function ordered(x: number): number {
  F32[0] = x;
  const i = I32[0]!;
  return i < 0 ? -2147483648 - i : i;
}

/** Distance in float32 ulps; NaN is 0 from NaN and infinitely far from anything else. */
function ulps(a: number, b: number): number {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b) ? 0 : Infinity;
  return Math.abs(ordered(a) - ordered(b));
}

interface Tolerance {
  readonly ulps?: number;
  /** An absolute bound, per element or for all. */
  readonly abs?: number | ((i: number) => number);
}

/** Every element within `tol.ulps` ulps or `tol.abs`; fails naming the first element that is not. */
function expectClose(actual: Float32Array, expected: Float32Array, tol: Tolerance, what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    const abs = typeof tol.abs === 'function' ? tol.abs(i) : (tol.abs ?? 0);
    if (ulps(a, e) <= (tol.ulps ?? 0) || Math.abs(a - e) <= abs) continue;
    expect.fail(`${what}[${i}]: ${a} vs reference ${e} (${ulps(a, e)} ulps, |diff| ${Math.abs(a - e)})`);
  }
}

function maxAbs(x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]!));
  return m;
}

/** max |ours - ref| / max |ref|. */
function relError(ours: ArrayLike<number>, ref: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < ref.length; i++) d = Math.max(d, Math.abs(ours[i]! - ref[i]!));
  return d / Math.max(maxAbs(ref), 1e-30);
}

function sameBits(a: Float32Array | Uint8Array, b: Float32Array | Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** w: [rows, cols] with row r set to zero for every r in `zero`. */
function withZeroRows(w: Float32Array, cols: number, zero: readonly number[]): Float32Array {
  for (const r of zero) w.fill(0, r * cols, (r + 1) * cols);
  return w;
}

// ---------------------------------------------------------------- the suite, once for every backend

describe.each(BACKENDS)('$name kernels', (backend) => {
  if (backend.kernels instanceof Error) {
    it.skip(`all tests${skipNote(backend)}`, () => {});
    return;
  }
  const k = backend.kernels;

  it('reports its name', () => expect(k.name).toBe(backend.name));

  it.each(LENGTHS)('adam: 5 steps on %i floats match the reference', (n) => {
    const ours = { p: randn(n, 1), m: new Float32Array(n), v: new Float32Array(n) };
    const ref = { p: ours.p.slice(), m: new Float32Array(n), v: new Float32Array(n) };
    const steps = 5;
    let gMax = 0;
    for (let step = 1; step <= steps; step++) {
      const g = randn(n, 100 + step, step === 3 ? 1e-3 : 1); // one step with small gradients
      gMax = Math.max(gMax, maxAbs(g));
      k.adam(ours.p, g, ours.m, ours.v, HYPER, step);
      referenceKernels.adam(ref.p, g, ref.m, ref.v, HYPER, step);
    }
    expectClose(ours.p, ref.p, { ulps: steps, abs: 1e-6 * HYPER.lr * steps }, 'param');
    expectClose(ours.m, ref.m, { abs: 1e-6 * gMax }, 'm');
    expectClose(ours.v, ref.v, { abs: 1e-6 * gMax * gMax }, 'v');
  });

  it('adam: 4 steps match the float64 PyTorch reference (adam.json) within 1e-5', () => {
    const fixture = JSON.parse(readFileSync(new URL('./fixtures/reference/adam.json', import.meta.url), 'utf8')) as {
      hyper: { lr: number; beta1: number; beta2: number; eps: number };
      inputs: { param: number[][]; grads: number[][][] };
      forward: { params_after: number[][][] };
    };
    const p = Float32Array.from(fixture.inputs.param.flat()); // [3, 5]
    const m = new Float32Array(p.length);
    const v = new Float32Array(p.length);
    expect(fixture.inputs.grads.length).toBe(fixture.forward.params_after.length);
    fixture.inputs.grads.forEach((g, t) => {
      k.adam(p, Float32Array.from(g.flat()), m, v, fixture.hyper, t + 1);
      const want = fixture.forward.params_after[t]!.flat();
      expect(relError(p, want), `step ${t + 1}`).toBeLessThanOrEqual(1e-5);
    });
  });

  it.each(MATRICES)('rowNorms %ix%i matches the reference', (rows, cols) => {
    const w = withZeroRows(randn(rows * cols, rows + cols), cols, [rows - 1]);
    const ours = new Float32Array(rows).fill(NaN);
    const ref = new Float32Array(rows);
    k.rowNorms(w, rows, cols, ours);
    referenceKernels.rowNorms(w, rows, cols, ref);
    expectClose(ours, ref, { ulps: 1 }, 'norms');
    expect(ours[rows - 1]).toBe(0);
  });

  it.each(MATRICES)('normalizeRows %ix%i matches the reference and leaves zero rows alone', (rows, cols) => {
    const zero = rows > 2 ? [0, rows - 2] : [];
    const w = withZeroRows(randn(rows * cols, rows * cols, 3), cols, zero);
    const ref = w.slice();
    k.normalizeRows(w, rows, cols, 0.5);
    referenceKernels.normalizeRows(ref, rows, cols, 0.5);
    expectClose(w, ref, { ulps: 1 }, 'w');
    const norms = new Float32Array(rows);
    referenceKernels.rowNorms(w, rows, cols, norms);
    for (let r = 0; r < rows; r++) expect(norms[r]).toBeCloseTo(zero.includes(r) ? 0 : 0.5, 6);
  });

  it.each(MATRICES)('removeParallelComponent %ix%i matches the reference and leaves rows of zero w alone', (rows, cols) => {
    const w = withZeroRows(randn(rows * cols, 7 * rows + cols), cols, [rows >> 1]);
    const grad = randn(rows * cols, 11 * rows + cols);
    const before = grad.slice();
    const ref = grad.slice();
    k.removeParallelComponent(grad, w, rows, cols);
    referenceKernels.removeParallelComponent(ref, w, rows, cols);
    const rowScale = (i: number): number => 1e-12 * maxAbs(before.subarray(i - (i % cols), i - (i % cols) + cols));
    expectClose(grad, ref, { ulps: 1, abs: rowScale }, 'grad');
    const r = rows >> 1;
    expect(sameBits(grad.subarray(r * cols, (r + 1) * cols), before.subarray(r * cols, (r + 1) * cols))).toBe(true);
    for (let i = 0; i < rows; i++) {
      if (i === r || cols === 1) continue;
      let dot = 0;
      for (let c = i * cols; c < (i + 1) * cols; c++) dot += grad[c]! * w[c]!;
      expect(Math.abs(dot)).toBeLessThan(1e-5 * Math.sqrt(cols));
    }
  });

  it.each(LENGTHS)('scale on %i floats is exactly the reference', (n) => {
    for (const s of [0.1, -3, 0, 1e-30]) {
      const x = randn(n, n);
      const ref = x.slice();
      k.scale(x, s);
      referenceKernels.scale(ref, s);
      expect(sameBits(x, ref), `s = ${s}`).toBe(true);
    }
  });

  it.each(MATRICES)('nonFiniteRows %ix%i flags NaN and infinities, not large or tiny finite values', (rows, cols) => {
    const n = rows * cols;
    const x = randn(n, 5);
    const specials = [NaN, Infinity, -Infinity, 3.4028234663852886e38, -1.401298464324817e-45, -0].slice(0, n);
    const at = specials.map((_, j) => Math.floor((j * n) / specials.length)); // distinct positions
    specials.forEach((value, j) => (x[at[j]!] = value));
    const ours = new Uint8Array(rows).fill(7);
    const ref = new Uint8Array(rows);
    const count = k.nonFiniteRows(x, rows, cols, ours);
    expect(count).toBe(referenceKernels.nonFiniteRows(x, rows, cols, ref));
    expect(Array.from(ours)).toEqual(Array.from(ref));
    const bad = new Set(at.slice(0, 3).map((i) => Math.floor(i / cols))); // rows of NaN, +Inf, -Inf
    expect(count).toBe(bad.size);
    for (let r = 0; r < rows; r++) expect(ours[r]).toBe(bad.has(r) ? 1 : 0);
  });

  it('handles empty shapes (0 rows or 0 columns)', () => {
    for (const [rows, cols] of [[0, 5], [5, 0], [0, 0]] as const) {
      const w = new Float32Array(rows * cols);
      const out = new Float32Array(rows).fill(NaN);
      k.rowNorms(w, rows, cols, out);
      expect(Array.from(out)).toEqual(new Array<number>(rows).fill(0));
      k.normalizeRows(w, rows, cols, 1);
      k.removeParallelComponent(new Float32Array(rows * cols), w, rows, cols);
      expect(k.nonFiniteRows(w, rows, cols, new Uint8Array(rows))).toBe(0);
    }
    const empty = new Float32Array(0);
    k.adam(empty, new Float32Array(0), new Float32Array(0), new Float32Array(0), HYPER, 1);
    k.scale(empty, 2);
  });

  it('works on views into larger buffers (subarrays)', () => {
    const rows = 129;
    const cols = 33;
    const big = randn(rows * cols + 10, 9);
    const view = big.subarray(3, 3 + rows * cols);
    const copy = view.slice();
    k.normalizeRows(view, rows, cols, 1);
    referenceKernels.normalizeRows(copy, rows, cols, 1);
    expectClose(view, copy, { ulps: 1 }, 'view');
    expect(big.subarray(0, 3)).toEqual(randn(rows * cols + 10, 9).subarray(0, 3));
  });
});

// ---------------------------------------------------------------- native only

describe(`native kernels: threads and validation${skipNote(BACKENDS[1]!)}`, () => {
  if (native instanceof Error) {
    it.skip('all tests', () => {});
    return;
  }
  const k = native;

  /** Runs every kernel on inputs past the inline threshold; returns every output. */
  function runAll(kernels: Kernels): (Float32Array | Uint8Array)[] {
    const [rows, cols] = [1001, 67];
    const n = 100_003;
    const p = randn(n, 1);
    const m = new Float32Array(n);
    const v = new Float32Array(n);
    for (let step = 1; step <= 3; step++) kernels.adam(p, randn(n, step + 1), m, v, HYPER, step);
    const w = randn(rows * cols, 20);
    const norms = new Float32Array(rows);
    kernels.rowNorms(w, rows, cols, norms);
    const grad = randn(rows * cols, 21);
    kernels.removeParallelComponent(grad, w, rows, cols);
    kernels.normalizeRows(w, rows, cols, 0.3);
    const x = randn(n, 22);
    kernels.scale(x, 0.7);
    x[77_777] = NaN;
    const bad = new Uint8Array(n / 7 + 1);
    const sx = x.subarray(0, 14_286 * 7);
    kernels.nonFiniteRows(sx, 14_286, 7, bad.subarray(0, 14_286));
    return [p, m, v, norms, grad, w, x, bad];
  }

  it('gives bitwise the same results on 1, 2, 3 and 8 threads', () => {
    const binding = loadNativeBinding();
    if (binding instanceof Error) throw binding;
    const results = [1, 2, 3, 8].map((threads) => {
      const kt = loadNativeKernels(threads);
      if (kt instanceof Error) throw kt;
      expect(binding.threads()).toBe(threads);
      return runAll(kt);
    });
    loadNativeKernels(2);
    for (const other of results.slice(1)) {
      other.forEach((out, i) => expect(sameBits(out, results[0]![i]!), `output ${i}`).toBe(true));
    }
  });

  it('survives rapid resizes between calls', () => {
    const x = randn(1 << 16, 3);
    const want = x.slice();
    for (let i = 0; i < 200; i++) {
      loadNativeKernels(1 + (i % 4));
      k.scale(x, i % 2 ? 2 : 0.5);
    }
    loadNativeKernels(2);
    expect(sameBits(x, want)).toBe(true);
  });

  /** Calls fn with arguments the type system would refuse, to reach the addon's own checks. */
  const callUntyped = (fn: (...args: never[]) => unknown, ...args: unknown[]): unknown => Reflect.apply(fn, undefined, args);

  it('throws TypeError for a wrong buffer type, naming the kernel and the argument', () => {
    const out = new Float32Array(2);
    expect(() => callUntyped(k.rowNorms, new Float64Array(4), 2, 2, out)).toThrow(
      new TypeError('rowNorms: w must be a Float32Array, got a Float64Array'),
    );
    expect(() => callUntyped(k.rowNorms, [1, 2, 3, 4], 2, 2, out)).toThrow(/w must be a Float32Array, got an Array/);
    expect(() => callUntyped(k.nonFiniteRows, new Float32Array(4), 2, 2, new Int8Array(2))).toThrow(
      /nonFiniteRows: out must be a Uint8Array, got an Int8Array/,
    );
    expect(() => callUntyped(k.scale, new Float32Array(4), '2')).toThrow(new TypeError('scale: s must be a number, got a string'));
    expect(() => callUntyped(k.normalizeRows, new Float32Array(4), 2, undefined, 1)).toThrow(TypeError);
  });

  it('throws RangeError for wrong lengths, shapes, overlapping buffers and out-of-range values', () => {
    const f = (n: number): Float32Array => new Float32Array(n);
    expect(() => k.rowNorms(f(10), 3, 4, f(3))).toThrow(
      new RangeError('rowNorms: w has 10 elements, expected rows * cols = 3 * 4 = 12'),
    );
    expect(() => k.rowNorms(f(12), 3, 4, f(4))).toThrow(new RangeError('rowNorms: out has 4 elements, expected rows = 3'));
    expect(() => k.normalizeRows(f(12), -3, -4, 1)).toThrow(/rows must be an integer in \[0, 4294967295\], got -3/);
    expect(() => k.normalizeRows(f(12), 3, 4.5, 1)).toThrow(RangeError);
    expect(() => k.normalizeRows(f(12), 3, 4, NaN)).toThrow(new RangeError('normalizeRows: target must be finite, got NaN'));
    expect(() => k.removeParallelComponent(f(12), f(11), 3, 4)).toThrow(/removeParallelComponent: w has 11 elements/);
    const g = f(12);
    expect(() => k.removeParallelComponent(g, g, 3, 4)).toThrow(/grad and w share memory/);
    const buf = f(20);
    expect(() => k.rowNorms(buf.subarray(0, 12), 3, 4, buf.subarray(11, 14))).toThrow(/w and out share memory/);
    k.rowNorms(buf.subarray(0, 12), 3, 4, buf.subarray(12, 15)); // adjacent is fine
    expect(() => k.scale(f(3), Infinity)).toThrow(RangeError);

    const [p, gr, m, v] = [f(6), f(6), f(6), f(6)];
    expect(() => k.adam(p, f(5), m, v, HYPER, 1)).toThrow(new RangeError('adam: grad has 5 elements, expected param.length = 6'));
    expect(() => k.adam(p, gr, p, v, HYPER, 1)).toThrow(/adam: param and m share memory/);
    expect(() => k.adam(p, gr, m, v, HYPER, 0)).toThrow(/adam: step must be an integer in \[1, /);
    expect(() => k.adam(p, gr, m, v, HYPER, 1.5)).toThrow(RangeError);
    expect(() => k.adam(p, gr, m, v, { ...HYPER, beta1: 1 }, 1)).toThrow(new RangeError('adam: beta1 must be in [0, 1), got 1'));
    expect(() => k.adam(p, gr, m, v, { ...HYPER, lr: -1 }, 1)).toThrow(new RangeError('adam: lr must be >= 0, got -1'));
    expect(() => k.adam(p, gr, m, v, { ...HYPER, eps: NaN }, 1)).toThrow(RangeError);
    expect(Array.from(p)).toEqual([0, 0, 0, 0, 0, 0]); // nothing was touched
  });

  it('rejects a thread count out of range without changing the pool', () => {
    const binding = loadNativeBinding();
    if (binding instanceof Error) throw binding;
    expect(() => binding.setThreads(0)).toThrow(new RangeError('setThreads: threads must be an integer in [1, 1024], got 0'));
    expect(loadNativeKernels(0)).toBeInstanceOf(Error);
    expect(binding.threads()).toBe(2);
  });
});

// ---------------------------------------------------------------- loading and the fallback

describe('kernel loading and selection', () => {
  afterEach(() => vi.unstubAllEnvs());

  it('returns an Error (never throws) for a missing addon, a non-addon file and a foreign module', () => {
    vi.stubEnv('SAE_NATIVE_PATH', '/nonexistent/sae_kernels.node');
    const missing = loadNativeKernels(2);
    expect(missing).toBeInstanceOf(Error);
    expect(missing instanceof Error && missing.message).toBe('no addon at /nonexistent/sae_kernels.node');

    const junk = join(tmpdir(), `sae-junk-${process.pid}.node`);
    writeFileSync(junk, 'not a shared object');
    vi.stubEnv('SAE_NATIVE_PATH', junk);
    const broken = loadNativeKernels(2);
    expect(broken instanceof Error && broken.message).toMatch(/^cannot load .*sae-junk.*: /);

    vi.stubEnv('SAE_NATIVE_PATH', new URL('./fixtures/reference/adam.json', import.meta.url).pathname);
    const foreign = loadNativeKernels(2);
    expect(foreign instanceof Error && foreign.message).toMatch(/is a stale or foreign build/);
  });

  it("'auto' falls back to the reference with exactly one warning; 'native' throws a UserError", () => {
    vi.stubEnv('SAE_NATIVE_PATH', '/nonexistent/sae_kernels.node');
    const warn = vi.fn<(message: string) => void>();
    const engines = [new Engine({ threads: 2, kernels: 'auto', warn }), new Engine({ threads: 1, kernels: 'auto', warn })];
    for (const e of engines) expect(e.kernels.name).toBe('reference');
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0]![0]).toMatch(/no addon at \/nonexistent.*npm rebuild sparse-autoencoder/);
    expect(() => new Engine({ threads: 2, kernels: 'native', warn })).toThrow(UserError);
    expect(() => new Engine({ threads: 2, kernels: 'native', warn })).toThrow(/native kernels could not be loaded: no addon/);
    expect(warn).toHaveBeenCalledTimes(1);
  });

  it.skipIf(native instanceof Error)("'auto' picks the native kernels when the addon is built", () => {
    const warn = vi.fn<(message: string) => void>();
    expect(new Engine({ threads: 2, kernels: 'auto', warn }).kernels.name).toBe('native');
    expect(warn).not.toHaveBeenCalled();
  });
});

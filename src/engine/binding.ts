/**
 * The surface of the native addon (native/addon.cc, built to build/Release/sae_kernels.node), in one
 * place. Every function works in place on the buffers it is given, checks its arguments (TypeError
 * for a wrong type, RangeError for a wrong length, overlapping buffers or a value out of range) and
 * runs on the process-wide thread pool. Scalars are flat arguments: the wrapper in native.ts unpacks
 * the Kernels interface's objects.
 */

/** The file name of the addon under build/Release (binding.gyp's target_name). */
export const ADDON_NAME = 'sae_kernels';

/** The surface version this TypeScript expects; native/addon.cc's kAbi must match. */
export const ADDON_ABI = 3;

export interface NativeBinding {
  /** Surface version (kAbi in native/addon.cc). */
  readonly abi: number;
  /** 'avx2' when the AVX2 clones of the kernels run on this CPU, else 'baseline'. */
  readonly simd: string;

  /** Resizes the process-wide pool to n threads in all (the caller included), 1 <= n <= 1024. */
  setThreads(n: number): void;
  threads(): number;

  /** param, grad, m, v: [n]; one torch.optim.Adam step in float32, step >= 1. */
  adam(param: Float32Array, grad: Float32Array, m: Float32Array, v: Float32Array, lr: number, beta1: number, beta2: number, eps: number, step: number): void;
  /** w: [rows, cols] -> out: [rows] */
  rowNorms(w: Float32Array, rows: number, cols: number, out: Float32Array): void;
  /** w: [rows, cols], in place */
  normalizeRows(w: Float32Array, rows: number, cols: number, target: number): void;
  /** grad, w: [rows, cols], in place on grad */
  removeParallelComponent(grad: Float32Array, w: Float32Array, rows: number, cols: number): void;
  /** x: [n], in place */
  scale(x: Float32Array, s: number): void;
  /** x: [rows, cols] -> out: [rows]; returns the count of flagged rows */
  nonFiniteRows(x: Float32Array, rows: number, cols: number, out: Uint8Array): number;

  /** a, b, out: [n], out = a - b (out may be a or b itself, not a part of one); returns sum(out^2) */
  subtract(a: Float32Array, b: Float32Array, out: Float32Array): number;
  /** x: [rows, cols] -> sum of (x - column mean)^2 */
  centeredSumSquares(x: Float32Array, rows: number, cols: number): number;
  /** x: [rows, cols] -> out: [cols] */
  columnSums(x: Float32Array, rows: number, cols: number, out: Float32Array, accumulate: boolean): void;

  // Sparse kernels: a CSR code is (rowPtr: [rows + 1], idx: [nnz], rows), checked on every call:
  // rowPtr[0] = 0, nondecreasing, rowPtr[rows] = nnz = idx.length, every idx in [0, dSae).

  /** val: [nnz], w: [dSae, dIn] (dSae = w.length / dIn) -> out: [rows, dIn] */
  sparseDecode(rowPtr: Int32Array, idx: Int32Array, rows: number, val: Float32Array, w: Float32Array, dIn: number, out: Float32Array): void;
  /** w: [dSae, dIn], g: [rows, dIn] -> out: [nnz] */
  sparseGatherDot(rowPtr: Int32Array, idx: Int32Array, rows: number, w: Float32Array, g: Float32Array, dIn: number, out: Float32Array): void;
  /** coef: [nnz], x: [rows, dIn] -> out: [dSae, dIn] ('rows') or [dIn, dSae] ('columns') */
  sparseScatter(
    rowPtr: Int32Array,
    idx: Int32Array,
    rows: number,
    coef: Float32Array,
    x: Float32Array,
    dIn: number,
    dSae: number,
    out: Float32Array,
    layout: 'rows' | 'columns',
    accumulate: boolean,
  ): void;
  /** coef: [nnz] -> out: [dSae] */
  sparseScatterSum(rowPtr: Int32Array, idx: Int32Array, rows: number, coef: Float32Array, dSae: number, out: Float32Array, accumulate: boolean): void;

  /** type: a ggml type id (dequant.ts GGML_TYPE_IDS), src: whole blocks of it -> out: [blocks * values per block] */
  dequantize(type: number, src: Uint8Array, out: Float32Array): void;
}

type BindingFunction = {
  [K in keyof NativeBinding]: NativeBinding[K] extends (...args: never[]) => unknown ? K : never;
}[keyof NativeBinding];

// Every function of the surface (a Record, so that adding one to the interface forces it here).
const FUNCTIONS: Record<BindingFunction, true> = {
  setThreads: true,
  threads: true,
  adam: true,
  rowNorms: true,
  normalizeRows: true,
  removeParallelComponent: true,
  scale: true,
  nonFiniteRows: true,
  subtract: true,
  centeredSumSquares: true,
  columnSums: true,
  sparseDecode: true,
  sparseGatherDot: true,
  sparseScatter: true,
  sparseScatterSum: true,
  dequantize: true,
};

/** Whether a loaded module has this surface (a stale build with another ABI does not). */
export function isNativeBinding(x: unknown): x is NativeBinding {
  if (typeof x !== 'object' || x === null) return false;
  const fields = new Map(Object.entries(x));
  return (
    fields.get('abi') === ADDON_ABI && typeof fields.get('simd') === 'string' && Object.keys(FUNCTIONS).every((name) => typeof fields.get(name) === 'function')
  );
}

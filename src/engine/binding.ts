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
export const ADDON_ABI = 1;

export interface NativeBinding {
  /** Surface version (kAbi in native/addon.cc). */
  readonly abi: number;
  /** 'avx2' when the AVX2 clones of the kernels run on this CPU, else 'baseline'. */
  readonly simd: string;

  /** Resizes the process-wide pool to n threads in all (the caller included), 1 <= n <= 1024. */
  setThreads(n: number): void;
  threads(): number;

  /** param, grad, m, v: [n]; one torch.optim.Adam step in float32, step >= 1. */
  adam(
    param: Float32Array,
    grad: Float32Array,
    m: Float32Array,
    v: Float32Array,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    step: number,
  ): void;
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
};

/** Whether a loaded module has this surface (a stale build with another ABI does not). */
export function isNativeBinding(x: unknown): x is NativeBinding {
  if (typeof x !== 'object' || x === null) return false;
  const fields = new Map(Object.entries(x));
  return (
    fields.get('abi') === ADDON_ABI &&
    typeof fields.get('simd') === 'string' &&
    Object.keys(FUNCTIONS).every((name) => typeof fields.get(name) === 'function')
  );
}

/**
 * The native kernels: the C++ addon (native/, built by scripts/build-native.mjs into
 * <package root>/build/Release/sae_kernels.node, or the file named by env SAE_NATIVE_PATH) wrapped
 * into the Kernels interface. Loading is lazy (nothing happens at import) and never throws: a
 * missing or stale addon comes back as an Error saying why, and index.ts falls back to the reference.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADDON_ABI, ADDON_NAME, isNativeBinding, type NativeBinding } from './binding.js';
import { GGML_TYPE_IDS } from './dequant.js';
import type { Kernels } from './kernels.js';

/** The package root: the nearest folder above this module (src/engine or dist/engine) with a package.json. */
function packageRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (let dir = here; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) return join(here, '..', '..');
  }
}

/** Where the addon is looked for: env SAE_NATIVE_PATH, else <package root>/build/Release/sae_kernels.node. */
export function nativeAddonPath(): string {
  return process.env['SAE_NATIVE_PATH'] || join(packageRoot(), 'build', 'Release', `${ADDON_NAME}.node`);
}

function firstLine(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  return message.split('\n', 1)[0] ?? message;
}

/** Loads the addon itself (the raw surface, for tests and benchmarks), or says why it cannot. */
export function loadNativeBinding(): NativeBinding | Error {
  const path = nativeAddonPath();
  if (!existsSync(path)) return new Error(`no addon at ${path}`);
  let loaded: unknown;
  try {
    loaded = createRequire(import.meta.url)(path);
  } catch (e) {
    return new Error(`cannot load ${path}: ${firstLine(e)}`);
  }
  if (!isNativeBinding(loaded)) return new Error(`${path} is a stale or foreign build (expected surface ${ADDON_ABI})`);
  return loaded;
}

/**
 * The native kernels on `threads` threads. The pool is process-wide: a later call with another
 * count resizes it for every Kernels object already returned (results do not depend on it).
 */
export function loadNativeKernels(threads: number): Kernels | Error {
  const b = loadNativeBinding();
  if (b instanceof Error) return b;
  try {
    b.setThreads(threads);
  } catch (e) {
    return new Error(`cannot start ${threads} threads: ${firstLine(e)}`);
  }
  return {
    name: 'native',
    adam: (param, grad, m, v, h, step) => b.adam(param, grad, m, v, h.lr, h.beta1, h.beta2, h.eps, step),
    rowNorms: (w, rows, cols, out) => b.rowNorms(w, rows, cols, out),
    normalizeRows: (w, rows, cols, target) => b.normalizeRows(w, rows, cols, target),
    removeParallelComponent: (grad, w, rows, cols) => b.removeParallelComponent(grad, w, rows, cols),
    scale: (x, s) => b.scale(x, s),
    nonFiniteRows: (x, rows, cols, out) => b.nonFiniteRows(x, rows, cols, out),
    subtract: (x, y, out) => b.subtract(x, y, out),
    centeredSumSquares: (x, rows, cols) => b.centeredSumSquares(x, rows, cols),
    columnSums: (x, rows, cols, out, accumulate) => b.columnSums(x, rows, cols, out, accumulate),
    sparseDecode: (code, val, w, dIn, out) => b.sparseDecode(code.rowPtr, code.idx, code.rows, val, w, dIn, out),
    sparseGatherDot: (code, w, g, dIn, out) => b.sparseGatherDot(code.rowPtr, code.idx, code.rows, w, g, dIn, out),
    sparseScatter: (code, coef, x, dIn, dSae, out, layout, accumulate) =>
      b.sparseScatter(code.rowPtr, code.idx, code.rows, coef, x, dIn, dSae, out, layout, accumulate),
    sparseScatterSum: (code, coef, dSae, out, accumulate) => b.sparseScatterSum(code.rowPtr, code.idx, code.rows, coef, dSae, out, accumulate),
    dequantize: (type, src, out) => b.dequantize(GGML_TYPE_IDS[type], src, out),
  };
}

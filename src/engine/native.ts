// Placeholder until the addon lands: reports that no native kernels are available.
import type { Kernels } from './kernels.js';

export function loadNativeKernels(_threads: number): Kernels | Error {
  return new Error('not built');
}

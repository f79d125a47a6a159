/** Adam state: first and second moments for each parameter, and the step count. */
import type { Params } from '../arch/types.js';
import type { AdamHyper, Kernels } from '../engine/kernels.js';

/** Adam over an SAE's parameters: moments per parameter, updated by the kernels. */
export class Adam {
  readonly m: Params = {};
  readonly v: Params = {};

  constructor(
    params: Params,
    readonly hyper: Omit<AdamHyper, 'lr'>,
  ) {
    for (const [name, p] of Object.entries(params)) {
      this.m[name] = new Float32Array(p.length);
      this.v[name] = new Float32Array(p.length);
    }
  }

  /** One update of every parameter with its gradient; step is 1-based. */
  update(kernels: Kernels, params: Params, grads: Readonly<Record<string, Float32Array>>, lr: number, step: number): void {
    const h = { ...this.hyper, lr };
    for (const [name, p] of Object.entries(params)) {
      const g = grads[name];
      if (!g) throw new Error(`no gradient for ${name}`);
      kernels.adam(p, g, this.m[name]!, this.v[name]!, h, step);
    }
  }
}

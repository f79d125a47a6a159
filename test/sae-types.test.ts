/**
 * Sae's hyper-parameters are typed from the architecture table: narrowing on `architecture` narrows
 * `hyper` (checked by the type checker: `npm test` runs tsc over test/, which fails on a wrong
 * expectTypeOf), and saeOf reads unchecked ones through the schema.
 */
import { describe, expect, expectTypeOf, it } from 'vitest';
import { type ArchitectureHyper, type HyperOf, parseHyper } from '../src/arch/index.js';
import type { JumpReluHyper } from '../src/arch/jumprelu.js';
import type { TopKHyper } from '../src/arch/topk.js';
import { Sae, saeOf } from '../src/sae.js';

const dims = { dIn: 2, dSae: 3 };
const params = () => ({ W_enc: new Float32Array(6), b_enc: new Float32Array(3), W_dec: new Float32Array(6), b_dec: new Float32Array(2) });

/** k of a top-k SAE, undefined for the others: compiles only while narrowing on `architecture` narrows `hyper`. */
function kOf(sae: Sae): number | undefined {
  expectTypeOf(sae.hyper).not.toEqualTypeOf<TopKHyper>(); // before narrowing: any architecture's
  if (sae.architecture !== 'topk') return undefined;
  expectTypeOf(sae.hyper).toEqualTypeOf<TopKHyper>();
  return sae.hyper.k;
}

describe('Sae hyper-parameter types', () => {
  it('narrow with the architecture', () => {
    expectTypeOf<HyperOf<'topk'>>().toEqualTypeOf<TopKHyper>();
    expectTypeOf<Extract<ArchitectureHyper, { architecture: 'jumprelu' }>['hyper']>().toEqualTypeOf<JumpReluHyper>();
    expectTypeOf(new Sae('topk', dims, { k: 2 }, params()).hyper).toEqualTypeOf<TopKHyper>();
    expectTypeOf<{ auxK: number }>().not.toExtend<HyperOf<'topk'>>(); // a top-k SAE's hyper-parameters need k
    expect(kOf(new Sae('topk', dims, parseHyper('topk', { k: 2 }), params()))).toBe(2);
    expect(kOf(new Sae('standard', dims, {}, params()))).toBeUndefined();
  });

  it('saeOf reads unchecked hyper-parameters through the schema', () => {
    const sae = saeOf('topk', dims, { k: 2 }, params());
    expectTypeOf(sae.hyper).toEqualTypeOf<TopKHyper>();
    expect(sae.hyper).toEqual({ k: 2 });
    expect(() => saeOf('topk', dims, { k: 0 }, params())).toThrow();
    expect(() => saeOf('standard', dims, { k: 2 }, params())).toThrow(); // strict schema: no stray keys
  });
});

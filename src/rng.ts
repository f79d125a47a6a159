/**
 * A seeded, serialisable pseudo-random generator (xoshiro128**, seeded through splitmix32), so that
 * a run is reproducible from its seed and resumable from a saved state.
 */
export class Rng {
  private s: Uint32Array;
  private spareNormal: number | undefined;

  constructor(seed: number | readonly number[]) {
    this.s = new Uint32Array(4);
    if (typeof seed === 'number') {
      let x = seed >>> 0;
      for (let i = 0; i < 4; i++) {
        x = (x + 0x9e3779b9) >>> 0;
        let z = x;
        z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
        z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
        this.s[i] = (z ^ (z >>> 16)) >>> 0;
      }
    } else {
      if (seed.length !== 4) throw new Error('Rng state has 4 words');
      this.s.set(seed);
    }
  }

  /** A generator derived from this seed and a label (for independent streams: data, init, ...). */
  static derive(seed: number, ...labels: number[]): Rng {
    let h = seed >>> 0;
    for (const l of labels) h = Math.imul(h ^ (l >>> 0), 0x9e3779b1) + 0x7f4a7c15;
    return new Rng(h >>> 0);
  }

  state(): number[] {
    return Array.from(this.s);
  }

  /** A uniformly random 32-bit unsigned integer. */
  nextU32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
    const t = s[1]! << 9;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return (this.nextU32() * 2 ** 21 + (this.nextU32() >>> 11)) / 2 ** 53;
  }

  /** A uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    if (this.spareNormal !== undefined) {
      const v = this.spareNormal;
      this.spareNormal = undefined;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    const theta = 2 * Math.PI * this.uniform();
    this.spareNormal = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** Fisher-Yates, in place. */
  shuffle<T extends { length: number; [i: number]: unknown }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

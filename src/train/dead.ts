/**
 * Dead-latent bookkeeping: a latent is dead when it fired on none of the last `window` inputs
 * (a latent that has not fired since the start counts as dead once any input was seen).
 */
export class DeadTracker {
  /** [dSae] inputs seen when each latent last fired (float64: exact up to 2^53 inputs). */
  readonly lastFired: Float64Array;
  seen = 0;

  constructor(
    readonly dSae: number,
    readonly window: number,
  ) {
    this.lastFired = new Float64Array(dSae);
  }

  /** fires: [dSae] number of inputs of this batch on which each latent fired. */
  update(fires: Float32Array, batchRows: number): void {
    this.seen += batchRows;
    for (let i = 0; i < this.dSae; i++) if (fires[i]! > 0) this.lastFired[i] = this.seen;
  }

  isDead(i: number): boolean {
    return this.seen - this.lastFired[i]! >= Math.min(this.window, this.seen) && this.seen > 0;
  }

  /** [dSae] mask of dead latents. */
  mask(out = new Uint8Array(this.dSae)): Uint8Array {
    for (let i = 0; i < this.dSae; i++) out[i] = this.isDead(i) ? 1 : 0;
    return out;
  }

  deadFraction(): number {
    let n = 0;
    for (let i = 0; i < this.dSae; i++) if (this.isDead(i)) n++;
    return n / this.dSae;
  }
}

/** Reusable buffers of a training step (see Workspace). */

/**
 * Float32Arrays a training step keeps from one call to the next, by name. Fresh arrays cost page
 * faults on first touch (measured ~7 ms per 12 MB, and the two 50 MB gradients of a 768 x 16384
 * SAE made the scatters ~20 ms slower each). What is made from them is valid until the next step.
 */
export class Workspace {
  private readonly buffers = new Map<string, Float32Array>();

  /** The buffer `name` of n floats; its contents are whatever the last step left there. */
  floats(name: string, n: number): Float32Array {
    let b = this.buffers.get(name);
    if (b?.length !== n) {
      b = new Float32Array(n);
      this.buffers.set(name, b);
    }
    return b;
  }
}

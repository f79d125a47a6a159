/** Padded batches of contexts and the rows of their real tokens. */

/** full: [B, S, d] -> the real positions' rows [tokens, d] (context b has lengths[b] real positions). */
export function unpad(full: Float32Array, lengths: readonly number[], S: number, d: number): Float32Array {
  const out = new Float32Array(lengths.reduce((a, b) => a + b, 0) * d);
  let row = 0;
  lengths.forEach((n, b) => {
    out.set(full.subarray(b * S * d, (b * S + n) * d), row * d);
    row += n;
  });
  return out;
}

/** A copy of the padded tensor full [B, S, d] with its real rows replaced by rows [tokens, d]. */
export function repad(full: Float32Array, rows: Float32Array, lengths: readonly number[], S: number, d: number): Float32Array {
  const out = full.slice();
  let row = 0;
  lengths.forEach((n, b) => {
    out.set(rows.subarray(row * d, (row + n) * d), b * S * d);
    row += n;
  });
  return out;
}

/** Binary searches over ascending arrays. */

/** The largest i with sorted[i] <= x, for sorted[0] <= x < sorted[last] (equal entries: the last of them). */
export function lastAtOrBelow(sorted: ArrayLike<number>, x: number): number {
  let lo = 0;
  let hi = sorted.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! <= x) lo = mid;
    else hi = mid;
  }
  return lo;
}

/** The smallest i with sorted[i] >= x (sorted.length if none). */
export function firstAtOrAbove(sorted: ArrayLike<number>, x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

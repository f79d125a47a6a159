/**
 * Connected regions of a binary mask, 8-connectivity (pixels touching by a side or a corner are one
 * region, as scipy.ndimage.label with a 3 x 3 structure, which MVTec AD's evaluation uses).
 */

export interface Region {
  /** [x, y, width, height] of the smallest box holding the region, in pixels. */
  readonly bbox: readonly [number, number, number, number];
  /** Pixels in the region. */
  readonly area: number;
}

export interface Labelled {
  /** [h, w]: 0 outside every region, else 1 + the region's index. */
  readonly labels: Int32Array;
  /** In order of their first pixel, scanning rows from the top. */
  readonly regions: Region[];
}

/** mask: [h, w], nonzero = set -> its 8-connected regions. */
export function connectedRegions(mask: ArrayLike<number>, w: number, h: number): Labelled {
  if (mask.length !== w * h) throw new RangeError(`connectedRegions: ${mask.length} values are not ${w} x ${h}`);
  const labels = new Int32Array(w * h);
  const regions: Region[] = [];
  const stack = new Int32Array(w * h);
  for (let start = 0; start < w * h; start++) {
    if (!mask[start] || labels[start] !== 0) continue;
    const label = regions.length + 1;
    let top = 0;
    stack[top++] = start;
    labels[start] = label;
    let [x0, y0, x1, y1, area] = [w, h, -1, -1, 0];
    while (top > 0) {
      const at = stack[--top]!;
      const x = at % w;
      const y = (at - x) / w;
      area++;
      [x0, y0, x1, y1] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x), Math.max(y1, y)];
      for (let dy = -1; dy <= 1; dy++) {
        const yy = y + dy;
        if (yy < 0 || yy >= h) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const xx = x + dx;
          if (xx < 0 || xx >= w) continue;
          const n = yy * w + xx;
          if (mask[n] && labels[n] === 0) {
            labels[n] = label;
            stack[top++] = n;
          }
        }
      }
    }
    regions.push({ bbox: [x0, y0, x1 - x0 + 1, y1 - y0 + 1], area });
  }
  return { labels, regions };
}

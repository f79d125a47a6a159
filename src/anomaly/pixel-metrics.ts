/**
 * Localisation metrics of anomaly maps against true defect masks, as MVTec AD reports them:
 *   image AUROC  ROC-AUC of one score per image (its map's max or top quantile) against its label
 *   pixel AUROC  ROC-AUC of every pixel's map value against the union of the masks (all images pooled)
 *   PRO(t)       per-region overlap at threshold t: the mean over every true region R (8-connected,
 *                of every image) of |{p in R : map(p) > t}| / |R|; each region counts the same,
 *                however small
 *   FPR(t)       |{p normal : map(p) > t}| / |normal pixels|, all images pooled
 *   AU-PRO(0.3)  the area under PRO as a function of FPR, from FPR 0 to 0.3 (trapezoids, the curve
 *                interpolated linearly at 0.3), divided by 0.3: 1 is perfect
 * The PRO curve follows MVTec AD's evaluation code (compute_pro): thresholds at every distinct map
 * value (tied pixels cross together), the curve running from (0, 0) to (1, 1).
 */
import { rocAuc } from './roc.js';
import { connectedRegions } from './regions.js';

/** An anomaly map with its true mask: map [h, w], mask [h, w] (nonzero: defect). */
export interface LabelledMap {
  readonly map: ArrayLike<number>;
  readonly mask: ArrayLike<number>;
  readonly width: number;
  readonly height: number;
}

function pooled(maps: readonly LabelledMap[]): { scores: Float32Array; labels: Uint8Array } {
  const n = maps.reduce((s, m) => s + m.width * m.height, 0);
  const scores = new Float32Array(n);
  const labels = new Uint8Array(n);
  let at = 0;
  for (const m of maps) {
    if (m.map.length !== m.width * m.height || m.mask.length !== m.width * m.height)
      throw new RangeError(`a map or mask does not hold ${m.width} x ${m.height} values`);
    for (let i = 0; i < m.map.length; i++) {
      scores[at] = m.map[i]!;
      labels[at++] = m.mask[i] ? 1 : 0;
    }
  }
  return { scores, labels };
}

/** ROC-AUC of all pixels pooled; NaN when no pixel (or every pixel) is a defect. */
export function pixelAuroc(maps: readonly LabelledMap[]): number {
  const { scores, labels } = pooled(maps);
  return rocAuc(scores, labels);
}

export interface ProCurve {
  /** Increasing, from 0 to 1. */
  readonly fpr: Float64Array;
  readonly pro: Float64Array;
}

/** The PRO curve: one point per distinct map value (falling thresholds), from (0, 0) to (1, 1). */
export function proCurve(maps: readonly LabelledMap[]): ProCurve {
  const { scores } = pooled(maps);
  const fpStep = new Float64Array(scores.length); // 1 on normal pixels
  const proStep = new Float64Array(scores.length); // 1 / |R| on the pixels of region R
  let normal = 0;
  let regions = 0;
  let at = 0;
  for (const m of maps) {
    const { labels, regions: rs } = connectedRegions(m.mask, m.width, m.height);
    regions += rs.length;
    for (let i = 0; i < labels.length; i++, at++) {
      const l = labels[i]!;
      if (l === 0) {
        fpStep[at] = 1;
        normal++;
      } else proStep[at] = 1 / rs[l - 1]!.area;
    }
  }
  if (normal === 0 || regions === 0) throw new RangeError('the PRO curve needs both normal pixels and defect regions');
  const order = Uint32Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[b]! - scores[a]!);
  const fpr = [0];
  const pro = [0];
  let fp = 0;
  let ov = 0;
  for (let k = 0; k < order.length; k++) {
    const i = order[k]!;
    fp += fpStep[i]!;
    ov += proStep[i]!;
    const next = order[k + 1];
    if (next === undefined || scores[next] !== scores[i]) {
      fpr.push(Math.min(1, fp / normal));
      pro.push(Math.min(1, ov / regions));
    }
  }
  fpr.push(1);
  pro.push(1);
  return { fpr: Float64Array.from(fpr), pro: Float64Array.from(pro) };
}

/** The area under y(x) from x[0] to xMax by trapezoids, y interpolated linearly at xMax; x increasing. */
export function trapezoidTo(x: ArrayLike<number>, y: ArrayLike<number>, xMax: number): number {
  let area = 0;
  for (let i = 1; i < x.length; i++) {
    const [xa, xb, ya, yb] = [x[i - 1]!, x[i]!, y[i - 1]!, y[i]!];
    if (xa >= xMax) break;
    if (xb <= xMax) area += 0.5 * (ya + yb) * (xb - xa);
    else {
      const yAt = ya + ((yb - ya) * (xMax - xa)) / (xb - xa);
      area += 0.5 * (ya + yAt) * (xMax - xa);
      break;
    }
  }
  return area;
}

/** AU-PRO up to the FPR `limit` (default 0.3, MVTec AD's), normalised to [0, 1]. */
export function auPro(maps: readonly LabelledMap[], limit = 0.3): number {
  if (!(limit > 0 && limit <= 1)) throw new RangeError(`the FPR limit must be in (0, 1], got ${limit}`);
  const c = proCurve(maps);
  return trapezoidTo(c.fpr, c.pro, limit) / limit;
}

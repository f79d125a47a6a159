/**
 * Detection metrics of anomaly scores against labels (1 or true: anomaly).
 *   ROC-AUC = P(score of a random anomaly > score of a random normal input) + 0.5 P(equal),
 *           computed exactly from ranks (Mann-Whitney U): tied scores share their average rank, so
 *           AUC = (sum of the anomalies' ranks - P (P + 1) / 2) / (P N).
 *   At a threshold t an input is flagged when score > t: precision = TP / (TP + FP),
 *   recall = TP / (TP + FN), false-positive rate = FP / (FP + TN).
 */

export type Labels = ArrayLike<number | boolean>;

function isAnomaly(labels: Labels, i: number): boolean {
  return Boolean(labels[i]);
}

function checkLengths(scores: ArrayLike<number>, labels: Labels): void {
  if (scores.length !== labels.length) throw new RangeError(`${scores.length} scores but ${labels.length} labels`);
}

/** Indices of `values` by increasing value. */
export function argsort(values: ArrayLike<number>): Uint32Array {
  const order = Uint32Array.from({ length: values.length }, (_, i) => i);
  return order.sort((a, b) => values[a]! - values[b]!);
}

/** Exact ROC-AUC with ties counted one half; NaN when the labels hold only one class. Scores must not be NaN. */
export function rocAuc(scores: ArrayLike<number>, labels: Labels): number {
  checkLengths(scores, labels);
  const order = argsort(scores);
  let positives = 0;
  let rankSum = 0;
  for (let start = 0; start < order.length;) {
    let end = start + 1;
    while (end < order.length && scores[order[end]!] === scores[order[start]!]) end++;
    const averageRank = (start + 1 + end) / 2; // ranks start + 1 .. end, 1-based
    for (let k = start; k < end; k++) {
      if (isAnomaly(labels, order[k]!)) {
        positives++;
        rankSum += averageRank;
      }
    }
    start = end;
  }
  const negatives = order.length - positives;
  if (positives === 0 || negatives === 0) return NaN;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

export interface Confusion {
  readonly threshold: number;
  readonly tp: number;
  readonly fp: number;
  readonly tn: number;
  readonly fn: number;
  /** NaN when nothing is flagged. */
  readonly precision: number;
  /** NaN when there are no anomalies. */
  readonly recall: number;
  /** NaN when there are no normal inputs. */
  readonly falsePositiveRate: number;
}

/** Counts at a threshold: flagged when score > threshold. */
export function confusionAt(scores: ArrayLike<number>, labels: Labels, threshold: number): Confusion {
  checkLengths(scores, labels);
  let tp = 0;
  let fp = 0;
  let tn = 0;
  let fn = 0;
  for (let i = 0; i < scores.length; i++) {
    const flagged = scores[i]! > threshold;
    if (isAnomaly(labels, i)) {
      if (flagged) tp++;
      else fn++;
    } else if (flagged) fp++;
    else tn++;
  }
  return { threshold, tp, fp, tn, fn, precision: tp / (tp + fp), recall: tp / (tp + fn), falsePositiveRate: fp / (fp + tn) };
}

export interface RocPoint {
  readonly fpr: number;
  readonly tpr: number;
}

/** The ROC curve from (0, 0) to (1, 1): one point per distinct score, thresholds falling. */
export function rocCurve(scores: ArrayLike<number>, labels: Labels): RocPoint[] {
  checkLengths(scores, labels);
  const order = argsort(scores).reverse();
  let positives = 0;
  for (let i = 0; i < labels.length; i++) if (isAnomaly(labels, i)) positives++;
  const negatives = labels.length - positives;
  const points: RocPoint[] = [{ fpr: 0, tpr: 0 }];
  let tp = 0;
  let fp = 0;
  for (let k = 0; k < order.length; k++) {
    if (isAnomaly(labels, order[k]!)) tp++;
    else fp++;
    const next = order[k + 1];
    if (next === undefined || scores[next] !== scores[order[k]!]) points.push({ fpr: fp / Math.max(1, negatives), tpr: tp / Math.max(1, positives) });
  }
  return points;
}

/** The q-quantile of values (linear interpolation between order statistics, numpy's default). */
export function quantile(values: ArrayLike<number>, q: number): number {
  if (values.length === 0) throw new RangeError('quantile of no values');
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile must be in [0, 1], got ${q}`);
  const sorted = Float64Array.from(values).sort();
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (pos - lo) * (sorted[hi]! - sorted[lo]!);
}

/**
 * Visual inspection: where in an image a patch model (an SAE, or a baseline) fails to reconstruct.
 *   origins   oy in Y = {0, s, 2s, ...} plus H - p when the stride does not land there (so every
 *             pixel is covered), ox in X likewise; s = stride, p = the patch side
 *   x         the p x p patch at (oy, ox), row-major [p, p, channels]
 *   y         the SAE's saved preprocessing: y = W (x - mean(x) - mu) (mean removal and whitening
 *             as saved; see src/data/whitening.ts)
 *   e(oy, ox) = ||x_hat - y||^2, x_hat = decode(encode(y)): the error in the space the model reads
 *   map(r, c) = mean of e over the patches covering pixel (r, c)
 *             = sum_{oy <= r < oy + p, ox <= c < ox + p} e(oy, ox) / (n_y(r) n_x(c)),
 *             n_y(r) = #{oy in Y : oy <= r < oy + p} (the count of covering patches is separable)
 * The sums are difference arrays along x, then along y: O(H W + patches), whatever p is.
 * Patches are gathered a band of patch rows at a time (a copy of p image rows per patch) and scored
 * by one onnxruntime call per band: preprocessing, encode, decode and the error in one graph.
 */
import { paramInputs } from '../arch/graphs.js';
import type { ChannelImage } from '../data/images.js';
import { type ImagePreprocess, patchWidth } from '../data/whitening.js';
import type { Engine } from '../engine/index.js';
import { GraphBuilder, type Value } from '../engine/onnx.js';
import type { Feeds } from '../engine/ort.js';
import { fileError, UserError } from '../errors.js';
import type { Sae } from '../sae.js';

/** A model of preprocessed patches that can tell its reconstruction error. */
export interface PatchModel {
  /** Names the model in reports. */
  readonly name: string;
  /** The engine's cache key of its error graph: models with equal keys share the graph (not the feeds). */
  readonly key: string;
  readonly dIn: number;
  /** Declares the model's inputs in g; y: [batch, dIn] -> error: [batch], ||x_hat - y||^2 per row. */
  errorGraph(g: GraphBuilder, y: Value): Value;
  /** Values of the inputs errorGraph declares. */
  readonly feeds: Feeds;
}

/** The SAE as a patch model: x_hat = decode(encode(y)). */
export function saeModel(sae: Sae, name = 'SAE'): PatchModel {
  const feeds: Feeds = {};
  for (const spec of sae.def.params(sae.dims, sae.hyper)) feeds[spec.name] = { data: sae.params[spec.name]!, dims: spec.shape };
  return {
    name,
    key: sae.key,
    dIn: sae.dims.dIn,
    feeds,
    errorGraph(g, y) {
      const p = paramInputs(g, sae.def, sae.hyper, sae.dims);
      const { f } = sae.def.encode(g, y, p, sae.hyper, sae.dims);
      const xHat = sae.def.decode(g, f, p, sae.hyper, sae.dims); // [batch, dIn]
      return g.sum(g.square(g.sub(xHat, y)), [1]);
    },
  };
}

/** What inspection needs: the saved patch preprocessing and a model of its output. */
export interface Inspector {
  readonly preprocess: ImagePreprocess;
  readonly model: PatchModel;
}

/** Checks that the model reads patches as the preprocessing writes them. */
export function inspector(preprocess: ImagePreprocess, model: PatchModel): Inspector {
  const d = patchWidth(preprocess);
  if (model.dIn !== d)
    throw new UserError(
      `${model.name} reads rows of ${model.dIn} values, but the image preprocessing makes patches of ${d} (${preprocess.patchSize} x ${preprocess.patchSize} x ${preprocess.channels ?? 1})`,
    );
  return { preprocess, model };
}

/** Patches per onnxruntime call, at most (a band holds whole patch rows; at least one). */
const BAND_PATCHES = 4096;

/** x: [batch, d] raw patches -> error: [batch]; the preprocessing's mean and W^T are inputs pre.mean, pre.wT. */
function buildInspectModel(pre: ImagePreprocess, model: PatchModel): Uint8Array {
  const d = patchWidth(pre);
  const g = new GraphBuilder();
  const x = g.input('x', ['batch', d]);
  let y = x;
  if (pre.meanRemoval) y = g.sub(y, g.div(g.sum(y, [1], true), g.scalar(d))); // x - mean_i(x_i)
  if (pre.whitening !== 'none') y = g.matmul(g.sub(y, g.input('pre.mean', [d])), g.input('pre.wT', [d, d])); // (x - mu) W^T
  g.output(model.errorGraph(g, y), 'error', ['batch']);
  return g.encode();
}

function preprocessFeeds(pre: ImagePreprocess): Feeds {
  if (pre.whitening === 'none') return {};
  const d = patchWidth(pre);
  const wT = new Float32Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) wT[j * d + i] = pre.matrix[i * d + j]!;
  return { 'pre.mean': { data: pre.mean, dims: [d] }, 'pre.wT': { data: wT, dims: [d, d] } };
}

/** The origins of the patches along a side of n pixels: 0, s, 2s, ... and n - p if missed. */
export function patchOrigins(n: number, p: number, stride: number): Int32Array {
  const out: number[] = [];
  for (let o = 0; o + p <= n; o += stride) out.push(o);
  if (out[out.length - 1] !== n - p) out.push(n - p);
  return Int32Array.from(out);
}

/** An image's anomaly map. */
export interface AnomalyMap {
  readonly width: number;
  readonly height: number;
  /** [height, width]: the mean error of the patches covering each pixel. */
  readonly map: Float32Array;
  /** [ys.length, xs.length]: the error of each patch. */
  readonly patchErrors: Float32Array;
  /** Patch origins down and across. */
  readonly ys: Int32Array;
  readonly xs: Int32Array;
}

/** A stride of 1 .. p: a larger one would leave pixels between patches uncovered. */
export function checkStride(stride: number, p: number): void {
  if (!Number.isSafeInteger(stride) || stride < 1 || stride > p)
    throw new UserError(`the stride must be an integer from 1 to the patch side ${p} (a larger one leaves pixels uncovered), got ${stride}`);
}

/** Refuses an image the inspector cannot read: other channels than the SAE's, smaller than a patch. */
export function checkImage(ins: Inspector, image: ChannelImage): void {
  const p = ins.preprocess.patchSize;
  const c = ins.preprocess.channels ?? 1;
  const name = (k: number): string => (k === 1 ? 'grey' : 'colour (RGB)');
  if (image.channels !== c) throw fileError(image.path, `is a ${name(image.channels)} image, but the SAE reads ${name(c)} patches`);
  if (image.width < p || image.height < p) throw fileError(image.path, `is ${image.width} x ${image.height} pixels, smaller than the SAE's ${p} x ${p} patch`);
}

/**
 * image: [height, width, channels] -> its anomaly map at the given stride (see the formulas at the top).
 * The patch errors are computed a band of patch rows per onnxruntime call.
 */
export async function mapImage(engine: Engine, ins: Inspector, image: ChannelImage, stride: number): Promise<AnomalyMap> {
  checkStride(stride, ins.preprocess.patchSize);
  checkImage(ins, image);
  const pre = ins.preprocess;
  const p = pre.patchSize;
  const c = pre.channels ?? 1;
  const d = patchWidth(pre);
  const { width: w, height: h, pixels } = image;
  const ys = patchOrigins(h, p, stride);
  const xs = patchOrigins(w, p, stride);
  const nx = xs.length;
  const graph = await engine.graph(`inspect:${ins.model.key}:${p}x${c}:${pre.meanRemoval}:${pre.whitening}`, () => buildInspectModel(pre, ins.model));
  const feeds: Feeds = { ...ins.model.feeds, ...preprocessFeeds(pre) };
  const bandRows = Math.max(1, Math.floor(BAND_PATCHES / nx));
  const band = new Float32Array(Math.min(bandRows, ys.length) * nx * d); // [patches, d]
  const patchErrors = new Float32Array(ys.length * nx);
  const rowValues = p * c;
  for (let j0 = 0; j0 < ys.length; j0 += bandRows) {
    const j1 = Math.min(ys.length, j0 + bandRows);
    let at = 0;
    for (let j = j0; j < j1; j++) {
      for (let i = 0; i < nx; i++) {
        for (let r = 0; r < p; r++) {
          let from = ((ys[j]! + r) * w + xs[i]!) * c;
          const end = from + rowValues;
          while (from < end) band[at++] = pixels[from++]!; // a plain loop: twice as fast as subarray + set for rows this short
        }
      }
    }
    const n = (j1 - j0) * nx;
    feeds['x'] = { data: band.subarray(0, n * d), dims: [n, d] };
    patchErrors.set((await graph.run(feeds))['error']!.data as Float32Array, j0 * nx);
  }
  return { width: w, height: h, map: coverMean(patchErrors, ys, xs, p, h, w), patchErrors, ys, xs };
}

/** The number of windows [o, o + p) of `origins` that cover each of n positions: [n]. */
function coverCounts(origins: Int32Array, p: number, n: number): Float64Array {
  const diff = new Float64Array(n + 1);
  for (const o of origins) {
    diff[o]! += 1;
    diff[o + p]! -= 1;
  }
  const out = new Float64Array(n);
  let run = 0;
  for (let i = 0; i < n; i++) out[i] = run += diff[i]!;
  return out;
}

/**
 * errors: [ys.length, xs.length] patch errors -> [h, w], each pixel the mean error of the p x p
 * patches covering it (difference arrays along x per patch row, then along y).
 */
export function coverMean(errors: Float32Array, ys: Int32Array, xs: Int32Array, p: number, h: number, w: number): Float32Array {
  const nx = xs.length;
  const rowDiff = new Float64Array(w + 1);
  const rowSum = new Float64Array(w);
  const colDiff = new Float64Array((h + 1) * w); // [h + 1, w]
  for (let j = 0; j < ys.length; j++) {
    rowDiff.fill(0);
    for (let i = 0; i < nx; i++) {
      const e = errors[j * nx + i]!;
      rowDiff[xs[i]!]! += e;
      rowDiff[xs[i]! + p]! -= e;
    }
    let run = 0;
    for (let x = 0; x < w; x++) rowSum[x] = run += rowDiff[x]!;
    const top = ys[j]! * w;
    const bottom = (ys[j]! + p) * w;
    for (let x = 0; x < w; x++) {
      colDiff[top + x]! += rowSum[x]!;
      colDiff[bottom + x]! -= rowSum[x]!;
    }
  }
  const cy = coverCounts(ys, p, h);
  const cx = coverCounts(xs, p, w);
  const out = new Float32Array(h * w);
  const acc = new Float64Array(w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      acc[x]! += colDiff[y * w + x]!;
      out[y * w + x] = Math.max(0, acc[x]!) / (cy[y]! * cx[x]!);
    }
  }
  return out;
}

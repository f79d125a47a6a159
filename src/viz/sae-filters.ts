/** The decoder filters of an image SAE as a PNG, in pixel space (undoing the whitening) or as trained. */
import { type ImagePreprocess, toPixelSpace } from '../data/whitening.js';
import type { Engine } from '../engine/index.js';
import { UserError } from '../errors.js';
import type { PngImage } from '../io/png.js';
import type { Sae } from '../sae.js';
import { byFrequency, filterGrid, type FilterGridOptions, patchSide } from './filters.js';

export type FilterSpace = 'pixel' | 'whitened';

export interface SaeFilterOptions extends FilterGridOptions {
  /**
   * 'whitened' (default): the decoder rows as trained, in the whitened space the SAE sees (for ZCA
   * this space is still aligned with the pixels: localised edges show as such); 'pixel': mapped
   * back through the inverse whitening (smoother, lower-frequency pictures).
   */
  readonly space?: FilterSpace;
  /** Order by firing rate (most frequent first) when rates are given; else by index. */
  readonly log10Rates?: Float32Array | undefined;
  /** Draw at most this many filters. */
  readonly max?: number;
}

export async function saeFilters(engine: Engine, sae: Sae, preprocess: ImagePreprocess | undefined, o: SaeFilterOptions = {}): Promise<PngImage> {
  const { dIn, dSae } = sae.dims;
  const p = preprocess?.patchSize ?? patchSide(dIn);
  if (p === undefined || p * p !== dIn) throw new UserError(`d_in ${dIn} is not the size of a square patch: this SAE was not trained on image patches`);
  const space = o.space ?? 'whitened';
  if (space === 'pixel' && !preprocess) throw new UserError('pixel space needs the preprocessing the SAE was trained with (preprocess.safetensors)');
  const wDec = sae.param('W_dec'); // [dSae, dIn]
  const rows = space === 'pixel' ? await toPixelSpace(preprocess!, wDec, dSae, engine) : wDec;
  const order = (o.log10Rates ? byFrequency(o.log10Rates) : Array.from({ length: dSae }, (_, i) => i)).slice(0, o.max ?? dSae);
  return filterGrid(rows, dSae, p, o, order);
}

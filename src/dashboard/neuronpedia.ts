/**
 * Features in the JSON layout Neuronpedia imports: SAEDashboard's NeuronpediaDashboardBatch
 * (sae_dashboard/neuronpedia/neuronpedia_dashboard.py), one file per batch of features:
 *   { model_id, layer, sae_set, features: [ { feature_index, ..., activations: [ { bin_min, bin_max,
 *     bin_contains, tokens, values } ] } ] }
 * Fields we fill:
 *   feature_index; frac_nonzero (the firing rate); freq_hist_data_bar_values / _heights (bin centres
 *   and counts of the activation histogram); n_prompts_total (inputs evaluated) and n_tokens_in_prompt
 *   (1: every input is one row; token contexts come from the neighbouring rows); dataset (its name);
 *   neuron_alignment_indices / _values / _l1 (the 3 largest |W_dec[i, j]|, signed, and |value| over
 *   ||W_dec[i]||_1); activations: the top examples (bin_min -1, bin_max the largest activation,
 *   bin_contains -1, as SAEDashboard marks them) then each quantile band (bin_min and bin_max its
 *   activations, bin_contains the fraction of all inputs that fall in it), each example with tokens and
 *   values: the context and the activation on each of its tokens for token data; one pseudo-token
 *   "file.jpg@x,y" (image patches) or "row 12" (plain vectors) and its activation otherwise.
 *   neg_/pos_str and _values: the top logit effects (logit-effects.ts) when a model's unembedding
 *   gives them.
 * Left empty: logits_hist_*, correlated neurons and features, decoder_weights_dist (attention heads only).
 */
import type { FeatureStats, QuantileBand } from './collect.js';
import type { FeatureLogits } from './logit-effects.js';
import { cutToken, MAX_EXPORT_TOKEN_CHARS } from './tokens.js';

export interface NeuronpediaActivation {
  readonly bin_min: number;
  readonly bin_max: number;
  readonly bin_contains: number;
  readonly tokens: readonly string[];
  readonly values: readonly number[];
}

export interface NeuronpediaFeature {
  readonly feature_index: number;
  readonly neuron_alignment_indices: readonly number[];
  readonly neuron_alignment_values: readonly number[];
  readonly neuron_alignment_l1: readonly number[];
  readonly correlated_neurons_indices: readonly number[];
  readonly correlated_neurons_l1: readonly number[];
  readonly correlated_neurons_pearson: readonly number[];
  readonly correlated_features_indices: readonly number[];
  readonly correlated_features_l1: readonly number[];
  readonly correlated_features_pearson: readonly number[];
  readonly neg_str: readonly string[];
  readonly neg_values: readonly number[];
  readonly pos_str: readonly string[];
  readonly pos_values: readonly number[];
  readonly frac_nonzero: number;
  readonly freq_hist_data_bar_values: readonly number[];
  readonly freq_hist_data_bar_heights: readonly number[];
  readonly logits_hist_data_bar_heights: readonly number[];
  readonly logits_hist_data_bar_values: readonly number[];
  readonly n_prompts_total: number;
  readonly n_tokens_in_prompt: number;
  readonly dataset: string;
  readonly decoder_weights_dist: readonly number[];
  readonly activations: readonly NeuronpediaActivation[];
}

export interface NeuronpediaBatch {
  readonly model_id: string;
  readonly layer: number;
  readonly sae_set: string;
  readonly features: readonly NeuronpediaFeature[];
}

/** An example as tokens and values. */
export interface TokensAndValues {
  readonly tokens: readonly string[];
  readonly values: readonly number[];
}

/** Features per batch file (SAEDashboard writes batches of 128). */
export const NEURONPEDIA_BATCH = 128;

function round(v: number): number {
  return Number.isFinite(v) ? Number(v.toPrecision(4)) : 0;
}

/** w: [dIn] a decoder row -> its `k` largest |entries|: indices, signed values, and |value| / ||w||_1. */
export function neuronAlignment(w: Float32Array, k = 3): { indices: number[]; values: number[]; l1: number[] } {
  const order = Array.from(w.keys())
    .sort((a, b) => Math.abs(w[b]!) - Math.abs(w[a]!) || a - b)
    .slice(0, k);
  const l1 = w.reduce((s, v) => s + Math.abs(v), 0);
  return { indices: order, values: order.map((j) => round(w[j]!)), l1: order.map((j) => (l1 > 0 ? round(Math.abs(w[j]!) / l1) : 0)) };
}

export function neuronpediaFeature(
  s: FeatureStats,
  decoderRow: Float32Array,
  top: readonly TokensAndValues[],
  bands: readonly { readonly band: QuantileBand; readonly examples: readonly TokensAndValues[] }[],
  context: { readonly inputs: number; readonly dataset: string },
  logits?: FeatureLogits,
): NeuronpediaFeature {
  const align = neuronAlignment(decoderRow);
  const h = s.histogram;
  const example = (e: TokensAndValues, binMin: number, binMax: number, contains: number): NeuronpediaActivation => ({
    bin_min: binMin,
    bin_max: binMax,
    bin_contains: contains,
    tokens: e.tokens.map((t) => cutToken(t, MAX_EXPORT_TOKEN_CHARS)),
    values: e.values.map(round),
  });
  return {
    feature_index: s.index,
    neuron_alignment_indices: align.indices,
    neuron_alignment_values: align.values,
    neuron_alignment_l1: align.l1,
    correlated_neurons_indices: [],
    correlated_neurons_l1: [],
    correlated_neurons_pearson: [],
    correlated_features_indices: [],
    correlated_features_l1: [],
    correlated_features_pearson: [],
    neg_str: logits?.neg.map((t) => t.token) ?? [],
    neg_values: logits?.neg.map((t) => round(t.value)) ?? [],
    pos_str: logits?.pos.map((t) => t.token) ?? [],
    pos_values: logits?.pos.map((t) => round(t.value)) ?? [],
    frac_nonzero: s.density,
    freq_hist_data_bar_values: h.counts.map((_, b) => round((h.edges[b]! + h.edges[b + 1]!) / 2)),
    freq_hist_data_bar_heights: [...h.counts],
    logits_hist_data_bar_heights: [],
    logits_hist_data_bar_values: [],
    n_prompts_total: context.inputs,
    n_tokens_in_prompt: 1,
    dataset: context.dataset,
    decoder_weights_dist: [],
    activations: [
      ...top.map((e) => example(e, -1, round(s.maxActivation), -1)),
      ...bands.flatMap(({ band, examples }) => examples.map((e) => example(e, round(band.lo), round(band.hi), round((band.to - band.from) * s.density)))),
    ],
  };
}

/** The layer of a hook name such as "blocks.3.hook_resid_post", else undefined. */
export function layerOfHook(hook: unknown): number | undefined {
  const m = typeof hook === 'string' ? /(?:^|\.)(?:blocks|layers?|h)\.(\d+)\./.exec(hook) : null;
  return m ? Number(m[1]) : undefined;
}

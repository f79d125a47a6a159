/** sae dashboard: a static site of an SAE's features over a dataset (see src/dashboard/build.ts). */
import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { demoImagePaths } from '../../data/demo-images.js';
import { imagePatchDataset, isImagePatchDataset } from '../../data/image-dataset.js';
import { loadImagePreprocess } from '../../data/preprocess-file.js';
import { buildDashboard } from '../../dashboard/build.js';
import { type LogitSource, logitSource } from '../../dashboard/logit-effects.js';
import { openTransformer, resolveModel } from '../../lm/model.js';
import type { ExampleSource } from '../../dashboard/examples.js';
import { readTokenFile } from '../../dashboard/tokens.js';
import { isStoreDataset } from '../../store/dataset.js';
import { storeTokenRows } from '../../store/tokens.js';
import type { Dataset } from '../../data/dataset.js';
import { Engine } from '../../engine/index.js';
import { fileError, UserError } from '../../errors.js';
import { loadAnySaeAsSae } from '../../formats/index.js';
import type { Sae } from '../../sae.js';
import { PREPROCESS_FILENAME } from '../../train/run.js';
import type { Parsed } from '../args.js';
import { defineCommand, print } from '../command.js';
import { formatMetrics } from './format.js';
import { OPTIONAL_INPUT_OPTIONS, openInput } from './inference-data.js';

const spec = {
  name: 'dashboard',
  summary:
    "Writes a static site of an SAE's features over a dataset (open index.html from disk): metrics, firing-rate and L0 histograms, a sortable feature list, and a page per feature with its activation histogram, top examples and examples across its activation range; image patches shown in their source image, token contexts shaded by activation. Also exports the features as Neuronpedia JSON.",
  usage: 'sae dashboard SAE_DIR (--data FILE | --demo-images) --out DIR [options]',
  positionals: ['SAE_DIR'],
  options: {
    out: { kind: 'string', help: 'the folder to write the site into (index.html, features/, neuronpedia/)', required: true },
    demoImages: { kind: 'boolean', help: 'use the demo photographs as data (for an SAE made by sae demo) instead of --data' },
    tokens: {
      kind: 'string',
      help: 'token data: a JSON file {"tokens": [one string per row], "documents": [one id per row]} (an activation store brings its own)',
    },
    contextBefore: { kind: 'integer', help: 'token data: tokens shown before an example (default 12)', min: 0 },
    contextAfter: { kind: 'integer', help: 'token data: tokens shown after an example (default 4)', min: 0 },
    maxRows: { kind: 'integer', help: 'read at most the first N rows of the data', min: 1 },
    topK: { kind: 'integer', help: 'top activating examples kept per feature (default 20; 12 shown)', min: 1 },
    samples: { kind: 'integer', help: 'firing examples sampled per feature for the quantile bands (default 64)', min: 1 },
    title: { kind: 'string', help: 'title of the pages (default: the SAE folder name)' },
    model: {
      kind: 'string',
      help: "token data: the causal language model whose unembedding W_U gives each feature's logit effects: a Hugging Face folder, a .gguf file, a transformers.js folder or an .onnx file (default: cfg.json model_name when it is a path on disk)",
    },
    modelId: { kind: 'string', help: 'Neuronpedia export: model_id (default: cfg.json metadata model_name)' },
    saeSet: { kind: 'string', help: 'Neuronpedia export: sae_set (default: the title)' },
    layer: { kind: 'integer', help: 'Neuronpedia export: layer (default: from the hook name, else 0)', min: 0 },
    ...OPTIONAL_INPUT_OPTIONS,
    seed: { ...OPTIONAL_INPUT_OPTIONS.seed, min: 0 },
    batchSize: { kind: 'integer', help: 'rows per onnxruntime call (default: by d_sae)', group: 'input', min: 1 },
  },
} as const;
type DashboardArgs = Parsed<typeof spec>;

/** --data, or with --demo-images the demo photographs cut and whitened as the SAE's preprocess.safetensors says. */
async function openData(args: DashboardArgs, dir: string, sae: Sae, engine: Engine): Promise<Dataset> {
  const { data, patches, seed } = args;
  if (args.demoImages !== true) {
    if (data === undefined) throw new UserError('--data is required (or --demo-images)');
    return openInput({ ...args, data }, dir, sae, engine);
  }
  if (data !== undefined) throw new UserError('give --data or --demo-images, not both');
  const preprocess = await loadImagePreprocess(join(dir, PREPROCESS_FILENAME));
  if (preprocess.patchSize ** 2 !== sae.dims.dIn)
    throw fileError(join(dir, PREPROCESS_FILENAME), `patches of ${preprocess.patchSize ** 2} pixels, but the SAE takes d_in = ${sae.dims.dIn}`);
  return imagePatchDataset(
    await demoImagePaths(),
    { preprocess, ...(patches !== undefined ? { patches } : {}), ...(seed !== undefined ? { seed } : {}) },
    engine,
  );
}

async function exampleSource(args: DashboardArgs, ds: Dataset): Promise<ExampleSource> {
  const { tokens, contextBefore: before, contextAfter: after } = args;
  const context = { ...(before !== undefined ? { before } : {}), ...(after !== undefined ? { after } : {}) };
  if (tokens !== undefined) return { kind: 'tokens', tokens: await readTokenFile(tokens, ds.rows), context };
  if (isStoreDataset(ds)) return { kind: 'tokens', tokens: await storeTokenRows(ds), context };
  if (isImagePatchDataset(ds)) return { kind: 'images', images: ds.images, origins: ds.origins, patchSize: ds.preprocess.patchSize };
  return { kind: 'rows' };
}

/** Logit effects from a hooked transformer's W_U (only the embedding, final norm and W_U are read); undefined for other models. */
export async function transformerLogits(engine: Engine, model: string | undefined): Promise<LogitSource | undefined> {
  if (model === undefined) return undefined;
  const layout = await resolveModel(model);
  if (layout !== 'gguf' && layout !== 'hf-folder') return undefined;
  const tf = await openTransformer(model, engine, { upTo: 'unembed' });
  return { kind: 'model', model: tf.model.name, unembedding: tf.model.unembedding(), vocab: tf.vocab };
}

export const dashboardCommand = defineCommand(spec, async (args, io) => {
  const {
    positionals: [dir],
    out,
    batchSize: batch,
    maxRows,
    topK,
    samples,
    layer,
    modelId,
    saeSet,
    model,
  } = args;
  const sae = await loadAnySaeAsSae(dir);
  const engine = new Engine({ warn: (m) => print(io.stderr, m) });
  const ds = await openData(args, dir, sae, engine);
  try {
    const source = await exampleSource(args, ds);
    const title = args.title ?? basename(resolve(dir));
    const modelName = sae.metadata['model_name'];
    const logits =
      source.kind === 'tokens' || model !== undefined
        ? ((await transformerLogits(engine, model)) ??
          (await logitSource(engine, model, typeof modelName === 'string' ? { name: modelName, ...(existsSync(modelName) ? { path: modelName } : {}) } : {})))
        : undefined;
    const r = await buildDashboard(engine, sae, ds, source, {
      out,
      title,
      ...(batch !== undefined ? { batchSize: batch } : {}),
      ...(maxRows !== undefined ? { maxRows } : {}),
      ...(topK !== undefined ? { topK } : {}),
      ...(samples !== undefined ? { samples } : {}),
      ...(isImagePatchDataset(ds) ? { preprocess: ds.preprocess } : {}),
      ...(logits !== undefined ? { logits } : {}),
      neuronpedia: { ...(modelId !== undefined ? { modelId } : {}), ...(saeSet !== undefined ? { saeSet } : {}), ...(layer !== undefined ? { layer } : {}) },
      log: (m) => print(io.stderr, m),
    });
    if (r.skippedRows > 0) print(io.stderr, `${ds.name}: ${r.skippedRows} rows contain NaN or Inf; they were left out`);
    if (r.metrics.inputs === 0) throw new UserError(`${ds.name}: no finite rows to show`);
    print(io.stdout, `${formatMetrics(r.metrics)}\nwrote ${r.pages} feature pages; open ${pathToFileURL(resolve(r.index)).href}`);
  } finally {
    await ds.close();
    await engine.release();
  }
  return 0;
});

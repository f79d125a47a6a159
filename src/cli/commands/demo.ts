/**
 * sae demo: the classic result on real photographs. 12 x 12 grey patches of eight public-domain
 * photos, ZCA-whitened; a ReLU SAE 144 -> 256 with a unit-norm decoder learns localised, oriented
 * edge filters with about 20 of 256 latents active per patch. Writes the SAE, metrics, the
 * filters as PNGs and an HTML page that shows them.
 */
import { join } from 'node:path';
import { demoImagePaths } from '../../data/demo-images.js';
import { writeFileAtomic } from '../../io/atomic.js';
import { writePng } from '../../io/png.js';
import { TrainConfig } from '../../train/config.js';
import { runTraining } from '../../train/run.js';
import { renderReport } from '../../viz/report.js';
import { saeFilters } from '../../viz/sae-filters.js';
import { type Command, defineCommand, print } from '../command.js';
import { formatMetrics } from './format.js';
import { ENGINE_OPTIONS, engineOf } from './inference-data.js';
import { llmDemoCommand } from './llm-demo.js';
import { textDemoCommand } from './text-demo.js';

/** The demo's training settings. */
export function demoConfig(paths: string[], out: string, steps: number, patches: number): TrainConfig {
  return TrainConfig.parse({
    data: { path: paths, format: 'images', patchSize: 12, patches, whitening: 'zca', whiteningEps: 1e-3, batchSize: 4096 },
    model: { architecture: 'standard', dSae: 256, coefficient: 1.2, unitNormDecoder: true },
    optimizer: { lr: 3e-3 },
    schedule: { steps, decaySteps: Math.floor(steps / 5), coefficientWarmupSteps: Math.floor(steps / 20) },
    logging: { out, logEvery: Math.max(1, Math.floor(steps / 20)), checkpointEvery: Math.max(1, Math.floor(steps / 5)) },
  });
}

const photoDemo = defineCommand(
  {
    name: 'demo',
    summary: 'Trains a sparse autoencoder on patches of real photographs and writes the SAE, metrics and its edge filters (PNG + HTML page).',
    usage: 'sae demo [options]',
    options: {
      out: { kind: 'string', help: 'results folder (default demo-results)', default: 'demo-results' },
      steps: { kind: 'integer', help: 'training steps of 4096 patches (default 5000)', default: 5000, min: 1 },
      patches: { kind: 'integer', help: 'patches cut from the photos (default 200000)', default: 200_000, min: 4096 },
      ...ENGINE_OPTIONS,
      quiet: { kind: 'boolean', help: 'no progress output', default: false },
      text: { kind: 'boolean', help: 'the text demo instead: USE-lite MLP features on Moby-Dick (see sae demo --text --help)' },
      llm: { kind: 'boolean', help: 'the language-model demo instead: TinyLlama-1.1B residual-stream features on Moby-Dick (see sae demo --llm --help)' },
    },
  },
  async (v, io) => {
    const { out, steps, patches } = v;
    const config = demoConfig(await demoImagePaths(), out, steps, patches);
    const engine = engineOf(v, io);
    const r = await runTraining({ ...config, logging: { ...config.logging, quiet: v.quiet } }, { stderr: io.stderr, overwrite: true }, engine);
    const filters = await saeFilters(engine, r.sae, r.preprocess, { log10Rates: r.log10FiringRates, space: 'whitened' });
    await writePng(join(out, 'filters.png'), filters);
    await writePng(join(out, 'filters_pixel.png'), await saeFilters(engine, r.sae, r.preprocess, { log10Rates: r.log10FiringRates, space: 'pixel' }));
    const m = r.metrics;
    const html = renderReport('Sparse autoencoder on natural image patches', [
      {
        heading: 'What this is',
        text:
          `A ReLU sparse autoencoder (144 -> 256 latents, unit-norm decoder, L1 penalty) trained for ${steps} steps of 4096 ` +
          `ZCA-whitened 12 x 12 grey patches cut from eight public-domain photographs. Each square below is one latent's decoder ` +
          `direction, most frequently active first; grey is zero.`,
      },
      { heading: 'Held-out metrics', table: { ...m, 'training seconds': r.seconds } },
      { heading: 'Decoder filters (whitened space, as trained)', images: [{ src: 'filters.png', caption: 'W_dec rows as 12 x 12 patches' }] },
      { heading: 'Decoder filters in pixel space', images: [{ src: 'filters_pixel.png', caption: 'W_dec rows through the inverse whitening' }] },
      {
        heading: 'Files',
        text: 'cfg.json, sae_weights.safetensors and sparsity.safetensors (SAELens layout), preprocess.safetensors, metrics.json, train_log.jsonl',
      },
    ]);
    await writeFileAtomic(join(out, 'index.html'), html);
    print(io.stdout, `${formatMetrics(m)}\nwrote ${out}/ (the SAE, metrics.json, filters.png, index.html) in ${r.seconds.toFixed(0)} s of training`);
    await engine.release();
    return 0;
  },
);

/** sae demo, or with --text / --llm the text or language-model demo (their own options). */
export const demoCommand: Command = {
  ...photoDemo,
  run: (argv, io) =>
    argv.includes('--llm') ? llmDemoCommand.run(argv, io) : argv.includes('--text') ? textDemoCommand.run(argv, io) : photoDemo.run(argv, io),
};

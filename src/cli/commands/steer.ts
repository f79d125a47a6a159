/**
 * sae steer: adds alpha * W_dec[i] at the SAE's hook (or holds feature i at a value) inside the
 * model and shows the effect: the greedy continuation of a prompt for causal language models; for
 * sentence encoders, how similar each steered sentence embedding stays to the clean one and how its
 * similarity to probe sentences shifts.
 */
import { Engine } from '../../engine/index.js';
import { UserError } from '../../errors.js';
import { loadAnySaeAsSae } from '../../formats/index.js';
import { closeLanguageModel, hookTensor, type LanguageModel, openLanguageModel, tokenize } from '../../lm/model.js';
import { rowCosines, type Steer, steerEdit } from '../../lm/splice.js';
import { generateTokens, type Sampling, steeringEdit } from '../../lm/transformer-splice.js';
import type { Sae } from '../../sae.js';
import { defineCommand, print } from '../command.js';
import { MODEL_DTYPE_OPTION, MODEL_HELP } from './harvest.js';

const split = (s: string): string[] =>
  s
    .split(' | ')
    .map((x) => x.trim())
    .filter((x) => x.length > 0);

/** Encoders: per prompt, cos(clean, steered) and the shift of its similarity to each probe. */
async function steerEncoder(
  engine: Engine,
  m: Extract<LanguageModel, { kind: 'encoder' }>,
  sae: Sae,
  node: string,
  s: Steer,
  prompts: string[],
  probes: string[],
): Promise<string[]> {
  const ids = prompts.map((p) => Int32Array.from(m.use.tokenize(p).slice(0, 128)));
  const r = await m.use.run(ids, node, steerEdit(engine, sae, s));
  const d = r.clean.length / prompts.length;
  const cos = rowCosines(r.clean, r.embeddings, d);
  const lines = prompts.map((p, i) => `cos(clean, steered) ${cos[i]!.toFixed(4)}  ${p}`);
  if (probes.length === 0) return lines;
  const probeEmb = (
    await m.use.run(
      probes.map((p) => Int32Array.from(m.use.tokenize(p).slice(0, 128))),
      node,
    )
  ).clean;
  const rep = (a: Float32Array, i: number): Float32Array => {
    const out = new Float32Array(probes.length * d);
    for (let k = 0; k < probes.length; k++) out.set(a.subarray(i * d, (i + 1) * d), k * d);
    return out;
  };
  prompts.forEach((p, i) => {
    const before = rowCosines(rep(r.clean, i), probeEmb, d);
    const after = rowCosines(rep(r.embeddings, i), probeEmb, d);
    lines.push(`"${p}" against the probes (clean -> steered):`);
    probes.forEach((q, k) =>
      lines.push(
        `  ${before[k]!.toFixed(3)} -> ${after[k]!.toFixed(3)} (${after[k]! - before[k]! >= 0 ? '+' : ''}${(after[k]! - before[k]!).toFixed(3)})  ${q}`,
      ),
    );
  });
  return lines;
}

/** Causal models: greedy continuations, clean and steered. */
async function steerCausal(
  engine: Engine,
  m: Extract<LanguageModel, { kind: 'causal' }>,
  sae: Sae,
  tensor: string,
  s: Steer,
  prompts: string[],
  steps: number,
): Promise<string[]> {
  const lines: string[] = [];
  for (const p of prompts) {
    const ids = [...m.lm.prefix, ...tokenize(m, p)];
    const clean = await m.lm.generate(ids, steps);
    const steered = await m.lm.generate(ids, steps, tensor, steerEdit(engine, sae, s));
    lines.push(`prompt:  ${p}`, `clean:   ${m.lm.tokenizer.decode(clean)}`, `steered: ${m.lm.tokenizer.decode(steered)}`);
  }
  return lines;
}

/** Hooked transformers: continuations clean and steered, the edit inside the model's graph, greedy or sampled. */
async function steerTransformer(
  m: Extract<LanguageModel, { kind: 'transformer' }>,
  sae: Sae,
  hook: string,
  s: Steer,
  prompts: string[],
  steps: number,
  sampling: Sampling,
): Promise<string[]> {
  const { model, tokenizer, prefix } = m.tf;
  const width = model.hookWidth(hook);
  if (width !== sae.dims.dIn) throw new UserError(`the SAE reads ${sae.dims.dIn}-wide vectors, but ${hook} of ${model.name} is ${width} wide`);
  const edits = { [hook]: steeringEdit(sae, s) };
  const lines: string[] = [];
  for (const p of prompts) {
    const ids = [...prefix, ...tokenizer.encode(p)];
    const clean = await generateTokens(model, ids, steps, { sampling, eos: tokenizer.eosId });
    const steered = await generateTokens(model, ids, steps, { sampling, edits, eos: tokenizer.eosId });
    lines.push(`prompt:  ${p}`, `clean:   ${tokenizer.decode(clean)}`, `steered: ${tokenizer.decode(steered)}`);
  }
  return lines;
}

export const steerCommand = defineCommand(
  {
    name: 'steer',
    summary:
      "Steers a model with an SAE feature: adds alpha * W_dec[i] at the SAE's hook (or clamps feature i) and shows the generated text (causal models) or the embedding similarity shifts (encoders).",
    usage: 'sae steer SAE_DIR --feature I --prompt TEXT [--alpha A | --clamp C] [options]',
    positionals: ['SAE_DIR'],
    options: {
      feature: { kind: 'integer', help: 'the latent to steer with', required: true, min: 0 },
      alpha: { kind: 'number', help: 'add alpha * W_dec[feature] at every token (default 10)', default: 10 },
      clamp: { kind: 'number', help: 'instead: hold the feature at this activation (the SAE error is kept)' },
      prompt: { kind: 'string', help: "the text (several: separated by ' | ')", required: true },
      probes: { kind: 'string', help: "encoders: sentences to measure similarity shifts against, separated by ' | '", default: '' },
      tokens: { kind: 'integer', help: 'causal models: tokens to generate (default 20)', default: 20, min: 0 },
      model: { kind: 'string', help: `the model (default: the SAE's cfg.json model_name): ${MODEL_HELP}` },
      temperature: { kind: 'number', help: 'transformers: sample at this temperature (default 0: greedy)', default: 0, min: 0 },
      topK: { kind: 'integer', help: 'transformers, sampling: draw from the k most likely tokens only (default: all)', min: 1 },
      seed: { kind: 'integer', help: 'sampling: the seed (default 0); clean and steered runs use the same one', default: 0, min: 0 },
      hook: { kind: 'string', help: "the hook (default: the SAE's cfg.json hook_name)" },
      ...MODEL_DTYPE_OPTION,
    },
  },
  async (v, io) => {
    const {
      positionals: [dir],
      feature,
      clamp,
    } = v;
    const sae = await loadAnySaeAsSae(dir);
    if (feature >= sae.dims.dSae) throw new UserError(`--feature must be in [0, ${sae.dims.dSae})`);
    const modelSpec = v.model ?? sae.metadata['model_name'];
    const hook = v.hook ?? sae.metadata['hook_name'];
    if (typeof modelSpec !== 'string') throw new UserError(`${dir}: cfg.json names no model (metadata.model_name); give --model`);
    if (typeof hook !== 'string') throw new UserError(`${dir}: cfg.json names no hook (metadata.hook_name); give --hook`);
    const s: Steer = clamp !== undefined ? { feature, clamp } : { feature, add: v.alpha };
    const engine = new Engine({ warn: (m) => print(io.stderr, m) });
    const m = await openLanguageModel(modelSpec, engine, v.modelDtype !== undefined ? { dtype: v.modelDtype } : {});
    try {
      const tensor = hookTensor(m, hook);
      const prompts = split(v.prompt);
      if (m.kind !== 'transformer' && v.temperature > 0)
        throw new UserError('--temperature: sampling runs on Hugging Face folders and .gguf models; this model generates greedily only');
      const lines =
        m.kind === 'encoder'
          ? await steerEncoder(engine, m, sae, tensor, s, prompts, split(v.probes))
          : m.kind === 'causal'
            ? await steerCausal(engine, m, sae, tensor, s, prompts, v.tokens)
            : await steerTransformer(m, sae, hook, s, prompts, v.tokens, { temperature: v.temperature, topK: v.topK, seed: v.seed });
      print(io.stdout, [`feature ${feature} at ${hook}: ${'add' in s ? `+${s.add} * W_dec[${feature}]` : `clamped to ${s.clamp}`}`, ...lines].join('\n'));
    } finally {
      closeLanguageModel(m);
      await engine.release();
    }
    return 0;
  },
);

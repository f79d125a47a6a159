/**
 * Hugging Face tokenizer.json through @huggingface/tokenizers (pure TS, no network): the model types
 * BPE (byte-level as GPT-2/Qwen/Llama 3, or with byte fallback and metaspace as Llama 2/Mistral),
 * Unigram and WordPiece, with the normalizers, pre-tokenizers, post-processors and decoders the
 * library implements. A model type outside these, or a component the library lacks, is a fileError
 * (the library would otherwise guess a "Legacy" model from the vocabulary's shape).
 * BOS/EOS and whether BOS is prepended come from tokenizer_config.json beside the file (bos_token,
 * eos_token, add_bos_token) and otherwise from what the post-processor adds to a text.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Tokenizer as HfLibTokenizer } from '@huggingface/tokenizers';
import { fileError } from '../../errors.js';
import { isRecord, readJsonObject } from '../../io/json.js';
import { byteLevelText, metaspaceText, type Tokenizer } from './index.js';

const MODEL_TYPES = ['BPE', 'Unigram', 'WordPiece'];

/** Reads `file` (a tokenizer.json) and tokenizer_config.json beside it when present. */
export async function loadHfTokenizer(file: string): Promise<HfTokenizer> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw fileError(file, `cannot read the tokenizer (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`);
  }
  if (!isRecord(json)) throw fileError(file, 'a tokenizer.json holds one JSON object');
  const configPath = join(dirname(file), 'tokenizer_config.json');
  return HfTokenizer.fromJson(json, existsSync(configPath) ? await readJsonObject(configPath) : {}, file);
}

/** A token named in tokenizer_config.json: a string or an AddedToken object {content}. */
function namedToken(v: unknown): string | undefined {
  return typeof v === 'string' ? v : isRecord(v) && typeof v['content'] === 'string' ? v['content'] : undefined;
}

/** Whether a component (or one inside a Sequence) has type `type`. */
function hasComponent(c: unknown, type: string): boolean {
  if (!isRecord(c)) return false;
  if (c['type'] === type) return true;
  return Object.values(c).some((v) => Array.isArray(v) && v.some((x) => hasComponent(x, type)));
}

export class HfTokenizer implements Tokenizer {
  private constructor(
    private readonly lib: HfLibTokenizer,
    readonly vocabSize: number,
    readonly bosId: number | undefined,
    readonly eosId: number | undefined,
    readonly addBos: boolean,
    private readonly byteLevel: boolean,
    private readonly hidden: ReadonlySet<number>,
    private readonly added: ReadonlySet<number> = new Set(lib.get_added_tokens_decoder().keys()),
  ) {}

  /** From a parsed tokenizer.json and tokenizer_config.json; `file` names them in errors; `hidden` ids are left out by decode. */
  static fromJson(json: Record<string, unknown>, config: Record<string, unknown>, file: string, hidden: ReadonlySet<number> = new Set()): HfTokenizer {
    const model = json['model'];
    const type = isRecord(model) ? model['type'] : undefined;
    if (typeof type !== 'string' || !MODEL_TYPES.includes(type)) {
      throw fileError(file, `tokenizer model type '${String(type)}' is not supported (supported: ${MODEL_TYPES.join(', ')})`);
    }
    let lib: HfLibTokenizer;
    try {
      lib = new HfLibTokenizer({ added_tokens: [], ...json }, config);
    } catch (e) {
      throw fileError(file, `cannot be loaded by @huggingface/tokenizers (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`);
    }
    const idOf = (v: unknown): number | undefined => {
      const t = namedToken(v);
      return t === undefined ? undefined : lib.token_to_id(t);
    };
    // What the post-processor puts before a text: BOS when the model's tokenizer adds one.
    const plain = lib.encode('a', { add_special_tokens: false }).ids;
    const full = lib.encode('a', { add_special_tokens: true }).ids;
    const prefix = full.length > plain.length && full[0] !== plain[0] ? full[0] : undefined;
    const bosId = idOf(config['bos_token']) ?? prefix;
    const addBos = typeof config['add_bos_token'] === 'boolean' ? config['add_bos_token'] && bosId !== undefined : prefix !== undefined && prefix === bosId;
    const size = Math.max(-1, ...lib.get_vocab(true).values()) + 1;
    return new HfTokenizer(
      lib,
      size,
      bosId,
      idOf(config['eos_token']),
      addBos,
      hasComponent(json['decoder'], 'ByteLevel') || hasComponent(json['pre_tokenizer'], 'ByteLevel'),
      hidden,
    );
  }

  encode(text: string): number[] {
    return this.lib.encode(text, { add_special_tokens: false }).ids;
  }

  decode(ids: readonly number[]): string {
    const shown = ids.filter((id) => !this.hidden.has(id));
    return shown.length === 0 ? '' : this.lib.decode(shown, { skip_special_tokens: true });
  }

  token(id: number): string {
    const piece = this.lib.id_to_token(id);
    if (piece === undefined) return '';
    if (this.added.has(id)) return piece;
    return this.byteLevel ? byteLevelText(piece) : metaspaceText(piece);
  }
}

/**
 * A GGUF file's own vocabulary (tokenizer.ggml.*) as a Tokenizer, giving llama.cpp's ids.
 *
 * tokenizer.ggml.model 'llama' (SentencePiece BPE, as Llama 1/2, TinyLlama, Mistral): implemented here,
 * after llama.cpp's llm_tokenizer_spm (read, not copied):
 *   text -> ' ' + text when add_space_prefix, every ' ' -> '▁' -> one symbol per character;
 *   repeatedly merge the adjacent pair whose concatenation is a vocabulary entry with the highest
 *   score (ties: the leftmost pair); a final symbol that is not an entry becomes its UTF-8 bytes
 *   as the tokens <0xXX> (byte fallback), or unk when those are missing.
 * This is not handed to @huggingface/tokenizers: a tokenizer.json BPE merges by the rank of a merge
 * list, which the GGUF does not have (only scores); a list derived from scores (as transformers'
 * converter does) orders pairs that make the same piece arbitrarily, where llama.cpp takes the
 * leftmost, and costs a pass over every split of 32,000 pieces. The direct form is ~50 lines.
 * Text is never parsed for control tokens ('<s>' in a text is three characters), as llama.cpp's
 * tokenize without parse_special; user-defined tokens, which llama.cpp would split out, are refused.
 *
 * tokenizer.ggml.model 'gpt2' (byte-level BPE with tokenizer.ggml.merges): rebuilt as the
 * equivalent tokenizer.json and handed to @huggingface/tokenizers, for the pre-tokenizers
 * (tokenizer.ggml.pre) whose llama.cpp pattern we reproduce: 'gpt-2'. Others are refused by name.
 * Unlike a tokenizer.json, which always cuts its added tokens out of a text, neither kind here
 * reads '<s>' or '<|endoftext|>' written in a text as the control token (llama.cpp's tokenize default).
 */
import { fileError } from '../../errors.js';
import { HfTokenizer } from './hf.js';
import { byteOfToken, metaspaceText, type Tokenizer } from './index.js';

/** A GGUF metadata value. */
export type GgufValue = number | bigint | string | boolean | GgufValue[];

/** llama.cpp's token types (tokenizer.ggml.token_type). */
const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

/** GPT-2's pre-tokenizer pattern, as llama.cpp's 'gpt-2' pre-type and Hugging Face's ByteLevel use it. */
const GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const GPT2_PRE = ['gpt-2'];

/** Typed reads of the metadata, each failure one line naming the file and key. */
function reader(metadata: ReadonlyMap<string, GgufValue>, file: string) {
  const get = (key: string): GgufValue | undefined => metadata.get(key);
  const bad = (key: string, want: string): never => {
    throw fileError(file, `metadata ${key} is ${get(key) === undefined ? 'missing' : 'malformed'} (expected ${want})`);
  };
  const num = (key: string): number | undefined => {
    const v = get(key);
    return v === undefined ? undefined : typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : bad(key, 'a number');
  };
  return {
    num,
    str: (key: string): string | undefined => {
      const v = get(key);
      return v === undefined || typeof v === 'string' ? v : bad(key, 'a string');
    },
    bool: (key: string, dflt: boolean): boolean => {
      const v = get(key);
      return v === undefined ? dflt : typeof v === 'boolean' ? v : bad(key, 'a boolean');
    },
    strings: (key: string): string[] => {
      const v = get(key);
      return Array.isArray(v) && v.every((x): x is string => typeof x === 'string') ? v : bad(key, 'an array of strings');
    },
    numbers: (key: string, n: number): number[] => {
      const v = get(key);
      if (!Array.isArray(v) || v.length !== n || !v.every((x) => typeof x === 'number' || typeof x === 'bigint')) return bad(key, `an array of ${n} numbers`);
      return v.map(Number);
    },
  };
}

/** The tokenizer stored in a GGUF file's metadata; `file` names the file in errors. */
export function tokenizerFromGguf(metadata: ReadonlyMap<string, GgufValue>, file: string): Tokenizer {
  const m = reader(metadata, file);
  const kind = m.str('tokenizer.ggml.model');
  const pieces = m.strings('tokenizer.ggml.tokens');
  const special = { bos: m.num('tokenizer.ggml.bos_token_id'), eos: m.num('tokenizer.ggml.eos_token_id'), unk: m.num('tokenizer.ggml.unknown_token_id') };
  if (kind === 'llama') {
    const types = metadata.has('tokenizer.ggml.token_type') ? m.numbers('tokenizer.ggml.token_type', pieces.length) : pieces.map(() => TOKEN_TYPE.normal);
    if (types.includes(TOKEN_TYPE.userDefined)) throw fileError(file, 'has user-defined tokens in a llama vocabulary, which are not supported yet');
    return new SpmTokenizer(
      pieces,
      m.numbers('tokenizer.ggml.scores', pieces.length),
      types,
      special,
      m.bool('tokenizer.ggml.add_bos_token', true),
      m.bool('tokenizer.ggml.add_space_prefix', true),
    );
  }
  if (kind === 'gpt2') {
    const pre = m.str('tokenizer.ggml.pre') ?? 'default';
    if (!GPT2_PRE.includes(pre)) throw fileError(file, `tokenizer.ggml.pre '${pre}' is not supported (supported: ${GPT2_PRE.join(', ')})`);
    return byteLevelFromGguf(
      pieces,
      m.strings('tokenizer.ggml.merges'),
      metadata.has('tokenizer.ggml.token_type') ? m.numbers('tokenizer.ggml.token_type', pieces.length) : [],
      special,
      m.bool('tokenizer.ggml.add_bos_token', false),
      file,
    );
  }
  throw fileError(file, `tokenizer.ggml.model '${String(kind)}' is not supported (supported: llama, gpt2)`);
}

interface SpecialIds {
  readonly bos: number | undefined;
  readonly eos: number | undefined;
  readonly unk: number | undefined;
}

/**
 * Byte-level BPE as a tokenizer.json: vocabulary, merges, GPT-2's split. As in llama.cpp without
 * parse_special, user-defined tokens are cut out of a text and control tokens are not (they stay
 * out of added_tokens, and decode leaves them out).
 */
function byteLevelFromGguf(pieces: string[], merges: string[], types: number[], special: SpecialIds, addBos: boolean, file: string): Tokenizer {
  const json = {
    version: '1.0',
    added_tokens: pieces.flatMap((content, id) => (types[id] === TOKEN_TYPE.userDefined ? [{ id, content, special: false, normalized: false }] : [])),
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: GPT2_PATTERN }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
    model: { type: 'BPE', vocab: Object.fromEntries(pieces.map((p, i) => [p, i])), merges, byte_fallback: false, ignore_merges: false },
  };
  const name = (id: number | undefined): string | undefined => (id === undefined ? undefined : pieces[id]);
  const config = { bos_token: name(special.bos), eos_token: name(special.eos), add_bos_token: addBos, clean_up_tokenization_spaces: false };
  const control = new Set(pieces.flatMap((_, id) => (types[id] === TOKEN_TYPE.control ? [id] : [])));
  return HfTokenizer.fromJson(json, config, file, control);
}

/** One candidate merge of the symbols `left` and `right` into `text`. */
interface Bigram {
  readonly score: number;
  readonly left: number;
  readonly right: number;
  readonly length: number;
}

/** Whether bigram a is merged before b: higher score, then further left. */
function before(a: Bigram, b: Bigram): boolean {
  return a.score > b.score || (a.score === b.score && a.left < b.left);
}

/** A binary max-heap of bigrams in merge order. */
class BigramHeap {
  private readonly items: Bigram[] = [];
  get size(): number {
    return this.items.length;
  }
  push(b: Bigram): void {
    const h = this.items;
    h.push(b);
    for (let i = h.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (!before(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }
  pop(): Bigram | undefined {
    const h = this.items;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last !== undefined) {
      h[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l]!, h[m]!)) m = l;
        if (r < h.length && before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

/** SentencePiece BPE by scores with byte fallback (llama.cpp's 'llama' vocabulary). */
export class SpmTokenizer implements Tokenizer {
  private readonly ids = new Map<string, number>();
  private readonly byteIds: (number | undefined)[];
  readonly vocabSize: number;

  constructor(
    private readonly pieces: readonly string[],
    private readonly scores: readonly number[],
    private readonly types: readonly number[],
    private readonly special: SpecialIds,
    readonly addBos: boolean,
    private readonly addSpacePrefix: boolean,
  ) {
    pieces.forEach((p, i) => this.ids.set(p, i)); // a repeated piece means its last id, as in llama.cpp
    this.byteIds = Array.from({ length: 256 }, (_, b) => this.ids.get(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`));
    this.vocabSize = pieces.length;
  }

  get bosId(): number | undefined {
    return this.special.bos;
  }
  get eosId(): number | undefined {
    return this.special.eos;
  }

  encode(text: string): number[] {
    if (text === '') return [];
    // eslint-disable-next-line @typescript-eslint/no-misused-spread -- the symbols SentencePiece merges are code points, as llama.cpp splits them
    const sym = [...`${this.addSpacePrefix ? ' ' : ''}${text}`.replaceAll(' ', '▁')];
    const next = sym.map((_, i) => (i + 1 < sym.length ? i + 1 : -1));
    const prev = sym.map((_, i) => i - 1);
    const heap = new BigramHeap();
    const tryAdd = (left: number, right: number): void => {
      if (left < 0 || right < 0) return;
      const id = this.ids.get(sym[left]! + sym[right]!);
      if (id !== undefined) heap.push({ score: this.scores[id]!, left, right, length: sym[left]!.length + sym[right]!.length });
    };
    for (let i = 1; i < sym.length; i++) tryAdd(i - 1, i);
    while (heap.size > 0) {
      const b = heap.pop()!;
      const l = sym[b.left]!;
      const r = sym[b.right]!;
      // stale: one side was merged into something else since this pair was queued
      if (l === '' || r === '' || l.length + r.length !== b.length) continue;
      sym[b.left] = l + r;
      sym[b.right] = '';
      next[b.left] = next[b.right]!;
      if (next[b.left]! >= 0) prev[next[b.left]!] = b.left;
      tryAdd(prev[b.left]!, b.left);
      tryAdd(b.left, next[b.left]!);
    }
    const out: number[] = [];
    for (let i = 0; i >= 0; i = next[i]!) {
      const id = this.ids.get(sym[i]!);
      if (id !== undefined) out.push(id);
      else for (const byte of new TextEncoder().encode(sym[i])) out.push(this.byteId(byte));
    }
    return out;
  }

  private byteId(byte: number): number {
    const id = this.byteIds[byte] ?? this.special.unk;
    if (id === undefined) throw new Error(`the vocabulary has neither the byte token <0x${byte.toString(16)}> nor an unknown token`);
    return id;
  }

  /** Pieces joined, '▁' as space, byte tokens as bytes, control tokens left out, the added space prefix removed. */
  decode(ids: readonly number[]): string {
    const bytes: number[] = [];
    const enc = new TextEncoder();
    for (const id of ids) {
      const piece = this.pieces[id];
      const type = this.types[id];
      if (piece === undefined || type === TOKEN_TYPE.control || type === TOKEN_TYPE.unknown || type === TOKEN_TYPE.unused) continue;
      const b = type === TOKEN_TYPE.byte ? byteOfToken(piece) : undefined;
      if (b !== undefined) bytes.push(b);
      else bytes.push(...enc.encode(piece.replaceAll('▁', ' ')));
    }
    const text = new TextDecoder().decode(Uint8Array.from(bytes));
    return this.addSpacePrefix && text.startsWith(' ') ? text.slice(1) : text;
  }

  token(id: number): string {
    const piece = this.pieces[id];
    return piece === undefined ? '' : this.types[id] === TOKEN_TYPE.control ? piece : metaspaceText(piece);
  }
}

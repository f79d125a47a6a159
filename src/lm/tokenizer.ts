/**
 * Byte-level BPE tokenizers (GPT-2 and its family) read from a Hugging Face tokenizer.json:
 *   text -> pre-tokens (GPT-2's pattern) -> UTF-8 bytes shown as printable characters -> BPE merges
 *   by rank -> ids from the vocabulary. Added (special) tokens are matched as they are.
 * Other tokenizer models (WordPiece, Unigram) are refused with a clear message.
 */
import { readFile } from 'node:fs/promises';
import { fileError } from '../errors.js';
import { isRecord } from '../io/json.js';

/** GPT-2's pre-tokenizer pattern. */
const PRE_TOKEN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** GPT-2's map from bytes to printable characters, and back. */
function byteMaps(): { toChar: string[]; toByte: Map<string, number> } {
  const keep: number[] = [];
  for (let b = 33; b <= 126; b++) keep.push(b);
  for (let b = 161; b <= 172; b++) keep.push(b);
  for (let b = 174; b <= 255; b++) keep.push(b);
  const toChar: string[] = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) toChar[b] = String.fromCodePoint(keep.includes(b) ? b : 256 + extra++);
  return { toChar, toByte: new Map(toChar.map((c, b) => [c, b])) };
}

export class BpeTokenizer {
  private readonly ranks: Map<string, number>;
  private readonly cache = new Map<string, number[]>();
  private readonly maps = byteMaps();
  /** Token strings by id, decoded to text ('Ġthe' -> ' the'); ids the vocabulary skips are ''. */
  readonly vocab: string[];

  constructor(
    private readonly ids: ReadonlyMap<string, number>,
    merges: readonly (readonly [string, string])[],
    private readonly added: ReadonlyMap<string, number>,
  ) {
    this.ranks = new Map(merges.map(([a, b], i) => [`${a} ${b}`, i]));
    const size = Math.max(-1, ...ids.values(), ...added.values()) + 1;
    this.vocab = new Array<string>(size).fill('');
    for (const [t, id] of ids) this.vocab[id] = this.decodePiece(t);
    for (const [t, id] of added) this.vocab[id] = t;
  }

  static async fromFile(path: string): Promise<BpeTokenizer> {
    let json: unknown;
    try {
      json = JSON.parse(await readFile(path, 'utf8'));
    } catch (e) {
      throw fileError(path, `cannot read the tokenizer (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`);
    }
    const model = isRecord(json) ? json['model'] : undefined;
    if (!isRecord(model) || (model['type'] !== undefined && model['type'] !== 'BPE')) {
      throw fileError(path, `tokenizer model '${isRecord(model) ? String(model['type']) : '?'}' is not supported: only byte-level BPE (GPT-2 style)`);
    }
    const vocab = model['vocab'];
    const merges = model['merges'];
    if (!isRecord(vocab) || !Array.isArray(merges)) throw fileError(path, 'a BPE tokenizer needs model.vocab and model.merges');
    const ids = new Map<string, number>();
    for (const [t, id] of Object.entries(vocab)) if (typeof id === 'number') ids.set(t, id);
    const pairs = merges.map((m): [string, string] => {
      const parts = typeof m === 'string' ? m.split(' ') : Array.isArray(m) ? m.map(String) : [];
      if (parts.length !== 2) throw fileError(path, `bad merge ${JSON.stringify(m)}`);
      return [parts[0]!, parts[1]!];
    });
    const added = new Map<string, number>();
    const list = isRecord(json) ? json['added_tokens'] : undefined;
    if (Array.isArray(list)) for (const a of list) if (isRecord(a) && typeof a['content'] === 'string' && typeof a['id'] === 'number') added.set(a['content'], a['id']);
    return new BpeTokenizer(ids, pairs, added);
  }

  encode(text: string): number[] {
    const out: number[] = [];
    for (const piece of this.splitAdded(text)) {
      if (typeof piece === 'number') out.push(piece);
      else for (const m of piece.matchAll(PRE_TOKEN)) out.push(...this.bpe(m[0]));
    }
    return out;
  }

  /** The text with added tokens cut out as their ids. */
  private splitAdded(text: string): (string | number)[] {
    let parts: (string | number)[] = [text];
    for (const [t, id] of this.added) {
      parts = parts.flatMap((p) => (typeof p === 'number' ? [p] : p.split(t).flatMap((s, i) => (i === 0 ? [s] : [id, s]))));
    }
    return parts.filter((p) => p !== '');
  }

  /** One pre-token -> ids, merging the lowest-ranked pair first. */
  private bpe(preToken: string): number[] {
    const cached = this.cache.get(preToken);
    if (cached) return cached;
    let word = [...new TextEncoder().encode(preToken)].map((b) => this.maps.toChar[b]!);
    for (;;) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < word.length; i++) {
        const r = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (r !== undefined && r < bestRank) [best, bestRank] = [i, r];
      }
      if (best < 0) break;
      word = [...word.slice(0, best), word[best]! + word[best + 1]!, ...word.slice(best + 2)];
    }
    const ids = word.map((w) => this.ids.get(w) ?? this.ids.get('<unk>') ?? 0);
    if (this.cache.size < 100_000) this.cache.set(preToken, ids);
    return ids;
  }

  /** A vocabulary entry as text ('Ġthe' -> ' the'; bytes that are not whole UTF-8 characters shown as U+FFFD). */
  private decodePiece(piece: string): string {
    const bytes = [...piece].map((c) => this.maps.toByte.get(c));
    if (bytes.some((b) => b === undefined)) return piece;
    return new TextDecoder().decode(Uint8Array.from(bytes as number[]));
  }

  /** Ids -> text. */
  decode(ids: readonly number[]): string {
    return ids.map((i) => this.vocab[i] ?? '').join('');
  }
}

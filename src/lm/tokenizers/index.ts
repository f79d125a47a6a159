/**
 * One interface for every tokenizer the project uses: a Hugging Face tokenizer.json (through
 * @huggingface/tokenizers, see hf.ts) or a GGUF file's own vocabulary (gguf.ts). A tokenizer we
 * cannot reproduce exactly is refused with a one-line error, never replaced by another.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileError } from '../../errors.js';
import { GgufFile } from '../../io/gguf.js';
import { tokenizerFromGguf } from './gguf.js';
import { loadHfTokenizer } from './hf.js';

export interface Tokenizer {
  /** Text -> ids, without special tokens (no BOS/EOS added). */
  encode(text: string): number[];
  /** Ids -> text, special tokens left out, as the model's own decoder joins them. */
  decode(ids: readonly number[]): string;
  /** One token as display text for dashboards: '▁'/'Ġ' as spaces, a byte token <0x0A> as its character. */
  token(id: number): string;
  /** Largest id + 1 (added tokens included). */
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  /** Whether the model's own tokenizer prepends BOS to a text. */
  readonly addBos: boolean;
}

/** Every token's display string (index = id), as saved in a store's vocab.json. */
export function displayVocab(t: Tokenizer): string[] {
  return Array.from({ length: t.vocabSize }, (_, id) => t.token(id));
}

/**
 * A tokenizer.json, or a folder holding one (with tokenizer_config.json beside it when present), or
 * a .gguf file's own vocabulary.
 */
export async function loadTokenizer(path: string): Promise<Tokenizer> {
  const info = await stat(path).catch(() => undefined);
  if (info === undefined) throw fileError(path, 'no such tokenizer file or folder');
  if (!info.isDirectory() && path.toLowerCase().endsWith('.gguf')) {
    const gguf = await GgufFile.open(path);
    try {
      return tokenizerFromGguf(gguf.metadata, path);
    } finally {
      await gguf.close();
    }
  }
  return loadHfTokenizer(info.isDirectory() ? join(path, 'tokenizer.json') : path);
}

/** GPT-2's printable stand-ins for bytes ('Ġ' = space), as byte-level BPE vocabularies spell them. */
export const BYTE_LEVEL: { readonly toChar: readonly string[]; readonly toByte: ReadonlyMap<string, number> } = (() => {
  const keep = (b: number): boolean => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  const toChar: string[] = [];
  let extra = 0;
  for (let b = 0; b < 256; b++) toChar.push(String.fromCodePoint(keep(b) ? b : 256 + extra++));
  return { toChar, toByte: new Map(toChar.map((c, b) => [c, b])) };
})();

/** A byte-level piece ('Ġthe') as text (' the'); bytes that are not whole UTF-8 characters become U+FFFD. */
export function byteLevelText(piece: string): string {
  const bytes: number[] = [];
  for (const c of piece) {
    const b = BYTE_LEVEL.toByte.get(c);
    if (b === undefined) return piece;
    bytes.push(b);
  }
  return new TextDecoder().decode(Uint8Array.from(bytes));
}

const BYTE_TOKEN = /^<0x([0-9A-Fa-f]{2})>$/;

/** The byte of a SentencePiece byte token '<0x0A>', or undefined. */
export function byteOfToken(piece: string): number | undefined {
  const m = BYTE_TOKEN.exec(piece);
  return m ? parseInt(m[1]!, 16) : undefined;
}

/** A SentencePiece piece ('▁the', '<0x0A>') as display text (' the', '\n'); a byte above 0x7F, half a character, stays '<0xE6>'. */
export function metaspaceText(piece: string): string {
  const b = byteOfToken(piece);
  if (b !== undefined) return b < 0x80 ? String.fromCharCode(b) : piece;
  return piece.replaceAll('▁', ' ');
}

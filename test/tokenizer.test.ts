import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gguf } from '@huggingface/gguf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import { type GgufValue, tokenizerFromGguf } from '../src/lm/tokenizers/gguf.js';
import { HfTokenizer } from '../src/lm/tokenizers/hf.js';
import { BYTE_LEVEL, displayVocab, loadTokenizer } from '../src/lm/tokenizers/index.js';
import { writeTinyGpt2 } from './helpers/tiny-gpt2.js';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sae-tok-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes a tokenizer.json (and tokenizer_config.json when given) into a fresh folder; returns the folder. */
async function writeTokenizer(name: string, json: object, config?: object): Promise<string> {
  const d = join(dir, name);
  await rm(d, { recursive: true, force: true });
  await mkdir(d, { recursive: true });
  await writeFile(join(d, 'tokenizer.json'), JSON.stringify(json));
  if (config) await writeFile(join(d, 'tokenizer_config.json'), JSON.stringify(config));
  return d;
}

const BYTE_TOKENS = Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);

/** A Llama-2-style tokenizer.json (metaspace normalizer, BPE with byte fallback, BOS template) over `pieces`. */
function llamaJson(pieces: readonly string[], merges: readonly string[], special: readonly number[]): object {
  return {
    version: '1.0',
    added_tokens: special.map((id) => ({ id, content: pieces[id], single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: '▁' },
        { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<s>', type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab: Object.fromEntries(pieces.map((p, i) => [p, i])),
      merges,
    },
  };
}

/** Merges for a SentencePiece-BPE vocabulary, as transformers' converter derives them: every split of a piece into two pieces, by the piece's score. */
function mergesFromScores(pieces: readonly string[], scores: readonly number[], types: readonly number[]): string[] {
  const ids = new Map(pieces.map((p, i) => [p, i]));
  const found: { a: string; b: string; score: number; id: number; ia: number; ib: number }[] = [];
  pieces.forEach((p, id) => {
    if (types[id] !== 1) return;
    // eslint-disable-next-line @typescript-eslint/no-misused-spread -- code points, as the converter's Python slices a piece
    const cs = [...p];
    for (let k = 1; k < cs.length; k++) {
      const a = cs.slice(0, k).join('');
      const b = cs.slice(k).join('');
      const ia = ids.get(a);
      const ib = ids.get(b);
      if (ia !== undefined && ib !== undefined) found.push({ a, b, score: scores[id]!, id, ia, ib });
    }
  });
  found.sort((x, y) => y.score - x.score || x.id - y.id || x.ia - y.ia || x.ib - y.ib);
  return found.map((m) => `${m.a} ${m.b}`);
}

describe('tokenizer.json through @huggingface/tokenizers', () => {
  it('byte-level BPE (GPT-2 layout): merges, added tokens, display strings, no BOS', async () => {
    const model = join(dir, 'gpt2');
    const { bos, vocabSize } = await writeTinyGpt2(model);
    const tok = await loadTokenizer(model);
    const ids = tok.encode('the whale in<|endoftext|>');
    expect(ids).toEqual([116, 257, 261, 104, 97, 108, 101, 32, 260, bos]); // t he Ġw h a l e Ġ in <|endoftext|>
    expect(tok.encode(' the')).toEqual([256 + 2]);
    expect(tok.decode(tok.encode('naïve 東京\n'))).toBe('naïve 東京\n');
    expect(tok.token(256 + 2)).toBe(' the');
    expect(tok.token(bos)).toBe('<|endoftext|>');
    expect(tok).toMatchObject({ vocabSize, addBos: false, eosId: undefined });
    expect(displayVocab(tok)[BYTE_LEVEL.toChar.indexOf('Ċ')]).toBe('\n');
  });

  it('Llama-2 style BPE with byte fallback and metaspace; BOS and add_bos_token from tokenizer_config.json', async () => {
    const pieces = ['<unk>', '<s>', '</s>', ...BYTE_TOKENS, '▁', 'a', 'b', 'c', '▁a', 'ab', '▁ab', 'bc'];
    const merges = ['▁ a', 'a b', '▁a b', '▁ ab', 'b c'];
    const d = await writeTokenizer('llama2', llamaJson(pieces, merges, [0, 1, 2]), { bos_token: '<s>', eos_token: { content: '</s>' }, add_bos_token: true });
    const tok = await loadTokenizer(d);
    const id = (p: string): number => pieces.indexOf(p);
    expect(tok.encode('ab abc')).toEqual([id('▁ab'), id('▁ab'), id('c')]);
    expect(tok.encode('é')).toEqual([id('▁'), id('<0xC3>'), id('<0xA9>')]);
    expect(tok.decode(tok.encode('ab é\nc'))).toBe('ab é\nc');
    expect(tok.token(id('▁ab'))).toBe(' ab');
    expect(tok.token(id('<0x0A>'))).toBe('\n');
    expect(tok).toMatchObject({ bosId: 1, eosId: 2, addBos: true, vocabSize: pieces.length });
  });

  it('reads BOS from the post-processor when there is no tokenizer_config.json', async () => {
    const pieces = ['<unk>', '<s>', '</s>', ...BYTE_TOKENS, '▁', 'a'];
    const tok = await loadTokenizer(await writeTokenizer('llama-noconfig', llamaJson(pieces, ['▁ a'], [0, 1, 2])));
    expect(tok).toMatchObject({ bosId: 1, addBos: true, eosId: undefined });
  });

  it('WordPiece with a BERT post-processor, and Unigram with metaspace', async () => {
    const vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', 'the', 'whale', 'wh', '##ale', '##s', 'un', '##known'];
    const bert = {
      version: '1.0',
      added_tokens: [0, 1, 2, 3].map((id) => ({ id, content: vocab[id], single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
      normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
      pre_tokenizer: { type: 'BertPreTokenizer' },
      post_processor: { type: 'BertProcessing', sep: ['[SEP]', 3], cls: ['[CLS]', 2] },
      decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
      model: {
        type: 'WordPiece',
        unk_token: '[UNK]',
        continuing_subword_prefix: '##',
        max_input_chars_per_word: 100,
        vocab: Object.fromEntries(vocab.map((p, i) => [p, i])),
      },
    };
    const wp = await loadTokenizer(await writeTokenizer('bert', bert));
    expect(wp.encode('The whales unknown zzz')).toEqual([4, 5, 8, 9, 10, 1]);
    expect(wp.decode([4, 5, 8])).toBe('the whales');
    expect(wp).toMatchObject({ bosId: 2, addBos: true });

    const pieces: [string, number][] = [
      ['<unk>', 0],
      ['▁the', -1],
      ['▁', -2],
      ['t', -3],
      ['h', -3],
      ['e', -3],
      ['▁th', -4],
      ['e▁', -9],
    ];
    const uni = {
      version: '1.0',
      added_tokens: [{ id: 0, content: '<unk>', special: true }],
      normalizer: null,
      pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
      post_processor: null,
      decoder: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
      model: { type: 'Unigram', unk_id: 0, vocab: pieces, byte_fallback: false },
    };
    const un = await loadTokenizer(await writeTokenizer('unigram', uni));
    expect(un.encode('the thee')).toEqual([1, 1, 5]);
    expect(un.decode([1, 1, 5])).toBe('the thee');
    expect(un).toMatchObject({ addBos: false, bosId: undefined, vocabSize: pieces.length });
  });

  it('refuses what it cannot reproduce with one line naming the file', async () => {
    const wordLevel = { version: '1.0', model: { type: 'WordLevel', vocab: { a: 0 }, unk_token: 'a' } };
    const d = await writeTokenizer('wordlevel', wordLevel);
    await expect(loadTokenizer(d)).rejects.toThrow(
      new UserError(`${join(d, 'tokenizer.json')}: tokenizer model type 'WordLevel' is not supported (supported: BPE, Unigram, WordPiece)`),
    );
    const noType = await writeTokenizer('notype', { version: '1.0', model: { vocab: { a: 0 }, merges: [] } });
    await expect(loadTokenizer(noType)).rejects.toThrow(/model type 'undefined' is not supported/);
    const oddPre = await writeTokenizer('oddpre', { ...llamaJson(['<unk>', '<s>', '</s>'], [], [0, 1, 2]), pre_tokenizer: { type: 'FancySplit' } });
    await expect(loadTokenizer(oddPre)).rejects.toThrow(/cannot be loaded by @huggingface\/tokenizers \(Unknown PreTokenizer type: FancySplit\)$/);
    await writeFile(join(dir, 'broken.json'), '{"model": ');
    await expect(loadTokenizer(join(dir, 'broken.json'))).rejects.toThrow(/broken\.json: cannot read the tokenizer/);
    await expect(loadTokenizer(join(dir, 'absent'))).rejects.toThrow(UserError);
  });
});

/** Metadata of a small 'llama' vocabulary: control tokens, bytes, and scored pieces. */
function llamaMeta(scored: [string, number][], extra: Record<string, GgufValue> = {}): Map<string, GgufValue> {
  const pieces = ['<unk>', '<s>', '</s>', ...BYTE_TOKENS, ...scored.map(([p]) => p)];
  return new Map<string, GgufValue>(
    Object.entries({
      'tokenizer.ggml.model': 'llama',
      'tokenizer.ggml.tokens': pieces,
      'tokenizer.ggml.scores': [0, 0, 0, ...BYTE_TOKENS.map(() => 0), ...scored.map(([, s]) => s)],
      'tokenizer.ggml.token_type': [2, 3, 3, ...BYTE_TOKENS.map(() => 6), ...scored.map(() => 1)],
      'tokenizer.ggml.bos_token_id': 1,
      'tokenizer.ggml.eos_token_id': 2n,
      'tokenizer.ggml.unknown_token_id': 0,
      ...extra,
    }),
  );
}

describe('GGUF vocabularies', () => {
  const base = 3 + 256;
  it("'llama': merges by score, leftmost on ties, byte fallback, space prefix, decode", () => {
    const at = (pieces: [string, number][], p: string): number => base + pieces.findIndex(([q]) => q === p);
    const tie: [string, number][] = [
      ['▁', -1],
      ['a', -1],
      ['b', -1],
      ['c', -1],
      ['ab', -5],
      ['bc', -5],
    ];
    const t1 = tokenizerFromGguf(llamaMeta(tie, { 'tokenizer.ggml.add_space_prefix': false }), 'tie.gguf');
    expect(t1.encode('abc')).toEqual([at(tie, 'ab'), at(tie, 'c')]);
    const right: [string, number][] = tie.map(([p, s]) => [p, p === 'bc' ? -4 : s]);
    const t2 = tokenizerFromGguf(llamaMeta(right, { 'tokenizer.ggml.add_space_prefix': false }), 'right.gguf');
    expect(t2.encode('abc')).toEqual([at(right, 'a'), at(right, 'bc')]);
    const t3 = tokenizerFromGguf(llamaMeta(tie), 'prefix.gguf');
    expect(t3.encode('a é')).toEqual([at(tie, '▁'), at(tie, 'a'), at(tie, '▁'), 3 + 0xc3, 3 + 0xa9]);
    expect(t3.decode([1, ...t3.encode('a é'), 2])).toBe('a é');
    expect(t3).toMatchObject({ bosId: 1, eosId: 2, addBos: true, vocabSize: base + tie.length });
    expect([t3.token(at(tie, '▁')), t3.token(3 + 10), t3.token(3 + 0xc3), t3.token(1)]).toEqual([' ', '\n', '<0xC3>', '<s>']);
  });

  it("'gpt2' with pre-tokenizer 'gpt-2' goes through the library; other pre-tokenizers and models are refused by name", async () => {
    const pieces = [...BYTE_LEVEL.toChar, 'Ġt', 'he', 'Ġthe', '<|endoftext|>'];
    const meta = (pre: string | undefined): Map<string, GgufValue> =>
      new Map<string, GgufValue>(
        Object.entries({
          'tokenizer.ggml.model': 'gpt2',
          'tokenizer.ggml.tokens': pieces,
          'tokenizer.ggml.merges': ['Ġ t', 'h e', 'Ġt he'],
          'tokenizer.ggml.token_type': [...pieces.slice(0, -1).map(() => 1), 3],
          'tokenizer.ggml.eos_token_id': 259,
          ...(pre === undefined ? {} : { 'tokenizer.ggml.pre': pre }),
        }),
      );
    const tok = tokenizerFromGguf(meta('gpt-2'), 'g.gguf');
    const endText = [...Buffer.from('<|endoftext|>', 'utf8')]; // a control token written in a text is text: its bytes' tokens
    expect(tok.encode('the the<|endoftext|>')).toEqual([116, 257, 258, ...endText]);
    expect(tok.decode([116, 257, 258, 259])).toBe('the the');
    expect(tok.token(259)).toBe('<|endoftext|>');
    expect(tok).toMatchObject({ eosId: 259, addBos: false, vocabSize: 260 });
    // the same vocabulary as the tiny GPT-2's tokenizer.json (ByteLevel with its own regex) splits text the same way
    await writeTinyGpt2(join(dir, 'gpt2-same'));
    const hf = await loadTokenizer(join(dir, 'gpt2-same'));
    const merges = ['Ġ t', 'h e', 'Ġt he', 'Ġ a', 'i n', 'Ġ w'];
    const samePieces = [...BYTE_LEVEL.toChar, ...merges.map((m) => m.replace(' ', '')), '<|endoftext|>'];
    const same = tokenizerFromGguf(
      new Map<string, GgufValue>([
        ['tokenizer.ggml.model', 'gpt2'],
        ['tokenizer.ggml.pre', 'gpt-2'],
        ['tokenizer.ggml.tokens', samePieces],
        ['tokenizer.ggml.merges', merges],
        ['tokenizer.ggml.token_type', samePieces.map((_, i) => (i === samePieces.length - 1 ? 3 : 1))],
      ]),
      'same.gguf',
    );
    const text = "  two  spaces\n\n and 123 numbers, they'll 'quote'\tend  \n";
    expect(same.encode(text)).toEqual(hf.encode(text));
    expect(() => tokenizerFromGguf(meta('llama-bpe'), 'l3.gguf')).toThrow(
      new UserError("l3.gguf: tokenizer.ggml.pre 'llama-bpe' is not supported (supported: gpt-2)"),
    );
    expect(() => tokenizerFromGguf(meta(undefined), 'nopre.gguf')).toThrow(/tokenizer.ggml.pre 'default' is not supported/);
    expect(() =>
      tokenizerFromGguf(
        new Map<string, GgufValue>([
          ['tokenizer.ggml.model', 'bert'],
          ['tokenizer.ggml.tokens', ['a']],
        ]),
        'b.gguf',
      ),
    ).toThrow(new UserError("b.gguf: tokenizer.ggml.model 'bert' is not supported (supported: llama, gpt2)"));
    const noScores = llamaMeta([['a', 0]]);
    noScores.delete('tokenizer.ggml.scores');
    expect(() => tokenizerFromGguf(noScores, 's.gguf')).toThrow(
      new UserError('s.gguf: metadata tokenizer.ggml.scores is missing (expected an array of 260 numbers)'),
    );
  });
});

const CACHE = process.env['SAE_CACHE_DIR'] ?? join(tmpdir(), 'sparse-autoencoder-cache');
const MODEL = join(CACHE, 'tinyllama-1.1b.gguf');
const haveModel = existsSync(MODEL);
if (!haveModel) console.warn(`tokenizer.test.ts: TinyLlama checks skipped (no ${MODEL}; set SAE_CACHE_DIR or run sae demo --llm once)`);

interface Fixture {
  readonly tokens: Record<string, { readonly text: string; readonly ids: number[] }>;
  readonly continuation: { readonly promptIds: number[]; readonly ids: number[]; readonly text: string };
  readonly crossEntropy: { readonly ids: number[] };
}

describe.skipIf(!haveModel)('TinyLlama GGUF against llama.cpp (test/fixtures/tinyllama/llama-cpp.json)', () => {
  let metadata: Map<string, GgufValue>;
  let fixture: Fixture;
  beforeAll(async () => {
    const { metadata: m } = await gguf(MODEL, { allowLocalFile: true });
    metadata = new Map(Object.entries(m).filter((e): e is [string, GgufValue] => typeof e[1] !== 'object' || Array.isArray(e[1])));
    fixture = JSON.parse(await readFile(join(import.meta.dirname, 'fixtures', 'tinyllama', 'llama-cpp.json'), 'utf8')) as Fixture;
  });

  it('gives [1, 450, 7483, 310, 3444, 338] for "The capital of France is" with BOS', () => {
    const tok = tokenizerFromGguf(metadata, MODEL);
    expect([...(tok.addBos && tok.bosId !== undefined ? [tok.bosId] : []), ...tok.encode('The capital of France is')]).toEqual([1, 450, 7483, 310, 3444, 338]);
  });

  it("gives llama.cpp's ids for every fixture string and decodes them back; the continuation decodes as llama.cpp's", () => {
    const tok = tokenizerFromGguf(metadata, MODEL);
    for (const { text, ids } of Object.values(fixture.tokens)) {
      expect(tok.encode(text), text.slice(0, 40)).toEqual(ids);
      expect(tok.decode(ids)).toBe(text);
    }
    expect(tok.decode(fixture.continuation.ids)).toBe(fixture.continuation.text);
  });

  it("gives llama.cpp's 2000 Moby-Dick tokens of the cross-entropy fixture", async () => {
    const tok = tokenizerFromGguf(metadata, MODEL);
    const chapter = await readFile(join(import.meta.dirname, '..', 'node_modules', '@stdlib', 'datasets-moby-dick', 'data', 'chapter_1.txt'), 'utf8');
    expect([1, ...tok.encode(chapter).slice(0, 2000)]).toEqual(fixture.crossEntropy.ids);
  });

  it('a Llama-2 tokenizer.json built from the same vocabulary (merges from scores) gives the same ids through the library', () => {
    const pieces = metadata.get('tokenizer.ggml.tokens') as string[];
    const merges = mergesFromScores(pieces, metadata.get('tokenizer.ggml.scores') as number[], metadata.get('tokenizer.ggml.token_type') as number[]);
    const tok = HfTokenizer.fromJson(
      llamaJson(pieces, merges, [0, 1, 2]) as Record<string, unknown>,
      { bos_token: '<s>', eos_token: '</s>', add_bos_token: true, clean_up_tokenization_spaces: false },
      'tinyllama tokenizer.json',
    );
    // except the text that spells control tokens: a tokenizer.json always cuts its added tokens out of a text
    for (const [key, { text, ids }] of Object.entries(fixture.tokens)) if (key !== 'specialText') expect(tok.encode(text), text.slice(0, 40)).toEqual(ids);
    expect(tok.encode(fixture.tokens['specialText']!.text).slice(0, 2)).toEqual([1, 29871]);
  });
});

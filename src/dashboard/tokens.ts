/**
 * Token data in the dashboard: where a row's context comes from, the context of an example with
 * the latent's activation on every token, and its HTML.
 *
 * The interface for whoever supplies token data (an activation store, a harvest):
 *
 *   TokenRows    (src/data/token-rows.ts) one row of the dataset per token position; for each row its token as text and its
 *                document id. A document's rows are contiguous and in token order, so the context of
 *                row r is rows [r - before, r + after] clipped to r's document.
 *   TokenExample one example as the dashboard shows it (and exports to Neuronpedia):
 *                  { tokens: string[], activations: number[], highlight: number }
 *                tokens[j] is the text of the j-th token of the context, activations[j] the
 *                latent's activation on it (0 where it does not fire), highlight the index of the
 *                example's own token (the one whose activation ranked it).
 *
 * Token text is data: it is always escaped, never interpreted as markup. Whitespace shows as it is,
 * a line break as a visible return sign. Every token is rendered inside a bidi isolate (<bdi>), so a
 * right-to-left override in one token cannot reorder the text after it, and the characters that are
 * invisible or steer layout (Unicode categories Cc, Cf, Zl, Zp and lone surrogates, but tab and the
 * joiners ZWJ/ZWNJ) are shown as code editors show them, as a visible escape: <U+202E>, <U+0000>.
 * A token longer than MAX_TOKEN_CHARS is shown cut, with its length: "abc…(100000 chars)", so that
 * pages stay small whatever the data (the Neuronpedia export cuts at MAX_EXPORT_TOKEN_CHARS).
 */
import type { Dataset } from '../data/dataset.js';
import { firstAtOrAbove } from '../data/search.js';
import type { TokenRows } from '../data/token-rows.js';
import type { Engine } from '../engine/index.js';
import { fileError } from '../errors.js';
import { readJsonObject } from '../io/json.js';
import type { Sae } from '../sae.js';
import { escapeHtml } from '../viz/report.js';

export interface TokenExample {
  readonly tokens: readonly string[];
  readonly activations: readonly number[];
  readonly highlight: number;
}

/** Tokens before and after the example's own in a context (default 12 and 4). */
export interface ContextOptions {
  readonly before?: number;
  readonly after?: number;
}

/** TokenRows over arrays: tokens [rows]; documents [rows] (default: one document). */
export function tokenRows(tokens: readonly string[], documents?: ArrayLike<number>): TokenRows {
  if (documents !== undefined && documents.length !== tokens.length)
    throw new RangeError(`tokenRows: ${tokens.length} tokens but ${documents.length} document ids`);
  return { rows: tokens.length, token: (r) => tokens[r]!, document: (r) => (documents ? documents[r]! : 0) };
}

/**
 * Reads a token file: one JSON object { "tokens": string[], "documents"?: integer[] }, one entry
 * per row of the data (`rows` of them), documents contiguous.
 */
export async function readTokenFile(path: string, rows: number): Promise<TokenRows> {
  const o = await readJsonObject(path);
  const tokens = o['tokens'];
  const documents = o['documents'];
  if (!Array.isArray(tokens) || !tokens.every((t): t is string => typeof t === 'string'))
    throw fileError(path, '"tokens" must be an array of strings, one per row of the data');
  if (tokens.length !== rows) throw fileError(path, `${tokens.length} tokens for ${rows} rows of data: give one token per row`);
  if (documents === undefined) return tokenRows(tokens);
  if (!Array.isArray(documents) || !documents.every((d): d is number => Number.isSafeInteger(d)))
    throw fileError(path, '"documents" must be an array of integers, one per row');
  if (documents.length !== rows) throw fileError(path, `${documents.length} document ids for ${rows} rows of data`);
  const seen = new Set<number>();
  for (let r = 0; r < rows; r++) {
    if (r > 0 && documents[r] === documents[r - 1]) continue;
    if (seen.has(documents[r]!)) throw fileError(path, `document ${documents[r]} is split (row ${r}): a document's rows must be contiguous`);
    seen.add(documents[r]!);
  }
  return tokenRows(tokens, documents);
}

/** Rows [start, end) of row's context: up to `before` rows before and `after` after, within its document. */
export function contextWindow(t: TokenRows, row: number, before: number, after: number): { start: number; end: number } {
  const doc = t.document(row);
  let start = row;
  while (start > 0 && row - start < before && t.document(start - 1) === doc) start--;
  let end = row + 1;
  while (end < t.rows && end - row <= after && t.document(end) === doc) end++;
  return { start, end };
}

/** Distinct rows encoded per onnxruntime call when computing contexts. */
const CONTEXT_CHUNK_ROWS = 4096;

/**
 * The contexts of the given (row, latent) examples: the rows around each are read from `ds` and
 * encoded on the engine, each distinct row once however many contexts hold it (a dashboard's
 * contexts visit each row of a small dataset ~18 times), in chunks of distinct rows;
 * activations that are not finite show as 0.
 */
export async function tokenContexts(
  engine: Engine,
  sae: Sae,
  ds: Dataset,
  t: TokenRows,
  examples: readonly { readonly row: number; readonly latent: number }[],
  options: ContextOptions = {},
): Promise<TokenExample[]> {
  if (t.rows !== ds.rows) throw new RangeError(`tokenContexts: ${t.rows} token rows for a dataset of ${ds.rows}`);
  const before = options.before ?? 12;
  const after = options.after ?? 4;
  const windows = examples.map((e) => contextWindow(t, e.row, before, after));
  const { dIn, dSae } = sae.dims;
  // the distinct rows, ascending; slot[k] of each example: where its window's first row is among them
  const marks = new Set<number>();
  for (const w of windows) for (let r = w.start; r < w.end; r++) marks.add(r);
  const distinct = Int32Array.from(marks).sort();
  const slot = windows.map((w) => firstAtOrAbove(distinct, w.start));
  const activations = windows.map((w) => new Array<number>(width(w)).fill(0));
  for (let a = 0; a < distinct.length; a += CONTEXT_CHUNK_ROWS) {
    const n = Math.min(CONTEXT_CHUNK_ROWS, distinct.length - a);
    const x = new Float32Array(n * dIn); // [n, dIn]: distinct rows a .. a + n, read run by run
    for (let i = 0; i < n;) {
      let j = i + 1;
      while (j < n && distinct[a + j] === distinct[a + j - 1]! + 1) j++;
      await ds.read(distinct[a + i]!, j - i, x.subarray(i * dIn, j * dIn));
      i = j;
    }
    const f = await sae.encode(engine, x); // [n, dSae]
    windows.forEach((w, k) => {
      // a window's rows are consecutive, so they are consecutive among the distinct rows too
      const from = Math.max(slot[k]!, a);
      const to = Math.min(slot[k]! + width(w), a + n);
      for (let s = from; s < to; s++) {
        const v = f[(s - a) * dSae + examples[k]!.latent]!;
        activations[k]![s - slot[k]!] = Number.isFinite(v) && v > 0 ? v : 0;
      }
    });
  }
  return windows.map((w, k) => ({
    tokens: Array.from({ length: width(w) }, (_, j) => t.token(w.start + j)),
    activations: activations[k]!,
    highlight: examples[k]!.row - w.start,
  }));
}

function width(w: { start: number; end: number }): number {
  return w.end - w.start;
}

/** Tokens longer than this many UTF-16 units are shown cut (pages stay small). */
export const MAX_TOKEN_CHARS = 64;
/** The Neuronpedia export cuts tokens longer than this (its limit is not documented; real tokens are far shorter). */
export const MAX_EXPORT_TOKEN_CHARS = 256;

/** `token`, or its first `max` units (a surrogate pair kept whole) and its length: "abc…(100000 chars)". */
export function cutToken(token: string, max = MAX_TOKEN_CHARS): string {
  if (token.length <= max) return token;
  const end = /[\uD800-\uDBFF]/.test(token[max - 1]!) ? max - 1 : max;
  return `${token.slice(0, end)}…(${token.length} chars)`;
}

/** Invisible or layout-steering characters (not tab, not the joiners U+200C and U+200D that scripts and emoji need). */
const INVISIBLE = /(?![\t\u200C\u200D])[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;

/** Text with line breaks as '↵' and invisible characters as visible escapes ('<U+202E>'); not HTML-escaped. */
export function visibleText(text: string): string {
  return text.replace(/\r\n|\n|\r/g, '↵').replace(INVISIBLE, (c) => `<U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}>`);
}

/** Text from data as HTML: made visible, escaped, inside a bidi isolate. */
export function isolatedText(text: string): string {
  return `<bdi>${escapeHtml(visibleText(text))}</bdi>`;
}

/** A token as it is shown: cut if long, made visible, escaped, isolated; empty as a middle dot. */
export function tokenText(token: string): string {
  return token.length === 0 ? '<bdi>·</bdi>' : isolatedText(cutToken(token));
}

/**
 * One example as a line of tokens, each shaded by its activation relative to `scale` (the
 * latent's largest activation); the example's own token is outlined. Every token's activation is in
 * its title.
 */
export function renderTokenExample(ex: TokenExample, scale: number): string {
  const spans = ex.tokens.map((tok, j) => {
    const a = ex.activations[j] ?? 0;
    const alpha = scale > 0 ? Math.min(1, Math.max(0, a / scale)) : 0;
    const cls = j === ex.highlight ? 'tok hl' : 'tok';
    const style = alpha > 0 ? ` style="background:rgba(255,140,0,${alpha.toFixed(3)})"` : '';
    return `<span class="${cls}"${style} title="${escapeHtml(a.toPrecision(3))}">${tokenText(tok)}</span>`;
  });
  return `<div class="ctx">${spans.join('')}</div>`;
}

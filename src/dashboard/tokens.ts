/**
 * Token data in the dashboard: where a row's context comes from, the context of an example with
 * the latent's activation on every token, and its HTML.
 *
 * The interface for whoever supplies token data (an activation store, a harvest):
 *
 *   TokenRows    one row of the dataset per token position; for each row its token as text and its
 *                document id. A document's rows are contiguous and in token order, so the context of
 *                row r is rows [r - before, r + after] clipped to r's document.
 *   TokenExample one example as the dashboard shows it (and exports to Neuronpedia):
 *                  { tokens: string[], activations: number[], highlight: number }
 *                tokens[j] is the text of the j-th token of the context, activations[j] the
 *                latent's activation on it (0 where it does not fire), highlight the index of the
 *                example's own token (the one whose activation ranked it).
 *
 * Token text is data: it is always escaped, never interpreted as markup. Whitespace shows as it is,
 * a line break as a visible return sign.
 */
import type { Dataset } from '../data/dataset.js';
import type { Engine } from '../engine/index.js';
import { fileError } from '../errors.js';
import { readJsonObject } from '../io/json.js';
import type { Sae } from '../sae.js';
import { escapeHtml } from '../viz/report.js';

export interface TokenRows {
  /** How many rows (token positions) there are: the dataset's row count. */
  readonly rows: number;
  /** The token of row r, as text. */
  token(row: number): string;
  /** The document row r belongs to. */
  document(row: number): number;
}

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
  if (documents !== undefined && documents.length !== tokens.length) throw new RangeError(`tokenRows: ${tokens.length} tokens but ${documents.length} document ids`);
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
  if (!Array.isArray(tokens) || !tokens.every((t): t is string => typeof t === 'string')) throw fileError(path, '"tokens" must be an array of strings, one per row of the data');
  if (tokens.length !== rows) throw fileError(path, `${tokens.length} tokens for ${rows} rows of data: give one token per row`);
  if (documents === undefined) return tokenRows(tokens);
  if (!Array.isArray(documents) || !documents.every((d): d is number => Number.isSafeInteger(d))) throw fileError(path, '"documents" must be an array of integers, one per row');
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

/** Rows encoded per onnxruntime call when computing contexts. */
const CONTEXT_CHUNK_ROWS = 4096;

/**
 * The contexts of the given (row, latent) examples: rows around each are read from `ds` and encoded
 * on the engine in chunks; activations that are not finite show as 0.
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
  const out: TokenExample[] = [];
  const { dIn, dSae } = sae.dims;
  for (let first = 0; first < examples.length; ) {
    let last = first;
    let rows = 0;
    while (last < examples.length && (last === first || rows + width(windows[last]!) <= CONTEXT_CHUNK_ROWS)) rows += width(windows[last++]!);
    const x = new Float32Array(rows * dIn); // [rows, dIn]
    let at = 0;
    for (let k = first; k < last; k++) {
      const w = windows[k]!;
      await ds.read(w.start, width(w), x.subarray(at * dIn, (at + width(w)) * dIn));
      at += width(w);
    }
    const f = await sae.encode(engine, x); // [rows, dSae]
    at = 0;
    for (let k = first; k < last; k++) {
      const w = windows[k]!;
      const { row, latent } = examples[k]!;
      const tokens: string[] = [];
      const activations: number[] = [];
      for (let r = w.start; r < w.end; r++, at++) {
        tokens.push(t.token(r));
        const v = f[at * dSae + latent]!;
        activations.push(Number.isFinite(v) && v > 0 ? v : 0);
      }
      out.push({ tokens, activations, highlight: row - w.start });
    }
    first = last;
  }
  return out;
}

function width(w: { start: number; end: number }): number {
  return w.end - w.start;
}

/** A token as it is shown: its text escaped, a line break as a visible sign, empty as a middle dot. */
export function tokenText(token: string): string {
  if (token.length === 0) return '·';
  return escapeHtml(token.replace(/\r\n|\n|\r/g, '↵'));
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

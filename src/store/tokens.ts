/**
 * An activation store's rows as the dashboard's token data (src/data/token-rows.ts TokenRows):
 * row r's token is vocab[token[r]], and its "document" is the context it was harvested in (what the
 * model saw at once), so an example's context is exactly the text the model read.
 */
import type { TokenRows } from '../data/token-rows.js';
import type { StoreDataset } from './dataset.js';

/** Rows read per call while gathering the per-row tokens. */
const CHUNK = 1 << 16;

export async function storeTokenRows(store: StoreDataset): Promise<TokenRows> {
  const vocab = await store.vocab();
  const token = new Int32Array(store.rows); // [rows]
  const ctx = new Int32Array(store.rows); // [rows]
  for (let start = 0; start < store.rows; start += CHUNK) {
    const info = await store.rowInfo(start, Math.min(CHUNK, store.rows - start));
    token.set(info.token, start);
    ctx.set(info.ctx, start);
  }
  return { rows: store.rows, token: (r) => vocab[token[r]!] ?? `<${token[r]}>`, document: (r) => ctx[r]! };
}

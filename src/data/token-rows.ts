/**
 * Token data beside a dataset of activations, for whoever shows examples as text (the dashboard):
 * one row per token position, each with its token as text and its document id. A document's rows
 * are contiguous and in token order, so the context of row r is rows [r - before, r + after]
 * clipped to r's document. Supplied by an activation store (src/store/tokens.ts) or built from
 * arrays (src/dashboard/tokens.ts tokenRows).
 */
export interface TokenRows {
  /** How many rows (token positions) there are: the dataset's row count. */
  readonly rows: number;
  /** The token of row r, as text. */
  token(row: number): string;
  /** The document row r belongs to. */
  document(row: number): number;
}

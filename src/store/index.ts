/** The activation store: shards of activations with per-row tokens, written while harvesting, read back as a Dataset. */
export { isStoreDataset, openStore, type RowInfo, type StoreDataset } from './dataset.js';
export { MANIFEST_FILENAME, readManifest, STORE_DTYPES, type StoreDtype, StoreManifest } from './manifest.js';
export { type ContextRows, type OpenOptions, type StoreSettings, StoreWriter } from './writer.js';

/** The hooked transformer's public surface: load a model, run it with hooks and edits, harvest from it. */
export { HookedTransformer, type ClampEdit, type HookEdit, type LoadOptions, type RunOptions, type RunResult } from './model.js';
export { harvestModel } from './harvest-model.js';
export { FAMILIES, type FamilyName } from './families/index.js';
export type { TransformerConfig } from './config.js';

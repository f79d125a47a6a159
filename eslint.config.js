// ESLint (flat config): typescript-eslint's strict, type-checked rules, and the layering of src/.
//
// Layers go one way; a module may import its own layer and the layers below it, never above:
//   base (errors, rng) -> engine -> arch -> sae/io (sae, io, formats, eval) -> data -> store
//   -> train | lm -> apps (viz, then dashboard, anomaly, synthetic, conformance) -> cli, index
// train and lm are siblings (neither imports the other); so are the apps, except that viz
// (charts, pictures, the report page) sits below the other apps that draw with it.
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

/** The layers of src/, lowest first: the directories and top-level modules (without .ts) of each. */
const LAYERS = [
  ['errors', 'rng'],
  ['engine'],
  ['arch'],
  ['sae', 'io', 'formats', 'eval'],
  ['data'],
  ['store'],
  ['train', 'lm'],
  ['viz'],
  ['dashboard', 'anomaly', 'synthetic', 'conformance'],
  ['cli', 'index'],
];

/** Top-level modules of src/ (src/NAME.ts); the rest of LAYERS are directories. */
const MODULES = new Set(['errors', 'rng', 'sae', 'eval', 'conformance', 'index']);

/** Siblings in one layer that must not import each other. */
const SIBLINGS = [
  ['train', 'lm'],
  ['dashboard', 'anomaly', 'synthetic', 'conformance'],
];

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The import sources naming `names`, seen from a file in src/ (top: true) or below it: a directory
 * is `(../)+dir/...` or `./dir/...`, a top-level module `(../)+name.js` or `./name.js`.
 */
function sourcesOf(names, top) {
  const up = top ? '\\./' : '(\\.\\./)+';
  const dirs = names.filter((n) => !MODULES.has(n)).map(escape);
  const modules = names.filter((n) => MODULES.has(n)).map(escape);
  const parts = [];
  if (dirs.length > 0) parts.push(`^${up}(${dirs.join('|')})/`);
  if (modules.length > 0) parts.push(`^${up}(${modules.join('|')})\\.js$`);
  return parts.join('|');
}

function layering() {
  const configs = [];
  LAYERS.forEach((layer, i) => {
    const above = LAYERS.slice(i + 1).flat();
    for (const name of layer) {
      const siblings = (SIBLINGS.find((s) => s.includes(name)) ?? []).filter((s) => s !== name);
      const banned = [...above, ...siblings];
      if (banned.length === 0) continue;
      const top = MODULES.has(name);
      configs.push({
        files: [top ? `src/${name}.ts` : `src/${name}/**/*.ts`],
        rules: {
          'no-restricted-imports': [
            'error',
            {
              patterns: [
                {
                  regex: sourcesOf(banned, top),
                  message: `layering: src/${name}${top ? '.ts' : '/'} may not import a module of a layer above it or of a sibling (see eslint.config.js).`,
                },
              ],
            },
          ],
        },
      });
    }
  });
  return configs;
}

export default defineConfig(
  { ignores: ['dist/**', 'build/**', 'docs/api/**', 'node_modules/**', 'test/fixtures/**', 'demo-results/**'] },
  tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['vitest.config.ts'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Under noUncheckedIndexedAccess every typed-array read in the numeric loops is `T | undefined`;
      // `x[i]!` after a bounds-checked loop is the idiom of this codebase (900 of them), not a smell.
      '@typescript-eslint/no-non-null-assertion': 'off',
      // `(e) => reject(e)` and `.forEach((v) => out.push(v))` read better than braces.
      '@typescript-eslint/no-confusing-void-expression': ['error', { ignoreArrowShorthand: true }],
      // Numbers in template strings are the norm here (sizes, timings, shapes).
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
  },
  ...layering(),
);

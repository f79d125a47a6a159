/** sae filters: the decoder rows of an image SAE as a PNG grid. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadImagePreprocess } from '../../data/preprocess-file.js';
import { Engine } from '../../engine/index.js';
import { writePng } from '../../io/png.js';
import { loadAnySaeAsSae } from '../../formats/index.js';
import { loadSparsity, SPARSITY_FILENAME } from '../../io/saelens.js';
import { PREPROCESS_FILENAME } from '../../train/run.js';
import { saeFilters } from '../../viz/sae-filters.js';
import { defineCommand, print } from '../command.js';

export const filtersCommand = defineCommand(
  {
    name: 'filters',
    summary: 'Draws the decoder rows of an image SAE as a PNG grid of filters.',
    usage: 'sae filters SAE_DIR [options]',
    positionals: ['SAE_DIR'],
    options: {
      out: { kind: 'string', help: 'PNG file to write (default SAE_DIR/filters.png)' },
      space: {
        kind: 'string',
        help: 'whitened (as trained; default) | pixel (through the inverse whitening)',
        choices: ['whitened', 'pixel'],
        default: 'whitened',
      },
      preprocess: { kind: 'string', help: 'the preprocessing file (default SAE_DIR/preprocess.safetensors if present)' },
      order: {
        kind: 'string',
        help: 'frequency (most active first, from sparsity.safetensors; default) | index',
        choices: ['frequency', 'index'],
        default: 'frequency',
      },
      max: { kind: 'integer', help: 'draw at most this many filters', min: 1 },
      zoom: { kind: 'integer', help: 'pixels per patch pixel (default 4)', min: 1 },
      columns: { kind: 'integer', help: 'filters per row (default: a square grid)', min: 1 },
    },
  },
  async (v, io) => {
    const {
      positionals: [dir],
      space,
      order,
    } = v;
    const sae = await loadAnySaeAsSae(dir);
    const preprocessPath = v.preprocess ?? join(dir, PREPROCESS_FILENAME);
    const preprocess = v.preprocess !== undefined || existsSync(preprocessPath) ? await loadImagePreprocess(preprocessPath) : undefined;
    const engine = new Engine({ warn: (m) => print(io.stderr, m) });
    const png = await saeFilters(engine, sae, preprocess, {
      space,
      log10Rates: order === 'frequency' && existsSync(join(dir, SPARSITY_FILENAME)) ? await loadSparsity(dir) : undefined,
      ...(v.max !== undefined ? { max: v.max } : {}),
      ...(v.zoom !== undefined ? { zoom: v.zoom } : {}),
      ...(v.columns !== undefined ? { columns: v.columns } : {}),
    });
    const out = v.out ?? join(dir, 'filters.png');
    await writePng(out, png);
    print(io.stdout, `wrote ${out} (${png.width}x${png.height})`);
    await engine.release();
    return 0;
  },
);

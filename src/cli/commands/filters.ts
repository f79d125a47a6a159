/** sae filters: the decoder rows of an image SAE as a PNG grid. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadImagePreprocess } from '../../data/preprocess-file.js';
import { Engine } from '../../engine/index.js';
import { UserError } from '../../errors.js';
import { writePng } from '../../io/png.js';
import { loadSae, loadSparsity } from '../../io/saelens.js';
import { PREPROCESS_FILENAME } from '../../train/run.js';
import { saeFilters, type FilterSpace } from '../../viz/sae-filters.js';
import type { OptionSpec } from '../args.js';
import { commandArgs, type Command, print } from '../command.js';

const options: OptionSpec[] = [
  { flag: 'out', key: 'out', kind: 'string', help: 'PNG file to write (default SAE_DIR/filters.png)' },
  { flag: 'space', key: 'space', kind: 'string', help: 'whitened (as trained; default) | pixel (through the inverse whitening)' },
  { flag: 'preprocess', key: 'preprocess', kind: 'string', help: 'the preprocessing file (default SAE_DIR/preprocess.safetensors if present)' },
  { flag: 'order', key: 'order', kind: 'string', help: 'frequency (most active first, from sparsity.safetensors; default) | index' },
  { flag: 'max', key: 'max', kind: 'integer', help: 'draw at most this many filters' },
  { flag: 'zoom', key: 'zoom', kind: 'integer', help: 'pixels per patch pixel (default 4)' },
  { flag: 'columns', key: 'columns', kind: 'integer', help: 'filters per row (default: a square grid)' },
];

export const filtersCommand: Command = {
  name: 'filters',
  summary: 'Draws the decoder rows of an image SAE as a PNG grid of filters.',
  usage: 'sae filters SAE_DIR [options]',
  options,
  async run(argv, io) {
    const args = commandArgs(this, argv, io);
    if (!args) return 0;
    const [dir, ...rest] = args.positionals;
    if (!dir || rest.length) throw new UserError('usage: sae filters SAE_DIR [options]');
    const v = args.values;
    const space = v['space'] ?? 'whitened';
    if (space !== 'whitened' && space !== 'pixel') throw new UserError(`--space: expected whitened or pixel, got '${String(space)}'`);
    const order = v['order'] ?? 'frequency';
    if (order !== 'frequency' && order !== 'index') throw new UserError(`--order: expected frequency or index, got '${String(order)}'`);
    for (const k of ['max', 'zoom', 'columns'] as const) {
      const n = v[k];
      if (n !== undefined && (typeof n !== 'number' || n < 1)) throw new UserError(`--${k}: expected a positive integer`);
    }
    const sae = await loadSae(dir);
    const preprocessPath = typeof v['preprocess'] === 'string' ? v['preprocess'] : join(dir, PREPROCESS_FILENAME);
    const preprocess = typeof v['preprocess'] === 'string' || existsSync(preprocessPath) ? await loadImagePreprocess(preprocessPath) : undefined;
    const engine = new Engine({ warn: (m) => print(io.stderr, m) });
    const png = await saeFilters(engine, sae, preprocess, {
      space: space as FilterSpace,
      log10Rates: order === 'frequency' ? await loadSparsity(dir) : undefined,
      ...(typeof v['max'] === 'number' ? { max: v['max'] } : {}),
      ...(typeof v['zoom'] === 'number' ? { zoom: v['zoom'] } : {}),
      ...(typeof v['columns'] === 'number' ? { columns: v['columns'] } : {}),
    });
    const out = typeof v['out'] === 'string' ? v['out'] : join(dir, 'filters.png');
    await writePng(out, png);
    print(io.stdout, `wrote ${out} (${png.width}x${png.height})`);
    await engine.release();
    return 0;
  },
};

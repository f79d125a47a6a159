/** sae eval: metrics of a trained SAE on data. */
import { dropMasked, sequentialChunks } from '../../data/sequential.js';
import { Engine } from '../../engine/index.js';
import { UserError } from '../../errors.js';
import { evaluate } from '../../eval.js';
import { writeFileAtomic } from '../../io/atomic.js';
import { loadSae } from '../../io/saelens.js';
import { formatHelp, parseArgs, type OptionSpec } from '../args.js';
import { type Command, print } from '../command.js';
import { formatMetrics } from './format.js';
import { batchSizeOf, INPUT_OPTIONS, openInput } from './inference-data.js';

const options: OptionSpec[] = [
  { flag: 'out', key: 'out', kind: 'string', help: 'write the metrics as JSON to this file' },
  { flag: 'max-rows', key: 'maxRows', kind: 'integer', help: 'evaluate on at most the first N rows' },
  ...INPUT_OPTIONS,
];

export const evalCommand: Command = {
  name: 'eval',
  summary: 'Evaluates a trained SAE on data: MSE, explained variance, FVU, L0, L1, dead fraction; prints a table and writes JSON.',
  usage: 'sae eval SAE_DIR --data FILE [options]',
  options,
  async run(argv, io) {
    const args = parseArgs(argv, options, 'eval');
    if (args.help) {
      print(io.stdout, formatHelp(this.usage, this.summary, options));
      return 0;
    }
    const [dir, ...rest] = args.positionals;
    if (!dir || rest.length) throw new UserError('usage: sae eval SAE_DIR --data FILE [options]');
    const maxRows = args.values['maxRows'] ?? Infinity;
    if (typeof maxRows !== 'number' || maxRows < 1) throw new UserError('--max-rows must be a positive integer');
    const batch = batchSizeOf(args);
    const sae = await loadSae(dir);
    const engine = new Engine({ warn: (m) => print(io.stderr, m) });
    const ds = await openInput(args, dir, sae, engine);
    let skipped = 0;
    try {
      const chunks = async function* () {
        for await (const c of sequentialChunks(ds, engine.kernels, batch, maxRows)) {
          skipped += c.nonFinite;
          yield { x: c.x, rows: c.nonFinite ? dropMasked(c.x, c.rows, ds.dIn, c.mask) : c.rows };
        }
      };
      const metrics = (await evaluate(engine, sae, chunks())).metrics();
      if (skipped > 0) print(io.stderr, `${ds.name}: ${skipped} rows contain NaN or Inf; they were left out of the metrics`);
      if (metrics.inputs === 0) throw new UserError(`${ds.name}: no finite rows to evaluate on`);
      print(io.stdout, formatMetrics(metrics));
      const out = args.values['out'];
      if (typeof out === 'string') {
        await writeFileAtomic(out, `${JSON.stringify({ sae: dir, data: ds.name, skipped_nonfinite_rows: skipped, ...metrics }, null, 2)}\n`);
        print(io.stdout, `wrote ${out}`);
      }
    } finally {
      await ds.close();
      await engine.release();
    }
    return 0;
  },
};

/** sae eval: metrics of a trained SAE on data. */
import { dropMasked, sequentialChunks } from '../../data/sequential.js';
import { Engine } from '../../engine/index.js';
import { UserError } from '../../errors.js';
import { encoderDecoderCosine, evaluate, summarize } from '../../eval.js';
import { writeFileAtomic } from '../../io/atomic.js';
import { loadSae } from '../../io/saelens.js';
import type { OptionSpec } from '../args.js';
import { commandArgs, type Command, print } from '../command.js';
import { formatTable, metricRows } from './format.js';
import { batchSizeOf, INPUT_OPTIONS, openInput } from './inference-data.js';
import { SPLICE_OPTIONS, spliceEval } from './splice-eval.js';

const options: OptionSpec[] = [
  { flag: 'out', key: 'out', kind: 'string', help: 'write the metrics as JSON to this file' },
  { flag: 'max-rows', key: 'maxRows', kind: 'integer', help: 'evaluate on at most the first N rows' },
  ...INPUT_OPTIONS,
  ...SPLICE_OPTIONS,
];

export const evalCommand: Command = {
  name: 'eval',
  summary: 'Evaluates a trained SAE on data: MSE, explained variance and FVU, L0, L1, dead and dense fractions, l2 ratio, reconstruction bias, encoder-decoder cosine; prints a table and writes JSON (with per-latent values and histograms).',
  usage: 'sae eval SAE_DIR --data FILE [options]',
  options,
  async run(argv, io) {
    const args = commandArgs(this, argv, io);
    if (!args) return 0;
    const [dir, ...rest] = args.positionals;
    if (!dir || rest.length) throw new UserError('usage: sae eval SAE_DIR --data FILE [options]');
    const maxRows = args.values['maxRows'] ?? Infinity;
    if (typeof maxRows !== 'number' || maxRows < 1) throw new UserError('--max-rows must be a positive integer');
    const batch = batchSizeOf(args);
    const sae = await loadSae(dir);
    if (args.values['model'] !== undefined) return spliceEval(args, dir, sae, io);
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
      const acc = await evaluate(engine, sae, chunks());
      const metrics = acc.metrics();
      if (skipped > 0) print(io.stderr, `${ds.name}: ${skipped} rows contain NaN or Inf; they were left out of the metrics`);
      if (metrics.inputs === 0) throw new UserError(`${ds.name}: no finite rows to evaluate on`);
      const cosine = await encoderDecoderCosine(engine, sae);
      const cos = cosine ? summarize(cosine) : undefined;
      const cosRow: [string, string] = ['encoder-decoder cosine', cos ? `mean ${cos.mean.toFixed(4)}, median ${cos.median.toFixed(4)}, min ${cos.min.toFixed(4)}` : 'n/a'];
      print(io.stdout, formatTable([...metricRows(metrics), cosRow]));
      const out = args.values['out'];
      if (typeof out === 'string') {
        const report = {
          sae: dir,
          data: ds.name,
          skipped_nonfinite_rows: skipped,
          ...metrics,
          encoder_decoder_cosine: cos ?? null,
          firing_rate_histogram: { ...acc.firingRateHistogram(), note: 'edges are log10 firing rates; dead latents are counted apart' },
          l0_histogram: acc.l0Histogram(),
          per_latent: { log10_firing_rate: Array.from(acc.log10FiringRates()), encoder_decoder_cosine: cosine ? Array.from(cosine) : null },
        };
        await writeFileAtomic(out, `${JSON.stringify(report, null, 2)}\n`);
        print(io.stdout, `wrote ${out}`);
      }
    } finally {
      await ds.close();
      await engine.release();
    }
    return 0;
  },
};

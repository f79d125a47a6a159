/** sae eval: metrics of a trained SAE on data. */
import { dropMasked, sequentialChunks } from '../../data/sequential.js';
import { Engine } from '../../engine/index.js';
import { UserError } from '../../errors.js';
import { encoderDecoderCosine, evaluate, summarize } from '../../eval.js';
import { writeFileAtomic } from '../../io/atomic.js';
import { loadAnySaeAsSae } from '../../formats/index.js';
import { defineCommand, print } from '../command.js';
import { formatTable, metricRows } from './format.js';
import { OPTIONAL_INPUT_OPTIONS, openInput } from './inference-data.js';
import { SPLICE_OPTIONS, spliceEval } from './splice-eval.js';

export const evalCommand = defineCommand(
  {
    name: 'eval',
    summary:
      'Evaluates a trained SAE on data (or spliced into a model with --model: CE clean / spliced / zero-ablated, loss recovered, KL): MSE, explained variance and FVU, L0, L1, dead and dense fractions, l2 ratio, reconstruction bias, encoder-decoder cosine; prints a table and writes JSON (with per-latent values and histograms).',
    usage: 'sae eval SAE_DIR --data FILE [options]',
    positionals: ['SAE_DIR'],
    options: {
      out: { kind: 'string', help: 'write the metrics as JSON to this file' },
      maxRows: { kind: 'integer', help: 'evaluate on at most the first N rows', min: 1 },
      ...OPTIONAL_INPUT_OPTIONS,
      ...SPLICE_OPTIONS,
    },
  },
  async (args, io) => {
    const {
      positionals: [dir],
      data,
      batchSize: batch,
      model,
    } = args;
    const maxRows = args.maxRows ?? Infinity;
    const sae = await loadAnySaeAsSae(dir);
    if (model !== undefined) return spliceEval(args, model, dir, sae, io);
    if (data === undefined) throw new UserError('--data is required (or --model to splice into a model)');
    const engine = new Engine({ warn: (m) => print(io.stderr, m) });
    const ds = await openInput({ ...args, data }, dir, sae, engine);
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
      const cosRow: [string, string] = [
        'encoder-decoder cosine',
        cos ? `mean ${cos.mean.toFixed(4)}, median ${cos.median.toFixed(4)}, min ${cos.min.toFixed(4)}` : 'n/a',
      ];
      print(io.stdout, formatTable([...metricRows(metrics), cosRow]));
      const out = args.out;
      if (out !== undefined) {
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
);

/** sae encode: the latents of every input row, dense or in sparse top-k form. */
import { extname } from 'node:path';
import { assertFiniteOutput, sequentialChunks } from '../../data/sequential.js';
import { Engine } from '../../engine/index.js';
import { UserError, fileError } from '../../errors.js';
import { writeNpy } from '../../io/npy.js';
import { loadSae } from '../../io/saelens.js';
import { writeSafetensors } from '../../io/safetensors.js';
import type { OptionSpec } from '../args.js';
import { commandArgs, type Command, print } from '../command.js';
import { batchSizeOf, INPUT_OPTIONS, openInput } from './inference-data.js';

const options: OptionSpec[] = [
  { flag: 'out', key: 'out', kind: 'string', help: 'output file: .safetensors (tensor "latents" [rows, d_sae], or "indices" and "values" [rows, k] with --topk) or .npy (dense)', required: true },
  { flag: 'topk', key: 'topk', kind: 'integer', help: 'keep the k largest activations of each row (sparse form, .safetensors)' },
  ...INPUT_OPTIONS,
];

export const encodeCommand: Command = {
  name: 'encode',
  summary: 'Encodes every row of an input file with a trained SAE and writes the latents (dense, or the top k per row).',
  usage: 'sae encode SAE_DIR --data FILE --out FILE [options]',
  options,
  async run(argv, io) {
    const args = commandArgs(this, argv, io);
    if (!args) return 0;
    const [dir, ...rest] = args.positionals;
    if (!dir || rest.length) throw new UserError('usage: sae encode SAE_DIR --data FILE --out FILE');
    const out = args.values['out'];
    if (typeof out !== 'string') throw new UserError('--out is required');
    const ext = extname(out).toLowerCase();
    if (ext !== '.safetensors' && ext !== '.npy') throw new UserError(`--out: ${out} must end in .safetensors or .npy`);
    const k = args.values['topk'];
    if (k !== undefined && ext !== '.safetensors') throw new UserError('--topk writes indices and values: give an --out ending in .safetensors');
    const batch = batchSizeOf(args);
    const sae = await loadSae(dir);
    if (k !== undefined && (typeof k !== 'number' || k < 1 || k > sae.dims.dSae)) throw new UserError(`--topk must be between 1 and d_sae = ${sae.dims.dSae}`);
    const engine = new Engine({ warn: (m) => print(io.stderr, m) });
    const ds = await openInput(args, dir, sae, engine);
    try {
      const { dSae } = sae.dims;
      const width = typeof k === 'number' ? k : dSae;
      const latents = typeof k === 'number' ? undefined : new Float32Array(ds.rows * dSae);
      const indices = typeof k === 'number' ? new Int32Array(ds.rows * k) : undefined;
      const values = typeof k === 'number' ? new Float32Array(ds.rows * k) : undefined;
      for await (const c of sequentialChunks(ds, engine.kernels, batch)) {
        if (c.nonFinite > 0) {
          const first = c.start + c.mask.indexOf(1);
          throw fileError(ds.name, `row ${first} holds NaN or Inf; encode needs finite inputs (nothing was written)`);
        }
        if (typeof k === 'number') {
          const code = await sae.encodeTopK(engine, c.x, k);
          assertFiniteOutput(engine.kernels, code.values, c.rows, k, c.start, ds.name, 'latents');
          indices!.set(code.indices, c.start * width);
          values!.set(code.values, c.start * width);
        } else {
          latents!.set(await sae.encode(engine, c.x), c.start * dSae);
          assertFiniteOutput(engine.kernels, latents!.subarray(c.start * dSae, (c.start + c.rows) * dSae), c.rows, dSae, c.start, ds.name, 'latents');
        }
      }
      const metadata = { sae: dir, data: ds.name, ...(typeof k === 'number' ? { k: String(k) } : {}) };
      if (ext === '.npy') await writeNpy(out, latents!, [ds.rows, dSae]);
      else if (typeof k === 'number') {
        await writeSafetensors(out, { indices: { dtype: 'I32', shape: [ds.rows, k], data: indices! }, values: { dtype: 'F32', shape: [ds.rows, k], data: values! } }, metadata);
      } else await writeSafetensors(out, { latents: { dtype: 'F32', shape: [ds.rows, dSae], data: latents! } }, metadata);
      print(io.stdout, `encoded ${ds.rows} rows -> ${out} (${typeof k === 'number' ? `top ${k} indices and values` : `[${ds.rows}, ${dSae}] latents`})`);
    } finally {
      await ds.close();
      await engine.release();
    }
    return 0;
  },
};

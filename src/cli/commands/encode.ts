/** sae encode: the latents of every input row, dense or in sparse top-k form. */
import { extname } from 'node:path';
import { assertFiniteOutput, sequentialChunks } from '../../data/sequential.js';
import { Engine } from '../../engine/index.js';
import { UserError, fileError } from '../../errors.js';
import { writeNpy } from '../../io/npy.js';
import { loadAnySaeAsSae } from '../../formats/index.js';
import { writeSafetensors } from '../../io/safetensors.js';
import { defineCommand, print } from '../command.js';
import { INPUT_OPTIONS, openInput } from './inference-data.js';

export const encodeCommand = defineCommand(
  {
    name: 'encode',
    summary: 'Encodes every row of an input file with a trained SAE and writes the latents (dense, or the top k per row).',
    usage: 'sae encode SAE_DIR --data FILE --out FILE [options]',
    positionals: ['SAE_DIR'],
    options: {
      out: {
        kind: 'string',
        help: 'output file: .safetensors (tensor "latents" [rows, d_sae], or "indices" and "values" [rows, k] with --topk) or .npy (dense)',
        required: true,
      },
      topk: { kind: 'integer', help: 'keep the k largest activations of each row (sparse form, .safetensors)', min: 1 },
      ...INPUT_OPTIONS,
    },
  },
  async (args, io) => {
    const {
      positionals: [dir],
      out,
      topk: k,
      batchSize: batch,
    } = args;
    const ext = extname(out).toLowerCase();
    if (ext !== '.safetensors' && ext !== '.npy') throw new UserError(`--out: ${out} must end in .safetensors or .npy`);
    if (k !== undefined && ext !== '.safetensors') throw new UserError('--topk writes indices and values: give an --out ending in .safetensors');
    const sae = await loadAnySaeAsSae(dir);
    if (k !== undefined && k > sae.dims.dSae) throw new UserError(`--topk must be between 1 and d_sae = ${sae.dims.dSae}`);
    const engine = new Engine({ warn: (m) => print(io.stderr, m) });
    const ds = await openInput(args, dir, sae, engine);
    try {
      const { dSae } = sae.dims;
      const width = k !== undefined ? k : dSae;
      const latents = k !== undefined ? undefined : new Float32Array(ds.rows * dSae);
      const indices = k !== undefined ? new Int32Array(ds.rows * k) : undefined;
      const values = k !== undefined ? new Float32Array(ds.rows * k) : undefined;
      for await (const c of sequentialChunks(ds, engine.kernels, batch)) {
        if (c.nonFinite > 0) {
          const first = c.start + c.mask.indexOf(1);
          throw fileError(ds.name, `row ${first} holds NaN or Inf; encode needs finite inputs (nothing was written)`);
        }
        if (k !== undefined) {
          const code = await sae.encodeTopK(engine, c.x, k);
          assertFiniteOutput(engine.kernels, code.values, c.rows, k, c.start, ds.name, 'latents');
          indices!.set(code.indices, c.start * width);
          values!.set(code.values, c.start * width);
        } else {
          latents!.set(await sae.encode(engine, c.x), c.start * dSae);
          assertFiniteOutput(engine.kernels, latents!.subarray(c.start * dSae, (c.start + c.rows) * dSae), c.rows, dSae, c.start, ds.name, 'latents');
        }
      }
      const metadata = { sae: dir, data: ds.name, ...(k !== undefined ? { k: String(k) } : {}) };
      if (ext === '.npy') await writeNpy(out, latents!, [ds.rows, dSae]);
      else if (k !== undefined) {
        await writeSafetensors(
          out,
          { indices: { dtype: 'I32', shape: [ds.rows, k], data: indices! }, values: { dtype: 'F32', shape: [ds.rows, k], data: values! } },
          metadata,
        );
      } else await writeSafetensors(out, { latents: { dtype: 'F32', shape: [ds.rows, dSae], data: latents! } }, metadata);
      print(io.stdout, `encoded ${ds.rows} rows -> ${out} (${k !== undefined ? `top ${k} indices and values` : `[${ds.rows}, ${dSae}] latents`})`);
    } finally {
      await ds.close();
      await engine.release();
    }
    return 0;
  },
);

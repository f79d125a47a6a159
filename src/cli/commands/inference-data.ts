/** Option groups shared by commands: the input data of commands that apply a trained SAE (encode, eval), and the engine's. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Dataset } from '../../data/dataset.js';
import { type DataFormat, DATA_FORMATS, openDataset } from '../../store/open.js';
import { loadImagePreprocess } from '../../data/preprocess-file.js';
import { Engine, KERNELS_CHOICES, type KernelsChoice } from '../../engine/index.js';
import { fileError } from '../../errors.js';
import type { Sae } from '../../sae.js';
import { PREPROCESS_FILENAME } from '../../train/run.js';
import { defineOptions } from '../args.js';
import { type CliIO, print } from '../command.js';

export const INPUT_OPTIONS = defineOptions({
  data: { kind: 'string', help: '.npy, .safetensors, raw float32 file, image or folder of images', group: 'input', required: true },
  format: { kind: 'string', help: 'npy | safetensors | raw | images (default: from the extension)', group: 'input', choices: DATA_FORMATS },
  tensor: { kind: 'string', help: 'the tensor of a .safetensors file (default: the only one)', group: 'input' },
  width: { kind: 'integer', help: 'row width of a raw float32 file', group: 'input', min: 1 },
  patches: { kind: 'integer', help: 'images: patches to cut (default 100000)', group: 'input', min: 1 },
  seed: { kind: 'integer', help: 'images: seed of the patch positions (default 0)', group: 'input' },
  preprocess: { kind: 'string', help: 'images: preprocessing to apply (default SAE_DIR/preprocess.safetensors)', group: 'input' },
  batchSize: { kind: 'integer', help: 'rows per onnxruntime call (default 4096)', group: 'input', default: 4096, min: 1 },
});

/** The input options where --data is one choice among others (eval --model, dashboard --demo-images). */
export const OPTIONAL_INPUT_OPTIONS = defineOptions({
  ...INPUT_OPTIONS,
  data: { kind: 'string', help: INPUT_OPTIONS.data.help, group: 'input' },
});

/** The input options as parsed (--data given). */
export interface InputArgs {
  readonly data: string;
  readonly format?: DataFormat | undefined;
  readonly tensor?: string | undefined;
  readonly width?: number | undefined;
  readonly patches?: number | undefined;
  readonly seed?: number | undefined;
  readonly preprocess?: string | undefined;
}

/** Opens --data for `sae` (images get the SAE's own preprocessing) and checks its width. */
export async function openInput(v: InputArgs, saeDir: string, sae: Sae, engine: Engine): Promise<Dataset> {
  const preprocessPath = v.preprocess ?? join(saeDir, PREPROCESS_FILENAME);
  const usePreprocess = v.preprocess !== undefined || existsSync(preprocessPath);
  const ds = await openDataset(
    {
      path: v.data,
      ...(v.format !== undefined ? { format: v.format } : {}),
      ...(v.tensor !== undefined ? { tensor: v.tensor } : {}),
      ...(v.width !== undefined ? { width: v.width } : {}),
      images: {
        ...(v.patches !== undefined ? { patches: v.patches } : {}),
        ...(v.seed !== undefined ? { seed: v.seed } : {}),
        ...(usePreprocess ? { preprocess: await loadImagePreprocess(preprocessPath) } : {}),
      },
    },
    engine,
  );
  if (ds.dIn !== sae.dims.dIn) {
    await ds.close();
    throw fileError(ds.name, `rows have width ${ds.dIn}, but the SAE in ${saeDir} takes d_in = ${sae.dims.dIn}`);
  }
  return ds;
}

/** The engine's options: which kernels, how many threads. */
export const ENGINE_OPTIONS = defineOptions({
  threads: { kind: 'integer', help: 'threads (default: every core)', min: 1 },
  kernels: { kind: 'string', help: 'auto | native | reference (default auto)', choices: KERNELS_CHOICES },
});

/** An engine with the chosen kernels and threads, warning on stderr. */
export function engineOf(v: { readonly kernels?: KernelsChoice | undefined; readonly threads?: number | undefined }, io: CliIO): Engine {
  return new Engine({
    ...(v.kernels !== undefined ? { kernels: v.kernels } : {}),
    ...(v.threads !== undefined ? { threads: v.threads } : {}),
    warn: (m) => print(io.stderr, m),
  });
}

/** The options and opening of input data for commands that apply a trained SAE (encode, eval). */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Dataset } from '../../data/dataset.js';
import { type DataFormat, DATA_FORMATS, openDataset } from '../../data/open.js';
import { loadImagePreprocess } from '../../data/preprocess-file.js';
import type { Engine } from '../../engine/index.js';
import { UserError, fileError } from '../../errors.js';
import type { Sae } from '../../sae.js';
import { PREPROCESS_FILENAME } from '../../train/run.js';
import type { OptionSpec, ParsedArgs } from '../args.js';

export const INPUT_OPTIONS: readonly OptionSpec[] = [
  { flag: 'data', key: 'data', kind: 'string', help: '.npy, .safetensors, raw float32 file, image or folder of images', group: 'input', required: true },
  { flag: 'format', key: 'format', kind: 'string', help: 'npy | safetensors | raw | images (default: from the extension)', group: 'input' },
  { flag: 'tensor', key: 'tensor', kind: 'string', help: 'the tensor of a .safetensors file (default: the only one)', group: 'input' },
  { flag: 'width', key: 'width', kind: 'integer', help: 'row width of a raw float32 file', group: 'input' },
  { flag: 'patches', key: 'patches', kind: 'integer', help: 'images: patches to cut (default 100000)', group: 'input' },
  { flag: 'seed', key: 'seed', kind: 'integer', help: 'images: seed of the patch positions (default 0)', group: 'input' },
  { flag: 'preprocess', key: 'preprocess', kind: 'string', help: 'images: preprocessing to apply (default SAE_DIR/preprocess.safetensors)', group: 'input' },
  { flag: 'batch-size', key: 'batchSize', kind: 'integer', help: 'rows per onnxruntime call (default 4096)', group: 'input' },
];

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** Opens --data for `sae` (images get the SAE's own preprocessing) and checks its width. */
export async function openInput(args: ParsedArgs, saeDir: string, sae: Sae, engine: Engine): Promise<Dataset> {
  const v = args.values;
  const path = str(v['data']);
  if (!path) throw new UserError('--data is required');
  const format = str(v['format']);
  if (format !== undefined && !(DATA_FORMATS as readonly string[]).includes(format)) throw new UserError(`--format: choose one of ${DATA_FORMATS.join(', ')}`);
  const preprocessPath = str(v['preprocess']) ?? join(saeDir, PREPROCESS_FILENAME);
  const usePreprocess = str(v['preprocess']) !== undefined || existsSync(preprocessPath);
  const ds = await openDataset(
    {
      path,
      ...(format !== undefined ? { format: format as DataFormat } : {}),
      ...(str(v['tensor']) !== undefined ? { tensor: str(v['tensor'])! } : {}),
      ...(typeof v['width'] === 'number' ? { width: v['width'] } : {}),
      images: {
        ...(typeof v['patches'] === 'number' ? { patches: v['patches'] } : {}),
        ...(typeof v['seed'] === 'number' ? { seed: v['seed'] } : {}),
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

export function batchSizeOf(args: ParsedArgs): number {
  const b = args.values['batchSize'] ?? 4096;
  if (typeof b !== 'number' || !Number.isInteger(b) || b < 1) throw new UserError('--batch-size must be a positive integer');
  return b;
}

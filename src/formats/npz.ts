/**
 * NumPy .npz files: a zip archive of .npy files, one per array (`name.npy`), stored or deflated.
 * Unzipped with fflate; each member parsed by io/npy.ts.
 */
import { unzipSync } from 'fflate';
import { fileError } from '../errors.js';
import { readWholeFile } from '../io/atomic.js';
import { decodeNpy } from '../io/npy.js';

/** The float arrays of an .npz file by name (without `.npy`), as float32. */
export async function readNpz(path: string): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  const bytes = await readWholeFile(path);
  let members: Record<string, Uint8Array>;
  try {
    members = unzipSync(bytes);
  } catch (e) {
    throw fileError(path, `not a valid .npz (zip) file (${e instanceof Error ? e.message : String(e)})`);
  }
  const arrays = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, data] of Object.entries(members)) {
    if (!name.endsWith('.npy')) continue;
    arrays.set(name.slice(0, -4), decodeNpy(data, `${path}:${name}`));
  }
  return arrays;
}

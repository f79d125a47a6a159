/**
 * Files of anomaly detection: the calibration (JSON, next to the SAE by default), label files
 * (.npy of any numeric type, or text with one 0/1 per line) and per-input scores (.csv or .npy).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { z } from 'zod';
import { fileError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { readJsonObject } from '../io/json.js';
import { readNpyArray, writeNpy } from '../io/npy.js';
import type { Sae } from '../sae.js';
import type { Calibration } from './score.js';

export const CALIBRATION_FILENAME = 'calibration.json';

const CalibrationFile = z.object({
  quantile: z.number().min(0).max(1),
  threshold: z.number().min(0),
  logErrorMedian: z.number(),
  logErrorScale: z.number().positive(),
  rows: z.number().int().positive(),
  saeSha256: z.string().optional(),
});

/** SHA-256 of the SAE's architecture, sizes and parameters: which SAE a calibration belongs to. */
export function saeFingerprint(sae: Sae): string {
  const h = createHash('sha256').update(`${sae.architecture} ${sae.dims.dIn} ${sae.dims.dSae}\n`);
  for (const spec of sae.def.params(sae.dims, sae.hyper)) {
    const p = sae.params[spec.name]!;
    h.update(`${spec.name}\n`).update(new Uint8Array(p.buffer, p.byteOffset, p.byteLength));
  }
  return h.digest('hex');
}

/** Writes the calibration of `sae` with what it was made from (`about`: SAE folder, data, ...). */
export async function saveCalibration(path: string, c: Calibration, sae: Sae, about: Readonly<Record<string, unknown>>): Promise<void> {
  const record = {
    description: 'sae calibrate: inputs with reconstruction error > threshold are flagged; score = (ln error - logErrorMedian) / logErrorScale',
    ...about,
    quantile: c.quantile,
    threshold: c.threshold,
    logErrorMedian: c.logErrorMedian,
    logErrorScale: c.logErrorScale,
    rows: c.rows,
    saeSha256: saeFingerprint(sae),
  };
  await writeFileAtomic(path, `${JSON.stringify(record, null, 2)}\n`);
}

/** Reads a calibration and checks that it was made for `sae` (`saeDir` names it in the error). */
export async function loadCalibration(path: string, sae: Sae, saeDir: string): Promise<Calibration> {
  const r = CalibrationFile.safeParse(await readJsonObject(path));
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw fileError(path, `not a calibration written by sae calibrate (${i.path.map(String).join('.') || 'file'}: ${i.message})`);
  }
  if (r.data.saeSha256 !== undefined && r.data.saeSha256 !== saeFingerprint(sae)) {
    throw fileError(path, `was made for another SAE than the one in ${saeDir} (its weights differ); run sae calibrate ${saeDir} again`);
  }
  return r.data;
}

/** Labels (nonzero: anomaly) from a .npy file (one value per row) or a text file with one number per line. */
export async function readLabels(path: string): Promise<Uint8Array> {
  if (extname(path).toLowerCase() === '.npy') {
    const a = await readNpyArray(path);
    const rows = a.shape[0] ?? 1;
    if (a.shape.length > 2 || (a.shape.length === 2 && a.shape[1] !== 1))
      throw fileError(path, `labels must be one value per row, got shape [${a.shape.join(', ')}]`);
    const out = new Uint8Array(rows);
    for (let i = 0; i < rows; i++) {
      const v = Number(a.data[i]!);
      if (Number.isNaN(v)) throw fileError(path, `label ${i} is NaN`);
      out[i] = v !== 0 ? 1 : 0;
    }
    return out;
  }
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw fileError(path, 'no such file or cannot be read');
  }
  const lines = text.split(/\r?\n/).map((l) => l.trim());
  while (lines.length && lines[lines.length - 1] === '') lines.pop();
  return Uint8Array.from(lines, (l, i) => {
    const v = l === 'true' ? 1 : l === 'false' ? 0 : Number(l);
    if (l === '' || !Number.isFinite(v)) throw fileError(path, `line ${i + 1}: expected a label (0 or 1), got '${l}'`);
    return v !== 0 ? 1 : 0;
  });
}

/** Per-input results: .csv (row,error,score,flagged) or .npy (float32 [rows, 3]: error, score, flagged). */
export async function writeScores(path: string, errors: Float32Array, scores: Float32Array, flagged: Uint8Array): Promise<void> {
  const rows = errors.length;
  const ext = extname(path).toLowerCase();
  if (ext === '.npy') {
    const table = new Float32Array(rows * 3); // [rows, 3]
    for (let r = 0; r < rows; r++) table.set([errors[r]!, scores[r]!, flagged[r]!], r * 3);
    await writeNpy(path, table, [rows, 3]);
    return;
  }
  if (ext !== '.csv') throw fileError(path, 'scores are written as .csv or .npy: choose one of these extensions');
  const lines = ['row,error,score,flagged'];
  for (let r = 0; r < rows; r++) lines.push(`${r},${errors[r]!.toPrecision(6)},${scores[r]!.toFixed(4)},${flagged[r]!}`);
  await writeFileAtomic(path, `${lines.join('\n')}\n`);
}

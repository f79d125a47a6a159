/**
 * Training from an activation store against training from memory: the same rows (random, 200k x
 * 512, float32), the same shuffled batch stream and SAE (standard, 512 -> 2048, batch 4096), once
 * over a memoryDataset and once over the store on disk. Prints steps/s of both and their ratio,
 * and the raw batch rate of the two streams (reading and shuffling only).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchStream } from '../src/data/batches.js';
import type { Dataset } from '../src/data/dataset.js';
import { memoryDataset } from '../src/data/memory.js';
import { Engine } from '../src/engine/index.js';
import { openStore } from '../src/store/dataset.js';
import { StoreWriter } from '../src/store/writer.js';
import { TrainConfig } from '../src/train/config.js';
import { Progress } from '../src/train/progress.js';
import { settingsOf } from '../src/train/run.js';
import { train } from '../src/train/trainer.js';
import { randomArray } from './util.js';

const ROWS = 200_000;
const D = 512;
const STEPS = 30;
const BATCH = 4096;

async function writeStore(dir: string, x: Float32Array): Promise<void> {
  const w = await StoreWriter.open(dir, {
    model: 'bench',
    hookName: 'bench',
    hookTensor: 'bench',
    dIn: D,
    contextSize: 100,
    dtype: 'float32',
    source: {},
    vocab: ['t'],
  });
  for (let c = 0; c * 100 < ROWS; c++) {
    const n = Math.min(100, ROWS - c * 100);
    await w.append({
      context: c,
      doc: 0,
      x: x.subarray(c * 100 * D, (c * 100 + n) * D),
      pos: Int32Array.from({ length: n }, (_, i) => i),
      token: new Int32Array(n),
    });
  }
  await w.finish();
}

/** Steps/s training on `ds`, and batches/s of its stream alone. */
async function measure(engine: Engine, ds: Dataset, out: string): Promise<{ stepsPerSecond: number; batchesPerSecond: number }> {
  const stream = await BatchStream.open(ds, { batchSize: BATCH, seed: 0, heldOutFraction: 0 }, engine);
  let t = performance.now();
  for (let s = 0; s < STEPS; s++) await stream.batchAt(s + 1000);
  const batchesPerSecond = STEPS / ((performance.now() - t) / 1000);
  const c = TrainConfig.parse({
    data: { path: 'unused', batchSize: BATCH },
    model: { architecture: 'standard', dSae: 4 * D },
    schedule: { steps: STEPS },
    logging: { out, quiet: true },
  });
  const settings = settingsOf(c, ds, {});
  t = performance.now();
  await train(
    engine,
    settings,
    { batchAt: (s) => stream.batchAt(s), sample: async (n) => (await stream.sampleTraining(n)).x },
    { checkpointEvery: 0, progress: new Progress({ every: STEPS, quiet: true }), key: 'bench', sampleRows: 4096 },
  );
  return { stepsPerSecond: STEPS / ((performance.now() - t) / 1000), batchesPerSecond };
}

export async function benchStore(log: (line: string) => void): Promise<object> {
  const dir = await mkdtemp(join(tmpdir(), 'sae-bench-store-'));
  try {
    const x = randomArray(ROWS * D, 1); // [ROWS, D]
    await writeStore(join(dir, 'store'), x);
    const engine = new Engine();
    const memory = await measure(engine, memoryDataset('memory', x, D), join(dir, 'm'));
    const store = await openStore(join(dir, 'store'));
    const fromStore = await measure(engine, store, join(dir, 's'));
    await store.close();
    await engine.release();
    log(
      `training from memory: ${memory.stepsPerSecond.toFixed(2)} steps/s (batch ${BATCH}, ${D} -> ${4 * D}); stream alone ${memory.batchesPerSecond.toFixed(1)} batches/s`,
    );
    log(`training from a store: ${fromStore.stepsPerSecond.toFixed(2)} steps/s; stream alone ${fromStore.batchesPerSecond.toFixed(1)} batches/s`);
    log(`store / memory: ${(fromStore.stepsPerSecond / memory.stepsPerSecond).toFixed(3)}`);
    return {
      bench: 'store',
      rows: ROWS,
      d_in: D,
      batch: BATCH,
      memory_steps_per_s: memory.stepsPerSecond,
      store_steps_per_s: fromStore.stepsPerSecond,
      ratio: fromStore.stepsPerSecond / memory.stepsPerSecond,
      memory_batches_per_s: memory.batchesPerSecond,
      store_batches_per_s: fromStore.batchesPerSecond,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Dequantisation speed on a real GGUF (default: the cached TinyLlama-1.1B): every tensor read and
 * dequantised with the native kernels and with the TypeScript reference, per type and in total
 * (values/s, the dequantisation alone), the time of read() over every tensor (file read, allocation and
 * dequantisation), and the time to open the file (header, metadata, tensor infos).
 *   npx tsx bench/gguf-dequant.ts [FILE.gguf] [THREADS]
 */
import { open } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { isDequantType } from '../src/engine/dequant.js';
import type { Kernels } from '../src/engine/kernels.js';
import { loadNativeKernels } from '../src/engine/native.js';
import { referenceKernels } from '../src/engine/reference.js';
import { GgufFile } from '../src/io/gguf.js';
import { cachedModelPath, TINYLLAMA } from '../src/lm/model-cache.js';

const path = process.argv[2] ?? cachedModelPath(TINYLLAMA);
const threads = Number(process.argv[3] ?? availableParallelism());

const t0 = performance.now();
const g = await GgufFile.open(path);
console.log(`open: ${(performance.now() - t0).toFixed(0)} ms (${g.metadata.size} metadata keys, ${g.tensors.size} tensors)`);

/** Seconds per type spent in dequantize alone (file read and output allocated beforehand), and values per type. */
async function measure(kernels: Kernels): Promise<Map<string, [number, number]>> {
  const byType = new Map<string, [number, number]>();
  const file = await open(path);
  try {
    for (const t of g.tensors.values()) {
      if (!isDequantType(t.type)) throw new Error(`${t.name}: ${t.type} cannot be dequantised`);
      const bytes = new Uint8Array(t.bytes);
      await file.read(bytes, 0, t.bytes, t.offset);
      const out = new Float32Array(t.shape.reduce((a, b) => a * b, 1)).fill(0); // touched: no page faults timed
      const d0 = performance.now();
      kernels.dequantize(t.type, bytes, out);
      const s = (performance.now() - d0) / 1000;
      const [sum, n] = byType.get(t.type) ?? [0, 0];
      byType.set(t.type, [sum + s, n + out.length]);
    }
  } finally {
    await file.close();
  }
  return byType;
}

const native = loadNativeKernels(threads);
const results: Record<string, Record<string, number>> = {};
for (const kernels of [...(native instanceof Error ? [] : [native]), referenceKernels]) {
  const byType = await measure(kernels);
  let total = 0;
  let values = 0;
  const figures: Record<string, number> = {};
  for (const [type, [s, n]] of [...byType].sort()) {
    total += s;
    values += n;
    figures[type] = Math.round(n / s / 1e6);
    console.log(
      `${kernels.name.padEnd(9)} ${type.padEnd(8)} ${(n / 1e6).toFixed(1).padStart(7)} M values ${s.toFixed(2).padStart(6)} s ${(n / s / 1e6).toFixed(0).padStart(6)} M values/s`,
    );
  }
  const r0 = performance.now();
  for (const name of g.tensors.keys()) await g.read(name, kernels);
  const readAll = (performance.now() - r0) / 1000;
  console.log(`${kernels.name.padEnd(9)} read() of every tensor (file read, allocation, dequantisation): ${readAll.toFixed(2)} s`);
  console.log(
    `${kernels.name.padEnd(9)} all      ${(values / 1e6).toFixed(1).padStart(7)} M values ${total.toFixed(2).padStart(6)} s ${(values / total / 1e6).toFixed(0).padStart(6)} M values/s`,
  );
  results[kernels.name] = { ...figures, dequantSeconds: Number(total.toFixed(3)), readAllSeconds: Number(readAll.toFixed(3)) };
}
console.log(JSON.stringify({ bench: 'gguf-dequant', threads, results }));
await g.close();

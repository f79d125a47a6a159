/**
 * The real TinyLlama-1.1B GGUF (322 MB; fetched by `sae demo --llm` or CI into the model cache):
 * its tensor-type inventory and metadata, and rows of an IQ2_XXS, a Q2_K, a Q4_K and the Q5_K tensor
 * dequantised by both backends against the numpy oracle reading the same file (bit for bit).
 * Skips with a message when the file (or /usr/bin/python3 with numpy) is absent.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Kernels } from '../src/engine/kernels.js';
import { loadNativeKernels } from '../src/engine/native.js';
import { referenceKernels } from '../src/engine/reference.js';
import { GgufFile } from '../src/io/gguf.js';
import { cachedModelPath, TINYLLAMA } from '../src/lm/model-cache.js';

const PATH = cachedModelPath(TINYLLAMA);
const PYTHON = '/usr/bin/python3';
const ORACLE = join(import.meta.dirname, '..', 'tools', 'gen_gguf_reference.py');

function why(): string | undefined {
  if (!existsSync(PATH) || statSync(PATH).size !== TINYLLAMA.bytes) return `no ${TINYLLAMA.file} of ${TINYLLAMA.bytes} bytes at ${PATH}`;
  if (spawnSync(PYTHON, ['-c', 'import numpy'], { stdio: 'ignore' }).status !== 0) return `${PYTHON} with numpy is not available`;
  return undefined;
}
const skip = why();
const run = skip ? describe.skip : describe;

/** Tensor -> rows checked: IQ2_XXS, Q2_K (a layer's and the embedding), Q4_K, Q5_K (the unembedding). */
const ROWS: Record<string, readonly number[]> = {
  'blk.0.attn_q.weight': [0, 1000, 2047],
  'blk.21.ffn_gate.weight': [5631],
  'blk.1.ffn_down.weight': [0, 2047],
  'token_embd.weight': [1, 450, 31999],
  'blk.7.attn_v.weight': [0, 255],
  'output.weight': [0, 29871, 31999],
};

run(`TinyLlama GGUF${skip ? ` (SKIPPED: ${skip})` : ''}`, () => {
  it('has the expected tensor types and metadata', async () => {
    const g = await GgufFile.open(PATH);
    try {
      const inventory: Record<string, number> = {};
      for (const t of g.tensors.values()) inventory[t.type] = (inventory[t.type] ?? 0) + 1;
      expect(inventory).toEqual({ F32: 45, IQ2_XXS: 130, Q2_K: 3, Q4_K: 22, Q5_K: 1 });
      expect(g.version).toBe(3);
      expect(g.string('general.architecture')).toBe('llama');
      expect(g.number('llama.block_count')).toBe(22);
      expect(g.array('tokenizer.ggml.tokens')).toHaveLength(32000);
      expect(g.tensor('token_embd.weight')).toMatchObject({ type: 'Q2_K', shape: [32000, 2048] });
    } finally {
      await g.close();
    }
  });

  it('dequantises rows of IQ2_XXS, Q2_K, Q4_K and Q5_K tensors as the numpy oracle does', async () => {
    const args = Object.entries(ROWS).map(([name, rows]) => `${name}:${rows.join(',')}`);
    const oracle = JSON.parse(execFileSync(PYTHON, [ORACLE, '--rows', PATH, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 })) as Record<
      string,
      { type: string; shape: number[]; rows: Record<string, number[]> }
    >;
    const native = loadNativeKernels(2);
    const backends: Kernels[] = [referenceKernels, ...(native instanceof Error ? [] : [native])];
    const g = await GgufFile.open(PATH);
    try {
      const types = new Set<string>();
      for (const [name, rows] of Object.entries(ROWS)) {
        const want = oracle[name]!;
        expect(g.tensor(name).type).toBe(want.type);
        types.add(want.type);
        for (const kernels of backends) {
          for (const r of rows) {
            const got = await g.readRows(name, r, 1, kernels);
            expect(Array.from(got), `${name} row ${r} (${kernels.name})`).toEqual(want.rows[String(r)]);
          }
        }
      }
      expect([...types].sort()).toEqual(['IQ2_XXS', 'Q2_K', 'Q4_K', 'Q5_K']);
    } finally {
      await g.close();
    }
  });
});

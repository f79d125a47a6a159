// The hooked transformer against float64 PyTorch references of every family (test/fixtures/lm),
// and its edits, early stops and errors.
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../src/engine/index.js';
import { readSafetensors, toFloat32 } from '../src/io/safetensors.js';
import { HookedTransformer } from '../src/lm/transformer/model.js';

const DIR = 'test/fixtures/lm';

interface Case {
  readonly name: string;
  readonly reference: string;
  readonly hooks: readonly string[];
  readonly files: readonly string[];
}
const manifest = JSON.parse(readFileSync(join(DIR, 'manifest.json'), 'utf8')) as { cases: Case[] };
const hfCases = manifest.cases.filter((c) => c.files.includes('config.json'));

let engine: Engine;
beforeAll(() => {
  engine = new Engine({ kernels: 'reference', threads: 1 });
});
afterAll(async () => {
  await engine.release();
});

/** max |a - b| / max |b| */
function relError(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / (scale || 1);
}

async function reference(c: Case): Promise<{ contexts: Int32Array[]; values: Map<string, { data: Float32Array; shape: number[] }> }> {
  const ref = await readSafetensors(join(DIR, c.reference));
  const ids = ref.tensors.get('input_ids')!;
  const [B, S] = ids.shape as [number, number];
  const flat = Int32Array.from(ids.data as BigInt64Array, (v) => Number(v));
  const contexts = Array.from({ length: B }, (_, b) => flat.slice(b * S, (b + 1) * S));
  const values = new Map<string, { data: Float32Array; shape: number[] }>();
  for (const [name, t] of ref.tensors) if (name !== 'input_ids') values.set(name, { data: toFloat32(t, c.reference), shape: t.shape });
  return { contexts, values };
}

describe.each(hfCases)('$name', (c) => {
  it('matches every hook and the logits of the float64 reference within 1e-4 relative', async () => {
    const m = await HookedTransformer.load(join(DIR, c.name), engine);
    const { contexts, values } = await reference(c);
    const hooks = c.hooks.filter((h) => h !== 'logits');
    expect(m.hookNames()).toEqual(hooks);
    const r = await m.run(contexts, { returnHooks: hooks });
    const worst: [string, number][] = [];
    for (const h of c.hooks) {
      const ours = h === 'logits' ? r.logits! : r.hooks[h]!;
      const ref = values.get(h)!;
      expect(ours.dims, h).toEqual(ref.shape);
      worst.push([h, relError(ours.data, ref.data)]);
    }
    const bad = worst.filter(([, e]) => !(e <= 1e-4));
    expect(bad).toEqual([]);
  });
});

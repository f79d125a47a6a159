/** Token contexts on a tiny synthetic token dataset, and their HTML (escaped, shaded). */
import { afterAll, describe, expect, it } from 'vitest';
import { memoryDataset } from '../src/data/memory.js';
import { contextWindow, renderTokenExample, tokenContexts, tokenRows } from '../src/dashboard/tokens.js';
import { Engine } from '../src/engine/index.js';
import { HOSTILE, syntheticTokens } from './helpers/tokens.js';

const engine = new Engine({ kernels: 'reference', threads: 1 });
afterAll(() => engine.release());

describe('token contexts', () => {
  const { tokens, documents, x, sae } = syntheticTokens();
  const t = tokenRows(tokens, documents);

  it('a context stays within its document', () => {
    expect(contextWindow(t, 4, 2, 1)).toEqual({ start: 2, end: 6 });
    expect(contextWindow(t, 5, 10, 10)).toEqual({ start: 0, end: 6 });
    expect(contextWindow(t, 6, 10, 2)).toEqual({ start: 6, end: 9 });
    expect(contextWindow(t, 9, 1, 5)).toEqual({ start: 8, end: 10 });
  });

  it('every token of the context carries the latent activation computed by the SAE', async () => {
    const ds = memoryDataset('tokens', x, 3);
    const [a, b] = await tokenContexts(
      engine,
      sae,
      ds,
      t,
      [
        { row: 4, latent: 2 },
        { row: 7, latent: 1 },
      ],
      { before: 3, after: 1 },
    );
    expect(a).toEqual({ tokens: [' cat', ' sat', '\n', HOSTILE, ' cat'], activations: [0, 0, 0, Math.fround(1.4), 0], highlight: 3 });
    expect(b!.tokens).toEqual(['A', ' cat', ' & ']);
    expect(b!.activations.map((v) => Number(v.toFixed(5)))).toEqual([0, 1.7, 0]);
    expect(b!.highlight).toBe(1);
  });

  it('contexts are encoded in chunks without mixing examples up', async () => {
    const ds = memoryDataset('tokens', x, 3);
    const many = Array.from({ length: 3000 }, (_, k) => ({ row: k % 10, latent: k % 3 }));
    const ctx = await tokenContexts(engine, sae, ds, t, many, { before: 2, after: 2 });
    ctx.forEach((c, k) => {
      const { row, latent } = many[k]!;
      expect(c.tokens[c.highlight]).toBe(tokens[row]);
      expect(c.activations[c.highlight]).toBeCloseTo(x[row * 3 + latent]!, 6);
    });
  });

  it('rows shared by contexts are encoded once, and contexts across chunks of distinct rows come out whole', async () => {
    // 9000 rows in 3 documents; the identity SAE makes a row's activation its own value
    const rows = 9000;
    const big = Float32Array.from({ length: rows * 3 }, (_, i) => ((i * 7919) % 1000) / 100);
    const bt = tokenRows(
      Array.from({ length: rows }, (_, r) => `t${r}`),
      Array.from({ length: rows }, (_, r) => Math.floor(r / 3000)),
    );
    const ds = memoryDataset('big', big, 3);
    let read = 0;
    const counting = { ...ds, read: (start: number, n: number, out: Float32Array) => ((read += n), ds.read(start, n, out)) };
    const examples = [4094, 4095, 4096, 4100, 2999, 3000, 8999, 0, 4095, 6000].flatMap((row) => [0, 1, 2].map((latent) => ({ row, latent })));
    const shuffled = [...examples, ...Array.from({ length: 400 }, (_, k) => ({ row: (k * 22) % rows, latent: k % 3 }))];
    const ctx = await tokenContexts(engine, sae, counting, bt, shuffled, { before: 5, after: 5 });
    ctx.forEach((c, k) => {
      const { row, latent } = shuffled[k]!;
      const w = contextWindow(bt, row, 5, 5);
      expect(c.tokens).toEqual(Array.from({ length: w.end - w.start }, (_, j) => `t${w.start + j}`));
      expect(c.highlight).toBe(row - w.start);
      c.activations.forEach((v, j) => expect(v).toBeCloseTo(big[(w.start + j) * 3 + latent]!, 5));
    });
    const distinct = new Set(
      shuffled.flatMap(({ row }) => {
        const w = contextWindow(bt, row, 5, 5);
        return Array.from({ length: w.end - w.start }, (_, j) => w.start + j);
      }),
    );
    expect(distinct.size).toBeGreaterThan(4096); // more than one chunk
    expect(read).toBe(distinct.size);
  });
});

describe('token HTML', () => {
  it('escapes every token: markup in data is shown as text', () => {
    const html = renderTokenExample({ tokens: ['a', HOSTILE, '"x" & \'y\'', '\n'], activations: [0, 2, 1, 0], highlight: 1 }, 2);
    expect(html).not.toContain('<img');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(html).toContain('&quot;x&quot; &amp; &#39;y&#39;');
    expect(html).toContain('↵');
  });

  it('shades each token by its activation over the scale and outlines the example token', () => {
    const html = renderTokenExample({ tokens: ['a', 'b', 'c'], activations: [0, 1, 4], highlight: 2 }, 2);
    const spans = html.match(/<span[^>]*>/g)!;
    expect(spans[0]).toBe('<span class="tok" title="0.00">');
    expect(spans[1]).toContain('rgba(255,140,0,0.500)');
    expect(spans[2]).toContain('class="tok hl"');
    expect(spans[2]).toContain('rgba(255,140,0,1.000)'); // clamped
  });
});

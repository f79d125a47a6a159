/**
 * Examples as the dashboard shows them, by kind of data:
 *   images  the patch in its source image (with the pixels around it), the file and the corner
 *   tokens  the context around the token, every token shaded by the latent's activation (tokens.ts)
 *   rows    the row number (plain vectors have nothing else to show)
 * and, for the Neuronpedia export, as tokens and values: the context for token data, one
 * pseudo-token naming the patch ("file.jpg@x,y") or the row ("row 12") otherwise.
 */
import { join } from 'node:path';
import type { Dataset } from '../data/dataset.js';
import { type GreyImage, type PatchOrigins, readGreyImage } from '../data/images.js';
import type { Engine } from '../engine/index.js';
import type { Sae } from '../sae.js';
import { escapeHtml } from '../viz/report.js';
import { shortNumber } from '../viz/charts.js';
import type { Example } from './collect.js';
import { ensureWritableDir } from '../io/atomic.js';
import { writePng } from '../io/png.js';
import { imageNames, patchInContext, pngDataUrl, shrinkImage } from './images.js';
import type { DataKind, RenderedExample } from './pages.js';
import type { TokenRows } from '../data/token-rows.js';
import { type ContextOptions, renderTokenExample, tokenContexts, type TokenExample } from './tokens.js';

/** Where the rows of the data come from, for showing them. */
export type ExampleSource =
  | { readonly kind: 'images'; readonly images: readonly string[]; readonly origins: PatchOrigins; readonly patchSize: number }
  | { readonly kind: 'tokens'; readonly tokens: TokenRows; readonly context?: ContextOptions }
  | { readonly kind: 'rows' };

/** An example of a latent to show; `scale` is the latent's largest activation (token shading). */
export interface ExampleRequest extends Example {
  readonly latent: number;
  readonly scale: number;
}

/** A shown example: its HTML, and its tokens and values for the Neuronpedia export (highlight: the example's own token). */
export interface ShownExample extends RenderedExample {
  readonly tokens: readonly string[];
  readonly values: readonly number[];
  readonly highlight: number;
}

function contextKey(q: { readonly row: number; readonly latent: number }): string {
  return `${q.row}/${q.latent}`;
}

/** Source images kept at most this many at once (decoded grey, 4 bytes a pixel). */
const IMAGE_CACHE = 16;
/** The longer side of the shrunk source images, in pixels. */
const SOURCE_SIDE = 400;

/** A shrunk source image written once into the site: its path from a feature page and its size. */
interface SourceThumb {
  readonly href: string;
  readonly width: number;
  readonly height: number;
  /** Source pixels per thumbnail pixel. */
  readonly factor: number;
}

/** Renders examples; source images (image data) are written under `out`/images/ as they are first needed. */
export class ExampleRenderer {
  private readonly images = new Map<number, Promise<GreyImage>>();
  /** Token data: contexts computed ahead by prefetch, by `row/latent`. */
  private contexts = new Map<string, TokenExample>();
  private readonly thumbs = new Map<number, Promise<SourceThumb>>();
  private readonly names: readonly string[];

  constructor(
    private readonly engine: Engine,
    private readonly sae: Sae,
    private readonly ds: Dataset,
    readonly source: ExampleSource,
    private readonly out: string,
  ) {
    this.names = source.kind === 'images' ? imageNames(source.images) : [];
  }

  get kind(): DataKind {
    return this.source.kind;
  }

  /**
   * Token data: computes the contexts of these examples in one pass, each distinct row encoded once,
   * for render to take (replacing what an earlier prefetch kept). Other data: nothing to do.
   */
  async prefetch(requests: readonly ExampleRequest[]): Promise<void> {
    const s = this.source;
    if (s.kind !== 'tokens') return;
    const contexts = await tokenContexts(this.engine, this.sae, this.ds, s.tokens, requests, s.context);
    this.contexts = new Map(requests.map((q, k) => [contextKey(q), contexts[k]!]));
  }

  async render(requests: readonly ExampleRequest[]): Promise<ShownExample[]> {
    const s = this.source;
    if (s.kind === 'tokens') {
      const missing = requests.filter((q) => !this.contexts.has(contextKey(q)));
      const computed = missing.length ? await tokenContexts(this.engine, this.sae, this.ds, s.tokens, missing, s.context) : [];
      missing.forEach((q, k) => this.contexts.set(contextKey(q), computed[k]!));
      const contexts = requests.map((q) => this.contexts.get(contextKey(q))!);
      return contexts.map((c, k) => {
        const { value, scale } = requests[k]!;
        return {
          value,
          html: `<div class="ex">${valueSpan(value)}${renderTokenExample(c, scale)}</div>`,
          tokens: c.tokens,
          values: c.activations,
          highlight: c.highlight,
        };
      });
    }
    if (s.kind === 'rows') {
      return requests.map(({ row, value }) => ({
        value,
        html: `<div class="ex">${valueSpan(value)}<span>row ${row}</span></div>`,
        tokens: [`row ${row}`],
        values: [value],
        highlight: 0,
      }));
    }
    const out: ShownExample[] = [];
    const p = s.patchSize;
    const box = `left:${pct(p, 3 * p)};top:${pct(p, 3 * p)};width:${pct(p, 3 * p)};height:${pct(p, 3 * p)}`;
    for (const { row, value } of requests) {
      const { file, name, x, y } = this.origin(row);
      const src = pngDataUrl(patchInContext(await this.image(s.origins.image[row]!), x, y, p, p));
      const html =
        `<figure class="ex"><div class="patch"><img class="px" src="${src}" alt="patch at ${escapeHtml(`${name} (${x}, ${y})`)}"><i style="${box}"></i></div>` +
        `<figcaption>${valueSpan(value)}<span class="src" title="${escapeHtml(file)}">${escapeHtml(name)}</span><span>x ${x}, y ${y}</span></figcaption></figure>`;
      out.push({ value, html, tokens: [`${name}@${x},${y}`], values: [value], highlight: 0 });
    }
    return out;
  }

  /**
   * Image data: HTML showing the source images that hold the most of `top` (at most `max`), shrunk,
   * with those patches outlined.
   */
  async locators(top: readonly Example[], max = 2): Promise<string[]> {
    const s = this.source;
    if (s.kind !== 'images') return [];
    const byImage = new Map<number, { x: number; y: number }[]>();
    for (const { row } of top) {
      const i = s.origins.image[row]!;
      byImage.set(i, [...(byImage.get(i) ?? []), { x: s.origins.x[row]!, y: s.origins.y[row]! }]);
    }
    const chosen = [...byImage.entries()].sort((a, b) => b[1].length - a[1].length || a[0] - b[0]).slice(0, max);
    const out: string[] = [];
    for (const [i, corners] of chosen) {
      const t = await this.thumb(i);
      const w = t.width * t.factor;
      const h = t.height * t.factor;
      const half = s.patchSize / 2;
      const boxes = corners.map(
        (c) => `<i style="left:${pct(c.x + half, w)};top:${pct(c.y + half, h)};width:${pct(s.patchSize, w)};height:${pct(s.patchSize, h)}"></i>`,
      );
      const caption = `${this.names[i]!}: ${corners.length} of the top ${top.length}`;
      out.push(
        `<figure><div class="locator"><img src="${escapeHtml(t.href)}" width="${t.width}" height="${t.height}" alt="${escapeHtml(caption)}">${boxes.join('')}</div>` +
          `<figcaption title="${escapeHtml(s.images[i]!)}">${escapeHtml(caption)}</figcaption></figure>`,
      );
    }
    return out;
  }

  /** The shrunk source image i, written to images/source-<i>.png the first time. */
  private thumb(i: number): Promise<SourceThumb> {
    let t = this.thumbs.get(i);
    if (!t) {
      t = (async () => {
        const { image, factor } = shrinkImage(await this.image(i), SOURCE_SIDE);
        await ensureWritableDir(join(this.out, 'images'));
        await writePng(join(this.out, 'images', `source-${i}.png`), image);
        return { href: `../images/source-${i}.png`, width: image.width, height: image.height, factor };
      })();
      this.thumbs.set(i, t);
    }
    return t;
  }

  private origin(row: number): { file: string; name: string; x: number; y: number } {
    const s = this.source;
    if (s.kind !== 'images') throw new Error('origin: not image data');
    const i = s.origins.image[row]!;
    return { file: s.images[i]!, name: this.names[i]!, x: s.origins.x[row]!, y: s.origins.y[row]! };
  }

  private image(i: number): Promise<GreyImage> {
    const s = this.source;
    if (s.kind !== 'images') throw new Error('image: not image data');
    let im = this.images.get(i);
    if (!im) {
      if (this.images.size >= IMAGE_CACHE) this.images.delete(this.images.keys().next().value!);
      im = readGreyImage(s.images[i]!);
      this.images.set(i, im);
    }
    return im;
  }
}

/** a / b as a CSS percentage. */
function pct(a: number, b: number): string {
  return `${((100 * a) / b).toFixed(3)}%`;
}

function valueSpan(v: number): string {
  return `<span class="val">${escapeHtml(shortNumber(v))}</span>`;
}

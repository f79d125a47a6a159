/**
 * The dashboard in a real browser: Debian's Chromium, headless, driven by playwright-core, opening
 * the generated site from disk (file://). It checks the overview renders (metrics, both histograms,
 * the feature list), sorts the list, clicks through to a feature page and checks it renders with its
 * images loaded, and that a hostile token stays text. Any console error, page error, dialog or
 * request that leaves the disk fails the test.
 *
 * Needs /usr/bin/chromium (or SAE_CHROMIUM=path): CI installs it with apt-get (.ci/run). Without it
 * the test fails and says how to install it; on a developer machine SAE_SKIP_BROWSER_TEST=1 skips
 * it instead (refused when CI is set).
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDashboard } from '../src/dashboard/build.js';
import { tokenRows } from '../src/dashboard/tokens.js';
import { imagePatchDataset } from '../src/data/image-dataset.js';
import { memoryDataset } from '../src/data/memory.js';
import { Engine } from '../src/engine/index.js';
import { encodePng } from '../src/io/png.js';
import { Rng } from '../src/rng.js';
import { Sae } from '../src/sae.js';
import { HOSTILE, syntheticTokens } from './helpers/tokens.js';

const CHROMIUM = process.env['SAE_CHROMIUM'] ?? '/usr/bin/chromium';
/** The launch flags of ../shared/DATA.md: no sandbox (root in CI), and no background connections. */
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const optOut = process.env['SAE_SKIP_BROWSER_TEST'] === '1' && !process.env['CI'];
if (optOut) console.warn('dashboard-browser.test.ts: skipped (SAE_SKIP_BROWSER_TEST=1)');

const D_SAE = 12;
let dir: string;
let imageSite: string;
let tokenSite: string;
let context: BrowserContext | undefined;
/** Opens a page that records everything that goes wrong in it: console errors and warnings, page errors, dialogs, requests off the disk. */
async function watchedPage(): Promise<{ page: Page; problems: string[] }> {
  const page = await context!.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('dialog', (d) => {
    problems.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  page.on('request', (r) => {
    if (!/^(file|data):/.test(r.url())) problems.push(`request off the disk: ${r.url()}`);
  });
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
  return { page, problems };
}

async function buildSites(): Promise<void> {
  const engine = new Engine({ kernels: 'reference', threads: 1 });
  const rng = new Rng(2);
  const pngs = [join(dir, 'a.png'), join(dir, 'b.png')];
  for (const [k, f] of pngs.entries()) {
    const w = 48 + 16 * k;
    // smooth gradients plus noise: patches with structure for the filters to pick up
    const data = Uint8Array.from({ length: w * 40 }, (_, i) => Math.max(0, Math.min(255, 128 + 90 * Math.sin((i % w) / (5 + k)) + 30 * rng.normal())));
    await writeFile(f, encodePng({ width: w, height: 40, channels: 1, data }));
  }
  const ds = await imagePatchDataset(pngs, { patchSize: 6, patches: 1500, whitening: 'zca', eps: 1e-2 }, engine);
  const n = (k: number, s: number): Float32Array => Float32Array.from({ length: k }, () => s * rng.normal());
  const bEnc = n(D_SAE, 0.3);
  bEnc[D_SAE - 1] = -1e6; // one dead latent
  const sae = new Sae(
    'standard',
    { dIn: 36, dSae: D_SAE },
    {},
    { W_enc: n(36 * D_SAE, 0.3), b_enc: bEnc, W_dec: n(36 * D_SAE, 0.3), b_dec: new Float32Array(36) },
  );
  imageSite = join(dir, 'images-site');
  await buildDashboard(
    engine,
    sae,
    ds,
    { kind: 'images', images: ds.images, origins: ds.origins, patchSize: 6 },
    { out: imageSite, title: 'browser test', preprocess: ds.preprocess },
  );
  const t = syntheticTokens();
  tokenSite = join(dir, 'token-site');
  await buildDashboard(engine, t.sae, memoryDataset('tokens', t.x, 3), { kind: 'tokens', tokens: tokenRows(t.tokens, t.documents) }, { out: tokenSite });
  await engine.release();
}

describe.skipIf(optOut)('the dashboard in headless Chromium', () => {
  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `Chromium is not installed at ${CHROMIUM}: the dashboard browser test needs it. Install Debian's chromium ` +
          '(apt-get install -y chromium; CI does this in .ci/run), point SAE_CHROMIUM at another Chromium, ' +
          'or on a developer machine skip this test with SAE_SKIP_BROWSER_TEST=1.',
      );
    }
    dir = await mkdtemp(join(tmpdir(), 'dashboard-browser-'));
    await buildSites();
    context = await chromium.launchPersistentContext(mkdtempSync(join(dir, 'profile-')), {
      executablePath: CHROMIUM,
      headless: true,
      args: FLAGS,
      viewport: { width: 1280, height: 900 },
    });
  });
  afterAll(async () => {
    await context?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('renders the overview, sorts the list and opens a feature page', async () => {
    const { page, problems } = await watchedPage();
    await page.goto(pathToFileURL(join(imageSite, 'index.html')).href);
    await expect.poll(() => page.locator('#metrics .card').count()).toBeGreaterThanOrEqual(10);
    expect(await page.locator('#metrics').innerText()).toMatch(/explained variance[\s\S]*L0[\s\S]*dead/);
    expect(await page.locator('#firing-histogram svg rect.bar').count()).toBeGreaterThan(0);
    expect(await page.locator('#l0-histogram svg rect.bar').count()).toBeGreaterThan(0);
    const rows = page.locator('#features tbody tr');
    expect(await rows.count()).toBe(D_SAE);
    expect(await page.locator('#features tbody tr.dead').count()).toBe(1);
    expect(await page.locator('#features img.thumb').evaluateAll((imgs) => imgs.every((i) => i instanceof HTMLImageElement && i.naturalWidth === 6))).toBe(
      true,
    );

    const column = (key: string): Promise<number[]> => rows.evaluateAll((trs, k) => trs.map((tr) => Number((tr as HTMLElement).dataset[k])), key);
    const descending = (xs: number[]): boolean => xs.every((v, i) => i === 0 || xs[i - 1]! >= v);
    expect(descending(await column('density'))).toBe(true);
    await page.click('#sort-max');
    expect(await page.locator('#features').getAttribute('data-sorted')).toBe('max');
    expect(await page.locator('#sort-max').getAttribute('aria-pressed')).toBe('true');
    const maxes = await column('max');
    expect(descending(maxes)).toBe(true);
    expect(maxes[0]).toBeGreaterThan(0);
    await page.click('#sort-index');
    expect(await column('index')).toEqual(Array.from({ length: D_SAE }, (_, i) => i));
    await page.click('#sort-max');

    const first = page.locator('#features tbody tr').first();
    const index = Number(await first.getAttribute('data-index'));
    await first.locator('a').click();
    await page.waitForURL(/features\/\d+\.html$/);
    expect(page.url()).toMatch(new RegExp(`features/${index}\\.html$`));
    expect(await page.locator('h1').innerText()).toBe(`Feature #${index}`);
    expect(await page.locator('#stats .card').count()).toBe(5);
    expect(await page.locator('#activation-histogram svg rect.bar').count()).toBeGreaterThan(0);
    expect(await page.locator('#filter img').count()).toBe(2);
    expect(await page.locator('#top .ex').count()).toBeGreaterThan(0);
    expect(await page.locator('#quantiles .band').count()).toBeGreaterThan(0);
    expect(await page.locator('#sources .locator i').count()).toBeGreaterThan(0);
    const images = await page.locator('img').evaluateAll((imgs) => imgs.map((i) => (i instanceof HTMLImageElement ? i.complete && i.naturalWidth > 0 : false)));
    expect(images.length).toBeGreaterThan(5);
    expect(images.every(Boolean)).toBe(true);
    await page.click('text=← all features');
    await page.waitForURL(/index\.html$/);
    await page.close();
    expect(problems).toEqual([]);
  });

  it('shows a hostile token as text: no element, no script, no dialog', async () => {
    const { page, problems } = await watchedPage();
    await page.goto(pathToFileURL(join(tokenSite, 'features', '2.html')).href);
    const hl = page.locator('#top .tok.hl').first();
    expect(await hl.innerText()).toBe(HOSTILE);
    expect(await page.locator('main img').count()).toBe(0);
    expect(await page.locator('#top .tok').count()).toBeGreaterThan(1);
    await page.goto(pathToFileURL(join(tokenSite, 'index.html')).href);
    expect(await page.locator('#features tr[data-index="2"] td.preview mark').innerText()).toBe(HOSTILE);
    expect(await page.locator('main img').count()).toBe(0);
    await page.close();
    expect(problems).toEqual([]);
  });
});

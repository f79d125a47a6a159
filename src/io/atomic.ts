/**
 * File access with one-line errors: atomic writes (temp file in the same folder, fsync, rename), a
 * writability check for output folders, and exact reads for the parsers of untrusted files.
 * Every failure of the file system becomes a UserError naming the path: "out/cfg.json: cannot write
 * (EACCES: permission denied)", "data.npy: no such file".
 */
import { randomBytes } from 'node:crypto';
import { constants, type FileHandle, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileError, UserError } from '../errors.js';

/** What writeFileAtomic accepts: the bytes or text at once, or chunks produced on the way. */
export type FileContents = Uint8Array | string | Iterable<Uint8Array> | AsyncIterable<Uint8Array>;

/**
 * Writes `<path>.tmp-<pid>-<random>`, fsyncs it and renames it over `path`, so readers see the old
 * file or the new one, never half of one. On any failure the temp file is removed and an existing
 * file at `path` is left as it was. File-system failures become UserErrors naming `path`; an error
 * thrown by a chunk iterator is passed on as it is.
 */
export async function writeFileAtomic(path: string, data: FileContents): Promise<void> {
  const temp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  let handle: FileHandle | undefined;
  try {
    handle = await open(temp, 'wx').catch(rethrowAs(path, 'cannot write'));
    const h = handle;
    const write = (chunk: Uint8Array | string): Promise<unknown> => h.writeFile(chunk).catch(rethrowAs(path, 'cannot write'));
    if (typeof data === 'string' || data instanceof Uint8Array) await write(data);
    else for await (const chunk of data) await write(chunk);
    await handle.sync().catch(rethrowAs(path, 'cannot write'));
    await handle.close().catch(rethrowAs(path, 'cannot write'));
    handle = undefined;
    await rename(temp, path).catch(rethrowAs(path, 'cannot write'));
  } catch (err) {
    await handle?.close().catch(() => undefined);
    await rm(temp, { force: true }).catch(() => undefined);
    throw err;
  }
  await syncFolder(dirname(path));
}

/** Makes the rename durable where the platform allows fsync on a folder (not on Windows). */
async function syncFolder(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY).catch(() => undefined);
  if (handle === undefined) return;
  await handle.sync().catch(() => undefined);
  await handle.close().catch(() => undefined);
}

/** `<name>.tmp-<pid>-<12 hex digits>`: the temporary files writeFileAtomic makes. */
const TEMP_FILE = /\.tmp-(\d+)-[0-9a-f]{12}$/;

/** Whether process `pid` is alive (a process of another user counts as alive). */
function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errorCode(err) === 'EPERM';
  }
}

/**
 * Removes the temporary files of writes that were interrupted (a kill -9, a power cut) in `dir`:
 * those whose writer's process is gone. Those of a live process are left alone. Returns their names.
 */
export async function removeStaleTemps(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const stale = names.filter((n) => {
    const m = TEMP_FILE.exec(n);
    return m !== null && !processAlive(Number(m[1]));
  });
  for (const n of stale) await rm(join(dir, n), { force: true }).catch(() => undefined);
  return stale;
}

/**
 * Creates `dir` (and its parents) if needed and proves it can be written by creating and removing a
 * probe file, so that a long run fails at its start rather than at its first checkpoint. Temporary
 * files left there by interrupted writes of earlier runs are removed (see removeStaleTemps).
 */
export async function ensureWritableDir(dir: string): Promise<void> {
  const info = await stat(dir).catch(() => undefined);
  if (info !== undefined && !info.isDirectory()) throw fileError(dir, 'exists and is not a folder');
  if (info === undefined) {
    await mkdir(dir, { recursive: true }).catch((err: unknown) => {
      if (errorCode(err) === 'EEXIST' || errorCode(err) === 'ENOTDIR') {
        throw fileError(dir, 'cannot create the folder (a file stands in its path)');
      }
      throw fileError(dir, `cannot create the folder (${describeFsError(err)})`);
    });
  }
  const probe = join(dir, `.write-probe-${process.pid}-${randomBytes(6).toString('hex')}`);
  const handle = await open(probe, 'wx').catch(rethrowAs(dir, 'folder is not writable'));
  await handle.close();
  await rm(probe, { force: true });
  await removeStaleTemps(dir);
}

/** A file opened for reading, with its size. Close it when done. */
export interface OpenedFile {
  readonly handle: FileHandle;
  readonly size: number;
}

/**
 * Opens a regular file for reading: "path: no such file", "path: is a folder, not a file". Opened
 * non-blocking, so that a FIFO is refused at once instead of waiting for a writer.
 */
export async function openForReading(path: string): Promise<OpenedFile> {
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- @types/node declares O_NONBLOCK a number, but Windows's fs.constants lacks it
  const handle = await open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0)).catch(rethrowAs(path, 'cannot read'));
  try {
    const info = await handle.stat();
    if (info.isDirectory()) throw fileError(path, 'is a folder, not a file');
    if (!info.isFile()) throw fileError(path, 'is not a regular file');
    return { handle, size: info.size };
  } catch (err) {
    await handle.close();
    throw err instanceof UserError ? err : fileError(path, `cannot read (${describeFsError(err)})`);
  }
}

/** Exactly `length` bytes at `position`; a file that ends sooner was truncated while being read. */
export async function readExactly(file: OpenedFile, position: number, length: number, path: string): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await file.handle.read(out, done, length - done, position + done).catch(rethrowAs(path, 'cannot read'));
    if (bytesRead === 0) throw fileError(path, `file ended at byte ${position + done} while ${length} bytes at ${position} were read (truncated?)`);
    done += bytesRead;
  }
  return out;
}

/** The whole file, for small files (configs, weights of one SAE). */
export async function readWholeFile(path: string): Promise<Uint8Array> {
  const file = await openForReading(path);
  try {
    return await readExactly(file, 0, file.size, path);
  } finally {
    await file.handle.close();
  }
}

/** 'EACCES: permission denied' from a Node fs error (its message without the syscall and path). */
export function describeFsError(err: unknown): string {
  if (err instanceof Error) return (err.message.split(', ')[0] ?? err.message).replace(/[\r\n]+/g, ' ');
  return String(err);
}

function errorCode(err: unknown): string | undefined {
  if (err instanceof Error && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}

/** A catch handler turning a file-system error into `path: <what> (<code: reason>)`. */
function rethrowAs(path: string, what: string): (err: unknown) => never {
  return (err: unknown) => {
    if (err instanceof UserError) throw err;
    if (errorCode(err) === 'ENOENT' && what === 'cannot read') throw fileError(path, 'no such file');
    if (errorCode(err) === 'EISDIR') throw fileError(path, `${what} (it is a folder)`);
    throw fileError(path, `${what} (${describeFsError(err)})`);
  };
}

/** A name from an untrusted file, quoted for a one-line message (control characters escaped, long names cut). */
export function quoteName(name: string): string {
  const shown = name.length > 80 ? `${name.slice(0, 77)}...` : name;
  return `'${shown.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}'`;
}

/** '[10, 24]' */
export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** product(shape) * itemSize, or undefined when that is not a safe integer. */
export function byteSizeOf(shape: readonly number[], itemSize: number): number | undefined {
  if (shape.includes(0)) return 0;
  let n = itemSize;
  for (const d of shape) {
    n *= d;
    if (!Number.isSafeInteger(n)) return undefined;
  }
  return n;
}

/** The chunks one after another in one buffer. */
export function concatBytes(chunks: readonly Uint8Array[]): Uint8Array {
  return concatArrays(chunks, (n) => new Uint8Array(n));
}

/** Typed arrays one after another in one array of their kind, made by `make(total length)`. */
export function concatArrays<T extends Uint8Array | Float32Array>(chunks: readonly T[], make: (n: number) => T): T {
  const out = make(chunks.reduce((s, c) => s + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import { ensureWritableDir, openForReading, readExactly, readWholeFile, writeFileAtomic } from '../src/io/atomic.js';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'io-atomic-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Root ignores permission bits, so read-only folders prove nothing there. */
const isRoot = process.getuid?.() === 0;

async function failure(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => new Error('expected a failure'),
    (err: unknown) => err,
  );
}

async function tempFilesIn(folder: string): Promise<string[]> {
  return (await readdir(folder)).filter((n) => n.includes('.tmp-') || n.includes('.write-probe-'));
}

describe('writeFileAtomic', () => {
  it('writes bytes, text, and chunks from sync and async iterables', async () => {
    const f = join(dir, 'a.bin');
    await writeFileAtomic(f, new Uint8Array([1, 2, 3]));
    expect([...(await readFile(f))]).toEqual([1, 2, 3]);
    await writeFileAtomic(f, 'héllo');
    expect(await readFile(f, 'utf8')).toBe('héllo');
    await writeFileAtomic(f, [new Uint8Array([4]), new Uint8Array(0), new Uint8Array([5, 6])]);
    expect([...(await readFile(f))]).toEqual([4, 5, 6]);
    // eslint-disable-next-line @typescript-eslint/require-await -- an AsyncIterable of data already in memory
    async function* chunks(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 5; i++) yield new Uint8Array(70000).fill(i);
    }
    await writeFileAtomic(f, chunks());
    const back = await readFile(f);
    expect(back.length).toBe(350000);
    expect([back[0], back[69999], back[70000], back[349999]]).toEqual([0, 0, 1, 4]);
    expect(await tempFilesIn(dir)).toEqual([]);
  });

  it('leaves the old file and no temp file when the data generator throws', async () => {
    const f = join(dir, 'good.json');
    await writeFile(f, '{"good": true}');
    // eslint-disable-next-line @typescript-eslint/require-await -- an AsyncIterable of data already in memory
    async function* broken(): AsyncGenerator<Uint8Array> {
      yield new TextEncoder().encode('{"half');
      throw new Error('generator broke');
    }
    const err = await failure(writeFileAtomic(f, broken()));
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(UserError);
    expect((err as Error).message).toBe('generator broke');
    expect(await readFile(f, 'utf8')).toBe('{"good": true}');
    expect(await tempFilesIn(dir)).toEqual([]);
  });

  it('names the path when the folder does not exist', async () => {
    const f = join(dir, 'missing', 'cfg.json');
    const err = await failure(writeFileAtomic(f, 'x'));
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toBe(`${f}: cannot write (ENOENT: no such file or directory)`);
  });

  it('fails cleanly when the target is a folder', async () => {
    const f = join(dir, 'is-a-folder');
    await mkdir(join(f, 'inside'), { recursive: true });
    const err = await failure(writeFileAtomic(f, 'x'));
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(new RegExp(`^${f}: cannot write \\(`));
    expect(await tempFilesIn(dir)).toEqual([]);
    expect(await readdir(f)).toEqual(['inside']);
  });

  it.skipIf(isRoot)('leaves the old file when the folder is read-only', async () => {
    const ro = join(dir, 'read-only');
    await mkdir(ro);
    await writeFile(join(ro, 'cfg.json'), 'old');
    await chmod(ro, 0o555);
    try {
      const err = await failure(writeFileAtomic(join(ro, 'cfg.json'), 'new'));
      expect((err as Error).message).toBe(`${join(ro, 'cfg.json')}: cannot write (EACCES: permission denied)`);
      expect(await readFile(join(ro, 'cfg.json'), 'utf8')).toBe('old');
      expect(await readdir(ro)).toEqual(['cfg.json']);
    } finally {
      await chmod(ro, 0o755);
    }
  });
});

describe('ensureWritableDir', () => {
  it('creates nested folders and leaves no probe behind', async () => {
    const d = join(dir, 'out', 'run1', 'ckpt');
    await ensureWritableDir(d);
    await ensureWritableDir(d);
    expect(await readdir(d)).toEqual([]);
  });

  it('refuses a file, and a path through a file', async () => {
    const f = join(dir, 'plain-file');
    await writeFile(f, 'x');
    expect(await failure(ensureWritableDir(f))).toEqual(new UserError(`${f}: exists and is not a folder`));
    const under = join(f, 'sub');
    expect(await failure(ensureWritableDir(under))).toEqual(new UserError(`${under}: cannot create the folder (a file stands in its path)`));
  });

  it.skipIf(isRoot)('refuses a read-only folder', async () => {
    const ro = join(dir, 'ro-out');
    await mkdir(ro);
    await chmod(ro, 0o555);
    try {
      expect(await failure(ensureWritableDir(ro))).toEqual(new UserError(`${ro}: folder is not writable (EACCES: permission denied)`));
    } finally {
      await chmod(ro, 0o755);
    }
  });
});

describe('reading', () => {
  it('says "no such file" and "is a folder"', async () => {
    const f = join(dir, 'nope.bin');
    expect(await failure(readWholeFile(f))).toEqual(new UserError(`${f}: no such file`));
    expect(await failure(openForReading(dir))).toEqual(new UserError(`${dir}: is a folder, not a file`));
  });

  it('reads exact ranges and reports a file that ends early', async () => {
    const f = join(dir, 'range.bin');
    await writeFile(
      f,
      Uint8Array.from({ length: 100 }, (_, i) => i),
    );
    const file = await openForReading(f);
    try {
      expect(file.size).toBe(100);
      expect([...(await readExactly(file, 95, 5, f))]).toEqual([95, 96, 97, 98, 99]);
      const err = await failure(readExactly(file, 90, 20, f));
      expect(err).toEqual(new UserError(`${f}: file ended at byte 100 while 20 bytes at 90 were read (truncated?)`));
    } finally {
      await file.handle.close();
    }
    expect((await readWholeFile(f)).length).toBe(100);
  });
});

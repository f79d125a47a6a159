/**
 * Regression tests for what the fuzzers (cli-fuzz.test.ts, reader-fuzz.test.ts) found, one per
 * finding, each on the smallest file that showed it.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { readJsonObject } from '../../src/io/json.js';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sae-findings-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The error `p` rejects with. */
async function errorOf(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => undefined,
    (e: unknown) => e,
  );
}

describe('fuzz findings', () => {
  it('a pretty-printed JSON file broken next to a line break is refused in one line (V8 quotes the text around the error)', async () => {
    const path = join(dir, 'hyperparams.json');
    await writeFile(path, '{\n "d_model": 4,\n "norm":\nM{\n}');
    const e = await errorOf(readJsonObject(path));
    expect(e).toBeInstanceOf(UserError);
    expect(String((e as UserError).message)).toMatch(new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not valid JSON \\([^\\n]*\\)$`));
  });
});

/**
 * Regression tests for what the fuzzers (cli-fuzz.test.ts, reader-fuzz.test.ts) found, one per
 * finding, each on the smallest file that showed it.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { readJsonObject } from '../../src/io/json.js';
import { FORMATS } from './formats.js';
import { filesUnder, judge, runCase } from './runner.js';

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
    expect((e as UserError).message).toMatch(new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not valid JSON \\([^\\n]*\\)$`));
  });

  it.each(['ONNX model.onnx_data', 'HF model.safetensors'])(
    'sae harvest from a model whose weights are all +Inf (%s) refuses in one line and leaves no store (it wrote a store of NaN rows, exit 0)',
    async (name) => {
      const f = FORMATS.find((x) => x.name === name)!;
      const at = join(dir, name.replace(/\W+/g, '-'));
      const out = join(at, 'out');
      await mkdir(out, { recursive: true });
      await f.fixture(at);
      const b = new Uint8Array(await readFile(join(at, f.target)));
      const data = name.startsWith('HF') ? 8 + Number(new DataView(b.buffer).getBigUint64(0, true)) : 0;
      const view = new DataView(b.buffer);
      for (let i = data; i + 4 <= b.length; i += 4) view.setFloat32(i, Infinity, true);
      await writeFile(join(at, f.target), b);
      const r = await runCase(f.args(at, out));
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/^sae: model '.*': blocks\.0\.hook_resid_post is NaN at context 0, token 0 .*no store is written/);
      expect(await judge(r, out, f.output)).toBeUndefined();
      expect(await filesUnder(out)).toEqual([]);
    },
    120_000,
  );

  it('a Hugging Face config.json with n_layer 2^31 is refused in one line (the per-layer tables and hook names ran the heap out: SIGABRT)', async () => {
    const f = FORMATS.find((x) => x.name === 'HF config.json')!;
    const at = join(dir, 'layers');
    const out = join(at, 'out');
    await mkdir(out, { recursive: true });
    await f.fixture(at);
    const cfg = JSON.parse(await readFile(join(at, f.target), 'utf8')) as Record<string, unknown>;
    await writeFile(join(at, f.target), JSON.stringify({ ...cfg, n_layer: 2 ** 31 }));
    const r = await runCase(f.args(at, out));
    expect(await judge(r, out, f.output)).toBeUndefined();
    expect(r.stderr).toMatch(/config\.json: 'n_layer' is 2147483648, more layers than any model we know/);
  }, 120_000);

  it("an ONNX graph without its IR version (byte 0 changed) is refused in one line naming the file (onnxruntime's session error was an internal error)", async () => {
    const f = FORMATS.find((x) => x.name === 'ONNX graph (external data)')!;
    const at = join(dir, 'ir');
    const out = join(at, 'out');
    await mkdir(out, { recursive: true });
    await f.fixture(at);
    const b = new Uint8Array(await readFile(join(at, f.target)));
    b[0] = 40; // the ir_version field's tag becomes another varint field
    await writeFile(join(at, f.target), b);
    const r = await runCase(f.args(at, out));
    expect(await judge(r, out, f.output)).toBeUndefined();
    expect(r.stderr).toMatch(/model\.onnx: onnxruntime cannot load the graph \(Missing model IR version\.\)\n$/);
  }, 120_000);
});

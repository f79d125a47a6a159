/**
 * In-process fuzzing of readers that no `sae` command reaches yet on main: the external SAE layouts
 * (Gemma Scope params.npz, sparsify cfg.json + sae.safetensors, Llama Scope hyperparams.json +
 * checkpoints/final.safetensors) through loadAnySae, and small GGUF files through GgufFile.open and
 * read of every tensor. Each case mutates the real file as its producer writes it (fixtures in
 * test/fixtures/sae-formats and test/fixtures/gguf) and asserts: the reader returns, or it throws a
 * UserError whose message is one line starting with the path it was given; no other exception
 * type; within a time bound. Seeded; FUZZ_SECONDS / FUZZ_CASES / FUZZ_SEED as in cli-fuzz.test.ts.
 */
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { loadAnySae } from '../../src/formats/index.js';
import { GgufFile } from '../../src/io/gguf.js';
import { applyMutation, byteMutation, jsonMutation, type Mutation } from './mutate.js';
import { checkOptions, fuzzBudget, Tally } from './tally.js';

const BUDGET = fuzzBudget(20, 300);
const { long: LONG, seconds: SECONDS, cases: CASES, seed: SEED } = BUDGET;
/** A reader that takes longer than this on a file of a few KB is a hang. */
const CASE_MS = 10_000;

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');

interface ReaderFormat {
  readonly name: string;
  /** The fixture folder copied for each case (relative to test/fixtures). */
  readonly from: string;
  /** The file mutated, relative to that folder. */
  readonly target: string;
  readonly json: boolean;
  readonly header: (b: Uint8Array) => number;
  /** Reads the case; `path` is its copy of the fixture folder. */
  readonly read: (path: string) => Promise<unknown>;
}

const safetensorsHeader = (b: Uint8Array): number =>
  b.length < 8 ? b.length : Math.min(b.length, 8 + Number(new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true)));
/** A zip's local headers and central directory are spread through it: every byte is structure. */
const whole = (b: Uint8Array): number => b.length;

/** Opens a GGUF file and reads every tensor but those of the type the fixture holds to test its refusal (IQ3_S). */
async function readGguf(path: string): Promise<void> {
  const g = await GgufFile.open(path);
  try {
    for (const t of g.tensors.values()) if (t.type !== 'IQ3_S') await g.read(t.name);
  } finally {
    await g.close();
  }
}

const FORMATS: readonly ReaderFormat[] = [
  { name: 'Gemma Scope params.npz', from: 'sae-formats/gemma-scope', target: 'params.npz', json: false, header: whole, read: (p) => loadAnySae(p) },
  { name: 'sparsify cfg.json', from: 'sae-formats/sparsify-topk/layers.3', target: 'cfg.json', json: true, header: whole, read: (p) => loadAnySae(p) },
  {
    name: 'sparsify sae.safetensors',
    from: 'sae-formats/sparsify-topk/layers.3',
    target: 'sae.safetensors',
    json: false,
    header: safetensorsHeader,
    read: (p) => loadAnySae(p),
  },
  {
    name: 'sparsify bf16 skip',
    from: 'sae-formats/sparsify-skip-multi-topk-bf16/layers.5.mlp',
    target: 'sae.safetensors',
    json: false,
    header: safetensorsHeader,
    read: (p) => loadAnySae(p),
  },
  { name: 'Llama Scope hyperparams', from: 'sae-formats/llama-scope/sae', target: 'hyperparams.json', json: true, header: whole, read: (p) => loadAnySae(p) },
  {
    name: 'Llama Scope weights',
    from: 'sae-formats/llama-scope/sae',
    target: 'checkpoints/final.safetensors',
    json: false,
    header: safetensorsHeader,
    read: (p) => loadAnySae(p),
  },
  {
    name: 'GGUF v3 (GgufFile)',
    from: 'gguf',
    target: 'tiny-v3.gguf',
    json: false,
    header: (b) => Math.min(b.length, 1024),
    read: (p) => readGguf(join(p, 'tiny-v3.gguf')),
  },
  {
    name: 'GGUF v2 (GgufFile)',
    from: 'gguf',
    target: 'tiny-v2.gguf',
    json: false,
    header: (b) => Math.min(b.length, 1024),
    read: (p) => readGguf(join(p, 'tiny-v2.gguf')),
  },
];

/** What is wrong with how a read ended, or undefined when it returned or refused cleanly. */
export function judgeRead(err: unknown, path: string): string | undefined {
  if (err === undefined) return undefined;
  if (!(err instanceof UserError)) return `threw ${err instanceof Error ? `${err.name}: ${err.message}` : JSON.stringify(err)}`.slice(0, 400);
  if (err.message.includes('\n')) return `a message of several lines: ${err.message.slice(0, 400)}`;
  if (!err.message.startsWith(path)) return `a message that does not start with the path: ${err.message.slice(0, 400)}`;
  return undefined;
}

/** Runs read(path) under the time bound: undefined when it returned, else what it threw. */
async function attempt(read: () => Promise<unknown>): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`hung: no answer after ${CASE_MS} ms`)), CASE_MS);
  });
  try {
    await Promise.race([read(), hang]);
    return undefined;
  } catch (err) {
    return err;
  } finally {
    clearTimeout(timer);
  }
}

let root = '';
const valid = new Map<string, Uint8Array>();

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'sae-reader-fuzz-'));
  for (const f of FORMATS) valid.set(f.name, new Uint8Array(await readFile(join(FIXTURES, f.from, f.target))));
});
/** The case in flight: the time limit can interrupt fc.check while one is still copying files. */
let pending: Promise<unknown> = Promise.resolve();
afterAll(async () => {
  await pending.catch(() => undefined);
  await rm(root, { recursive: true, force: true, maxRetries: 5 });
});

describe('fuzz: mutated external SAE layouts and GGUF files, read in-process', () => {
  it('reads every valid fixture', async () => {
    for (const f of FORMATS) expect(`${f.name}: ${judgeRead(await attempt(() => f.read(join(FIXTURES, f.from))), '') ?? 'ok'}`).toBe(`${f.name}: ok`);
  });

  it(
    `every case returns or throws one clear UserError (seed ${SEED}, ${LONG ? `${SECONDS} s` : `${CASES} cases`})`,
    async () => {
      const tally = new Tally(
        FORMATS.map((f) => f.name),
        BUDGET.collect,
      );
      let n = 0;
      const caseArb = fc.nat({ max: FORMATS.length - 1 }).chain((k) => {
        const f = FORMATS[k]!;
        const bytes = valid.get(f.name)!;
        const m: fc.Arbitrary<Mutation> = f.json ? jsonMutation(bytes.length) : byteMutation(bytes.length, f.header(bytes));
        return fc.tuple(fc.constant(f), m);
      });
      const property = fc.asyncProperty(caseArb, ([f, m]) => (pending = runOne(f, m)));
      const runOne = async (f: ReaderFormat, m: Mutation): Promise<boolean> => {
        let mutated: Uint8Array;
        try {
          mutated = applyMutation(valid.get(f.name)!, m);
        } catch {
          return true; // a structural mutation of a document that is no longer JSON
        }
        const dir = join(root, String(n++));
        await mkdir(dir);
        await cp(join(FIXTURES, f.from), dir, { recursive: true });
        await writeFile(join(dir, f.target), mutated);
        const err = await attempt(() => f.read(dir));
        await rm(dir, { recursive: true, force: true });
        return tally.record(f.name, judgeRead(err, dir), err === undefined, m);
      };
      const result = await fc.check(property, checkOptions(BUDGET));
      console.log(`reader fuzz (seed ${SEED}): ${tally.total} cases\n${tally.table(6)}`);
      expect(tally.findings).toEqual([]);
      expect(result.failed).toBe(false);
      expect(tally.total).toBeGreaterThan(0);
    },
    (SECONDS + 60) * 1000,
  );
});

/**
 * The fuzzing suite: mutated files of every format `sae` reads (formats.ts), each run through the
 * real command (runner.ts) under a timeout and a memory cap. Seeded and bounded in time:
 *   npm test      a small budget (FUZZ_CASES cases, default 24, within FUZZ_SECONDS, default 45)
 *   npm run fuzz  FUZZ_SECONDS (default 600) of cases; FUZZ_SEED picks the sequence (default 12)
 * Prints the counts per format; a finding fails the test with the case and the seed to replay it.
 */
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FORMATS, type FuzzFormat, targetBytes } from './formats.js';
import { applyMutation, byteMutation, jsonMutation, type Mutation } from './mutate.js';
import { judge, runCase } from './runner.js';
import { checkOptions, fuzzBudget, Tally } from './tally.js';

const BUDGET = fuzzBudget(45, 24);
const { long: LONG, seconds: SECONDS, cases: CASES, seed: SEED } = BUDGET;

let root = '';
const fixtures = new Map<string, { dir: string; bytes: Uint8Array }>();

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'sae-fuzz-'));
  for (const f of FORMATS) {
    const dir = join(root, 'fixtures', String(fixtures.size));
    await mkdir(dir, { recursive: true });
    await f.fixture(dir);
    fixtures.set(f.name, { dir, bytes: await targetBytes(f, dir) });
  }
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true, maxRetries: 5 });
});

function mutationOf(f: FuzzFormat, bytes: Uint8Array): fc.Arbitrary<Mutation> {
  return f.json ? jsonMutation(bytes.length) : byteMutation(bytes.length, f.header(bytes));
}

describe('fuzz: mutated files through the sae command', () => {
  it('accepts every valid fixture (so that refusals mean something)', async () => {
    for (const f of FORMATS) {
      const { dir } = fixtures.get(f.name)!;
      const out = join(root, 'valid', String(FORMATS.indexOf(f)));
      await mkdir(out, { recursive: true });
      const r = await runCase(f.args(dir, out));
      expect(`${f.name}: exit ${r.code} ${r.stderr}`).toBe(`${f.name}: exit 0 `);
      expect(`${f.name}: ${(await f.output?.(out)) ?? 'ok'}`).toBe(`${f.name}: ok`);
    }
  });

  it(
    `every case ends in a clean acceptance or one clear refusal (seed ${SEED}, ${LONG ? `${SECONDS} s` : `${CASES} cases`})`,
    async () => {
      const tally = new Tally(
        FORMATS.map((f) => f.name),
        BUDGET.collect,
      );
      let n = 0;
      const caseArb = fc.nat({ max: FORMATS.length - 1 }).chain((k) => {
        const f = FORMATS[k]!;
        return fc.tuple(fc.constant(f), mutationOf(f, fixtures.get(f.name)!.bytes));
      });
      const property = fc.asyncProperty(caseArb, async ([f, m]) => {
        const fixture = fixtures.get(f.name)!;
        const dir = join(root, 'cases', String(n++));
        const out = join(dir, 'out');
        await cp(fixture.dir, dir, { recursive: true });
        await mkdir(out);
        let mutated: Uint8Array;
        try {
          mutated = applyMutation(fixture.bytes, m);
        } catch {
          return true; // a structural mutation of a document that a byte mutation broke: nothing to run
        }
        await writeFile(join(dir, f.target), mutated);
        const r = await runCase(f.args(dir, out));
        const wrong = await judge(r, out, f.output);
        await rm(dir, { recursive: true, force: true });
        return tally.record(f.name, wrong, r.code === 0, m);
      });
      const result = await fc.check(property, checkOptions(BUDGET));
      console.log(`fuzz (seed ${SEED}): ${tally.total} cases in ${LONG ? `a ${SECONDS} s budget` : 'the npm test budget'}\n${tally.table(5)}`);
      expect(tally.findings).toEqual([]);
      expect(result.failed).toBe(false);
      expect(tally.total).toBeGreaterThan(0);
    },
    (SECONDS + 180) * 1000,
  );
});

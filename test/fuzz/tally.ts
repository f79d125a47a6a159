/**
 * What the fuzz suites share: the budget read from the environment (FUZZ_SECONDS, FUZZ_CASES,
 * FUZZ_SEED, FUZZ_COLLECT), fast-check's run options for it, and the tally of a run (cases,
 * clean acceptances, clean refusals and findings per format, each finding with the mutation that
 * replays it).
 */
import fc from 'fast-check';
import type { Mutation } from './mutate.js';

/** A positive number from env FUZZ_<name>, else the fallback. */
function env(name: string, fallback: number): number {
  const v = Number(process.env[`FUZZ_${name}`]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

export interface Budget {
  /** Whether FUZZ_SECONDS was given (npm run fuzz), rather than the small npm test budget. */
  readonly long: boolean;
  readonly seconds: number;
  readonly cases: number;
  readonly seed: number;
  /** FUZZ_COLLECT=1 keeps going past a finding to list every finding of the budget. */
  readonly collect: boolean;
}

/** The budget: `seconds` and `cases` are the npm test defaults of the suite. */
export function fuzzBudget(seconds: number, cases: number): Budget {
  const long = process.env['FUZZ_SECONDS'] !== undefined;
  return {
    long,
    seconds: env('SECONDS', seconds),
    cases: long ? env('CASES', 1_000_000) : env('CASES', cases),
    seed: env('SEED', 12),
    collect: process.env['FUZZ_COLLECT'] !== undefined,
  };
}

/** fast-check's options for the budget: seeded, stopped at the time limit (not a failure). */
export function checkOptions(b: Budget): fc.Parameters<unknown> {
  return { seed: b.seed, numRuns: b.cases, plugins: [fc.interruptAfterTimeLimit(b.seconds * 1000, { failOnInterrupt: false })], endOnFailure: true };
}

interface Counts {
  cases: number;
  accepted: number;
  refused: number;
  findings: number;
}

export class Tally {
  private readonly counts: Map<string, Counts>;
  readonly findings: string[] = [];

  constructor(
    names: readonly string[],
    private readonly collect: boolean,
  ) {
    this.counts = new Map(names.map((name) => [name, { cases: 0, accepted: 0, refused: 0, findings: 0 }]));
  }

  /** Counts one case of format `name` (`wrong`: what is wrong with how it ended, if anything); returns the property's verdict. */
  record(name: string, wrong: string | undefined, accepted: boolean, m: Mutation): boolean {
    const c = this.counts.get(name)!;
    c.cases++;
    if (wrong === undefined) {
      if (accepted) c.accepted++;
      else c.refused++;
      return true;
    }
    c.findings++;
    this.findings.push(`${name}: ${wrong} (mutation ${JSON.stringify(m, (_, v: unknown) => (v instanceof Uint8Array ? Array.from(v) : v))})`);
    return this.collect;
  }

  get total(): number {
    return [...this.counts.values()].reduce((s, c) => s + c.cases, 0);
  }

  /** One line per format. */
  table(width: number): string {
    return [...this.counts]
      .map(
        ([name, c]) =>
          `  ${name.padEnd(28)} ${String(c.cases).padStart(width)} cases: ${c.accepted} accepted, ${c.refused} refused cleanly, ${c.findings} findings`,
      )
      .join('\n');
  }
}

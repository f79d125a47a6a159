#!/usr/bin/env node
/**
 * The `sae` command line: dispatches to one file per command. A UserError is printed as one line
 * (no stack trace) with exit code 2; anything else is a bug, printed with a short note (the stack
 * with SAE_DEBUG=1) and exit code 1.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.js';
import { type CliIO, type Command, print } from './command.js';
import { anomalyDemoCommand } from './commands/anomaly-demo.js';
import { benchRecoveryCommand } from './commands/bench-recovery.js';
import { calibrateCommand } from './commands/calibrate.js';
import { inspectCommand } from './commands/inspect.js';
import { conformance } from './commands/conformance.js';
import { convertCommand } from './commands/convert.js';
import { dashboardCommand } from './commands/dashboard.js';
import { demoCommand } from './commands/demo.js';
import { encodeCommand } from './commands/encode.js';
import { evalCommand } from './commands/eval.js';
import { fetchCommand } from './commands/fetch.js';
import { filtersCommand } from './commands/filters.js';
import { generateCommand } from './commands/generate.js';
import { harvestCommand } from './commands/harvest.js';
import { scoreCommand } from './commands/score.js';
import { steerCommand } from './commands/steer.js';
import { trainCommand } from './commands/train.js';

export const COMMANDS: readonly Command[] = [
  trainCommand,
  encodeCommand,
  evalCommand,
  dashboardCommand,
  filtersCommand,
  harvestCommand,
  steerCommand,
  generateCommand,
  fetchCommand,
  demoCommand,
  conformance,
  benchRecoveryCommand,
  convertCommand,
  scoreCommand,
  calibrateCommand,
  anomalyDemoCommand,
  inspectCommand,
];

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  return [
    'usage: sae <command> [options]   (sae <command> --help for its options)',
    '',
    'Train, evaluate and interpret sparse autoencoders.',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary.split('. ')[0]!.replace(/\.$/, '')}`),
  ].join('\n');
}

export async function main(argv: readonly string[], io: CliIO = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    print(io.stdout, usage());
    return name ? 0 : 2;
  }
  const command = COMMANDS.find((c) => c.name === name);
  try {
    if (!command) throw new UserError(`unknown command '${name}': choose one of ${COMMANDS.map((c) => c.name).join(', ')}`);
    return await command.run(rest, io);
  } catch (e) {
    if (e instanceof UserError) {
      print(io.stderr, `sae: ${e.message.replace(/\s*\n\s*/g, ' ')}`);
      return 2;
    }
    const err = e instanceof Error ? e : new Error(String(e));
    print(io.stderr, `sae: internal error: ${err.message} (this is a bug; run with SAE_DEBUG=1 for the stack trace)`);
    if (process.env['SAE_DEBUG']) print(io.stderr, err.stack ?? '');
    return 1;
  }
}

function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  process.exitCode = await main(process.argv.slice(2));
}

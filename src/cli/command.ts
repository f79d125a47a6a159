/** What a CLI command is: its options, its help and a handler that returns an exit code. */
import { formatHelp, parseArgs, type OptionSpec, type ParsedArgs } from './args.js';

import type { OutStream } from '../train/progress.js';

export interface CliIO {
  /** Results (tables, paths). */
  readonly stdout: OutStream;
  /** Progress and warnings. */
  readonly stderr: OutStream;
}

export interface Command {
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  readonly options: readonly OptionSpec[];
  run(argv: readonly string[], io: CliIO): Promise<number>;
}

export function print(stream: NodeJS.WritableStream, text: string): void {
  stream.write(text.endsWith('\n') ? text : `${text}\n`);
}

/**
 * argv parsed against the command's options; undefined when --help was given, after printing the
 * command's help. `as` names the command in option errors (default: its name).
 */
export function commandArgs(cmd: Command, argv: readonly string[], io: CliIO, as = cmd.name): ParsedArgs | undefined {
  const args = parseArgs(argv, cmd.options, as);
  if (!args.help) return args;
  print(io.stdout, formatHelp(cmd.usage, cmd.summary, cmd.options));
  return undefined;
}

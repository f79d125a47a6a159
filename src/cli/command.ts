/** What a CLI command is: its options, its help and a handler that returns an exit code. */
import type { OptionSpec } from './args.js';

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

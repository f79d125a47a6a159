/** What a CLI command is: its declared arguments (see args.ts), its help and a handler that returns an exit code. */
import { type ArgsSpec, formatHelp, parseArgv, type Parsed } from './args.js';

import type { OutStream } from '../train/progress.js';

export interface CliIO {
  /** Results (tables, paths). */
  readonly stdout: OutStream;
  /** Progress and warnings. */
  readonly stderr: OutStream;
}

export interface Command extends ArgsSpec {
  /** Parses argv (printing --help and returning 0 when asked) and runs. `as` names the command in errors. */
  run(argv: readonly string[], io: CliIO, as?: string): Promise<number>;
}

export function print(stream: NodeJS.WritableStream, text: string): void {
  stream.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** A command from its schema and a handler: argv is parsed against the schema before `run` sees it. */
export function defineCommand<const S extends ArgsSpec>(spec: S, run: (args: Parsed<S>, io: CliIO) => Promise<number>): Command & S {
  return {
    ...spec,
    async run(argv: readonly string[], io: CliIO, as?: string) {
      const args = parseArgv(spec, argv, as);
      if (!args) {
        print(io.stdout, formatHelp(spec));
        return 0;
      }
      return run(args, io);
    },
  };
}

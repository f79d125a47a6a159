/** sae conformance DIR: checks the engine against float64 reference vectors. */
import { Engine, kernelsChoice } from '../../engine/index.js';
import { UserError } from '../../errors.js';
import { formatConformance, runConformance } from '../../conformance.js';
import type { OptionSpec } from '../args.js';
import { commandArgs, type Command, print } from '../command.js';

const options: OptionSpec[] = [
  { flag: 'kernels', key: 'kernels', kind: 'string', help: 'auto | native | reference (default auto)' },
  { flag: 'threads', key: 'threads', kind: 'integer', help: 'threads (default: every core)' },
];

export const conformance: Command = {
  name: 'conformance',
  summary: 'Runs every reference vector file in DIR that the implementation knows (forward outputs, loss terms, gradients, Adam) and fails if any relative error exceeds 1e-4.',
  usage: 'sae conformance DIR [options]',
  options,
  async run(argv, io) {
    const args = commandArgs(this, argv, io);
    if (!args) return 0;
    const [dir, ...rest] = args.positionals;
    if (!dir || rest.length) throw new UserError('usage: sae conformance DIR (one folder of reference vector files)');
    const kernels = args.values['kernels'];
    const threads = args.values['threads'];
    const engine = new Engine({
      ...(typeof kernels === 'string' ? { kernels: kernelsChoice(kernels) } : {}),
      ...(typeof threads === 'number' ? { threads } : {}),
      warn: (m) => print(io.stderr, m),
    });
    const report = await runConformance(engine, dir);
    print(io.stdout, `kernels: ${engine.kernels.name}\n${formatConformance(report)}`);
    await engine.release();
    return report.ok ? 0 : 1;
  },
};

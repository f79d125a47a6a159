/** sae conformance DIR: checks the engine against float64 reference vectors. */
import { formatConformance, runConformance } from '../../conformance.js';
import { defineCommand, print } from '../command.js';
import { ENGINE_OPTIONS, engineOf } from './inference-data.js';

export const conformance = defineCommand(
  {
    name: 'conformance',
    summary:
      'Runs every reference vector file in DIR that the implementation knows (forward outputs, loss terms, gradients, Adam) and fails if any relative error exceeds 1e-4.',
    usage: 'sae conformance DIR [options]',
    positionals: ['DIR'],
    options: ENGINE_OPTIONS,
  },
  async (args, io) => {
    const engine = engineOf(args, io);
    const report = await runConformance(engine, args.positionals[0]);
    print(io.stdout, `kernels: ${engine.kernels.name}\n${formatConformance(report)}`);
    await engine.release();
    return report.ok ? 0 : 1;
  },
);

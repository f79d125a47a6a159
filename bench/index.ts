/**
 * npm run bench: prints figures and ratios against baselines run in the same script, and as its
 * last line one JSON object with every figure, to compare across commits.
 *   npm run bench [-- NAME...]   (names: standard, topk, kernels, store, inspect, hooked, onnx-lm, harvest)
 */
import { benchHarvest } from './harvest.js';
import { benchHooked } from './hooked-transformer.js';
import { benchInspect } from './inspect.js';
import { benchKernels } from './kernels.js';
import { benchOnnxLm } from './onnx-lm.js';
import { benchStandardStep } from './standard-step.js';
import { benchStore } from './store.js';
import { benchTopKStep } from './topk-step.js';

const BENCHES: Record<string, (log: (l: string) => void) => Promise<object>> = {
  standard: benchStandardStep,
  topk: benchTopKStep,
  kernels: async () => ({ bench: 'kernels', ...(await benchKernels()) }),
  store: benchStore,
  inspect: benchInspect,
  hooked: benchHooked,
  'onnx-lm': benchOnnxLm,
  harvest: benchHarvest,
};

const wanted = process.argv.slice(2);
for (const name of wanted) if (!(name in BENCHES)) throw new Error(`unknown bench ${name}: choose from ${Object.keys(BENCHES).join(', ')}`);
const results: object[] = [];
for (const [name, run] of Object.entries(BENCHES)) {
  if (wanted.length && !wanted.includes(name)) continue;
  const r = await run((l) => console.log(l));
  console.log(JSON.stringify(r));
  results.push(r);
}
console.log(JSON.stringify({ bench: 'all', results }));

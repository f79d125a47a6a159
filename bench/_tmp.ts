import { loadNativeKernels } from '/work/main/src/engine/native.js';
const n = 768*16384;
const p = new Float32Array(n).map(() => Math.random()), g = new Float32Array(n).map(() => Math.random()-0.5), m = new Float32Array(n), v = new Float32Array(n);
for (const t of [1, 2, 3, 4]) {
  const k = loadNativeKernels(t); if (k instanceof Error) throw k;
  const ms: number[] = [];
  for (let i = 1; i < 12; i++) { const t0 = performance.now(); k.adam(p, g, m, v, {lr:1e-3,beta1:0.9,beta2:0.999,eps:1e-8}, i); ms.push(performance.now()-t0); }
  ms.sort((a,b)=>a-b); console.log(t, 'threads adam', ms[5]!.toFixed(2), 'ms');
}

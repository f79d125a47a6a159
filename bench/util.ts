/** Helpers shared by the benchmarks: timing, peak memory and the PyTorch peer. */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Peak resident memory of this process so far, in MB. */
export function peakRssMb(): number {
  return process.resourceUsage().maxRSS / 1024;
}

const PYTHON = '/usr/bin/python3';

/** Whether Debian's python3-torch is there to serve as the peer. */
export function torchAvailable(): boolean {
  return spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
}

/** Runs bench/torch_step.py with `args`; its JSON result, or null without PyTorch. */
export function torchStep(args: readonly (string | number)[]): Record<string, number> | null {
  if (!torchAvailable()) return null;
  const script = fileURLToPath(new URL('./torch_step.py', import.meta.url));
  const r = spawnSync(PYTHON, [script, ...args.map(String)], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '2' } });
  if (r.status !== 0) throw new Error(`PyTorch peer failed: ${r.stderr.trim().split('\n').pop()}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, number>;
}

export function randomArray(n: number, scale: number, seed = 1): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = ((s / 2 ** 32) * 2 - 1) * scale;
  }
  return a;
}

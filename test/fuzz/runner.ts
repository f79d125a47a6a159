/**
 * Runs one fuzz case through the real `sae` command in a child process, under a wall-clock timeout
 * and a memory cap (the child's resident memory polled from /proc, the V8 heap capped by a flag),
 * and judges it: a refusal must be one clear line on stderr ("sae: ..."), a non-zero exit, no
 * stack trace and no file left in the output folder; an acceptance exits 0.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface Limits {
  readonly timeoutMs: number;
  /** Resident memory above which the child is killed. */
  readonly memoryBytes: number;
}

export const DEFAULT_LIMITS: Limits = { timeoutMs: 60_000, memoryBytes: 1536 * 2 ** 20 };

/** The newest modification time of the files under dir. */
function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/**
 * The command to run `sae`: the built dist/cli/main.js when it is newer than every source file
 * (npm test builds first), else the TypeScript sources through tsx (slower to start).
 */
export function saeCommand(): string[] {
  const dist = join(ROOT, 'dist', 'cli', 'main.js');
  if (existsSync(dist) && statSync(dist).mtimeMs >= newest(join(ROOT, 'src'))) return [dist];
  return ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts')];
}

export interface CaseResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
  readonly timedOut: boolean;
  readonly peakBytes: number;
  readonly overMemory: boolean;
}

/** Resident set size of a process, from /proc (0 where unavailable). */
function rss(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

export function runCase(args: readonly string[], limits: Limits = DEFAULT_LIMITS): Promise<CaseResult> {
  const heapMb = Math.floor(limits.memoryBytes / 2 ** 20 / 2);
  const child = spawn(process.execPath, [`--max-old-space-size=${heapMb}`, ...saeCommand(), ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    if (stderr.length < 100_000) stderr += d.toString();
  });
  let timedOut = false;
  let overMemory = false;
  let peakBytes = 0;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, limits.timeoutMs);
  const poll = setInterval(() => {
    if (child.pid === undefined) return;
    peakBytes = Math.max(peakBytes, rss(child.pid));
    if (peakBytes > limits.memoryBytes) {
      overMemory = true;
      child.kill('SIGKILL');
    }
  }, 50);
  return new Promise((resolve) =>
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearInterval(poll);
      resolve({ code, signal, stderr, timedOut, peakBytes, overMemory });
    }),
  );
}

/** Files (not folders) under dir, recursively, relative to it. */
export async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  return entries.filter((e) => !e.isDirectory()).map((e) => join(e.parentPath, e.name).slice(dir.length + 1));
}

/** What is wrong with a case's outcome, or undefined when it is a clean acceptance (its output checked by `output`) or a clean refusal. */
export async function judge(r: CaseResult, out: string, output?: (out: string) => Promise<string | undefined>): Promise<string | undefined> {
  if (r.timedOut) return 'hung: killed after the timeout';
  if (r.overMemory) return `used ${(r.peakBytes / 2 ** 20).toFixed(0)} MB, over the memory cap`;
  if (r.signal !== null) return `ended by ${r.signal}`;
  if (r.code === 0) return output?.(out);
  const lines = r.stderr.trimEnd().split('\n');
  if (/^\s+at .+:\d+:\d+\)?$/m.test(r.stderr)) return `a stack trace on stderr: ${r.stderr.slice(0, 400)}`;
  if (lines.length !== 1) return `${lines.length} lines on stderr: ${r.stderr.slice(0, 400)}`;
  if (!lines[0]!.startsWith('sae: ') || lines[0]!.length < 12) return `not a clear error line: ${lines[0]!.slice(0, 200)}`;
  const left = await filesUnder(out);
  if (left.length > 0) return `exit ${r.code} but left ${left.join(', ')} in the output folder`;
  return undefined;
}

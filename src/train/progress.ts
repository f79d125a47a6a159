/**
 * Shows training progress: a bar redrawn in place on a terminal (a line every so often otherwise),
 * and the same figures as JSON lines in a log file.
 */
import { appendFileSync } from 'node:fs';
import { formatDuration, type OutStream } from '../io/terminal.js';

/** The figures of one step that the progress bar and the JSON log show. */
export interface StepStats {
  readonly step: number; // 1-based: steps done
  readonly steps: number;
  readonly inputs: number;
  readonly lr: number;
  readonly coefficient: number;
  readonly losses: Readonly<Record<string, number>>;
  readonly explainedVariance: number;
  readonly l0: number;
  readonly deadFraction: number;
  readonly inputsPerSecond: number;
  readonly elapsedSeconds: number;
}

function compact(x: number): string {
  if (x === 0 || !Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 1e4) return `${(x / 1e3).toFixed(1)}k`;
  if (a >= 100) return x.toFixed(0);
  if (a >= 0.01) return x.toPrecision(3);
  return x.toExponential(2);
}

export function formatStats(s: StepStats, width = 20): string {
  const frac = s.step / s.steps;
  const filled = Math.round(frac * width);
  const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
  const terms = Object.entries(s.losses)
    .filter(([k]) => k !== 'total')
    .map(([k, v]) => `${k} ${compact(v)}`)
    .join(' ');
  const eta = ((s.steps - s.step) * s.elapsedSeconds) / Math.max(1, s.step);
  return (
    `step ${s.step}/${s.steps} ${bar} ${(frac * 100).toFixed(0)}% | loss ${compact(s.losses['total'] ?? NaN)} (${terms}) | ` +
    `EV ${s.explainedVariance.toFixed(3)} | L0 ${s.l0.toFixed(1)} | dead ${(s.deadFraction * 100).toFixed(1)}% | ` +
    `${compact(s.inputsPerSecond)} in/s | ETA ${formatDuration(eta)}`
  );
}

export function statsRecord(s: StepStats): Record<string, unknown> {
  return {
    step: s.step,
    inputs: s.inputs,
    lr: s.lr,
    coefficient: s.coefficient,
    loss: s.losses,
    explained_variance: s.explainedVariance,
    l0: s.l0,
    dead_fraction: s.deadFraction,
    inputs_per_s: s.inputsPerSecond,
    elapsed_s: s.elapsedSeconds,
  };
}

export interface ProgressOptions {
  /** Where the bar goes (default stderr). */
  readonly stream?: OutStream | undefined;
  /** JSONL log file (appended to). */
  readonly logFile?: string | undefined;
  /** Log (and, off a terminal, print) every this many steps. */
  readonly every: number;
  readonly quiet?: boolean | undefined;
}

export class Progress {
  private lastDraw = 0;
  private drawn = false;
  private readonly stream: OutStream;

  constructor(private readonly opts: ProgressOptions) {
    this.stream = opts.stream ?? process.stderr;
  }

  update(s: StepStats): void {
    const due = s.step % this.opts.every === 0 || s.step === s.steps;
    if (due && this.opts.logFile) appendFileSync(this.opts.logFile, `${JSON.stringify(statsRecord(s))}\n`);
    if (this.opts.quiet) return;
    if (this.stream.isTTY) {
      const now = Date.now();
      if (now - this.lastDraw < 100 && s.step !== s.steps) return;
      this.lastDraw = now;
      const line = formatStats(s).slice(0, Math.max(40, (this.stream.columns ?? 160) - 1));
      this.stream.write(`\r\x1b[2K${line}`);
      this.drawn = true;
    } else if (due) {
      this.stream.write(`${formatStats(s)}\n`);
    }
  }

  /** Ends the bar's line (call before printing anything else). */
  finish(): void {
    if (this.drawn) this.stream.write('\n');
    this.drawn = false;
  }

  message(text: string): void {
    this.finish();
    if (!this.opts.quiet) this.stream.write(`${text}\n`);
  }
}

/**
 * Writing for people: the output stream that the CLI, training and harvesting print to (a terminal
 * or a pipe), and durations as people read them.
 */

/** stdout/stderr or a test's stand-in; isTTY and columns tell whether a bar may be redrawn in place. */
export type OutStream = NodeJS.WritableStream & { readonly isTTY?: boolean; readonly columns?: number };

/** 42s, 3m07s, 2h05m; '?' when not finite. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

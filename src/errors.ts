/** Errors caused by the user's input, and the one-line messages they carry. */
import type { z } from 'zod';

/**
 * An error caused by the user's input (a file, a flag, a config): the CLI prints its message as one
 * line, without a stack trace, and exits non-zero. The message names the file or option and what is
 * wrong with it.
 */
export class UserError extends Error {
  override readonly name = 'UserError';
}

/** `${file}: ${problem}`, the shape of every file error. */
export function fileError(file: string, problem: string): UserError {
  return new UserError(`${file}: ${problem}`);
}

/** Formats zod's issues as one line: "where: what; where: what" (each prefixed with `source` if given). */
export function formatIssues(issues: readonly z.core.$ZodIssue[], source: string): string {
  return issues
    .map((i) => {
      const path = i.path.map(String).join('.');
      return `${path ? `${path}: ` : ''}${i.message}`;
    })
    .map((m) => `${source ? `${source}: ` : ''}${m}`)
    .join('; ');
}

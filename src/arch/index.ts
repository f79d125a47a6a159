/** The table of architectures, the one place that lists them: adding one is one file and one line here. */
import { UserError } from '../errors.js';
import { batchtopk } from './batchtopk.js';
import { gated } from './gated.js';
import { jumprelu } from './jumprelu.js';
import { kl } from './kl.js';
import { matryoshka } from './matryoshka.js';
import { standard } from './standard.js';
import { topk } from './topk.js';
import type { ArchitectureDef } from './types.js';

/** Keyed by name (test/arch-table.test.ts checks that each entry's `name` is its key). */
export const TABLE = { standard, kl, topk, batchtopk, matryoshka, jumprelu, gated };

/** The architectures: the keys of the table. */
export type Architecture = keyof typeof TABLE;

export const ARCHITECTURES = Object.keys(TABLE) as Architecture[];

export function isArchitecture(name: string): name is Architecture {
  return Object.hasOwn(TABLE, name);
}

/**
 * The definition of an architecture, its hyper-parameter type erased: the hyper-parameters passed
 * to its methods always come from its own `hyper` schema or `fromCfg`, so the erasure is sound.
 */
export function architecture(name: string): ArchitectureDef<unknown> {
  if (!isArchitecture(name)) throw new UserError(`unknown architecture '${name}': choose one of ${ARCHITECTURES.join(', ')}`);
  return TABLE[name] as ArchitectureDef<unknown>;
}

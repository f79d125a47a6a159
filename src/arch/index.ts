/** The table of architectures, the one place that lists them: adding one is one file and one line here. */
import type { z } from 'zod';
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

/** The hyper-parameters of architecture A: what its `hyper` schema outputs (TopKHyper for 'topk'). */
export type HyperOf<A extends Architecture> = z.output<(typeof TABLE)[A]['hyper']>;

/**
 * An architecture's name with its hyper-parameters, one member per architecture (derived from the
 * table): narrowing on `architecture` narrows `hyper`.
 */
export type ArchitectureHyper<A extends Architecture = Architecture> = {
  [K in A]: { readonly architecture: K; readonly hyper: HyperOf<K> };
}[A];

/** The table with each entry's hyper-parameter type kept, for code generic in the architecture. */
const DEFS: { readonly [A in Architecture]: ArchitectureDef<HyperOf<A>> } = TABLE;

/**
 * Reads hyper-parameters of architecture `name` with its schema (defaults filled in); throws zod's
 * error when they do not fit it.
 */
export function parseHyper<A extends Architecture>(name: A, hyper: unknown): HyperOf<A> {
  return DEFS[name].hyper.parse(hyper);
}

/** The names of the architectures, in the order of the table. */
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
  return TABLE[name];
}

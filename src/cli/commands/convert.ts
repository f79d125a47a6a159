/**
 * sae convert IN OUT: writes any SAE we can load (SAELens v3 to v6, Gemma Scope params.npz, sparsify
 * hookpoint folders, Llama Scope) in SAELens's layout (or a topk one in sparsify's), and says what it
 * folded into the weights on the way. OUT is written as a whole: the files go to a temporary sibling
 * folder renamed to OUT at the end, so a failure leaves nothing behind.
 */
import { randomBytes } from 'node:crypto';
import { readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileError } from '../../errors.js';
import { convertToSaeLens, convertToSparsify, SAE_FORMATS } from '../../formats/index.js';
import { describeFsError } from '../../io/atomic.js';
import { defineCommand, print } from '../command.js';

/** Input layouts the user may name (openai is refused by the loader with its reason). */
const FORMAT_CHOICES = SAE_FORMATS.filter((f) => f !== 'openai');

/** OUT must be absent or an empty folder; a non-empty one is refused rather than mixed with new files. */
async function checkOut(out: string): Promise<'absent' | 'empty'> {
  const info = await stat(out).catch(() => undefined);
  if (!info) return 'absent';
  if (!info.isDirectory()) throw fileError(out, 'exists and is not a folder (convert writes a folder)');
  if ((await readdir(out)).length) throw fileError(out, 'exists and is not empty: name a new folder (nothing was written)');
  return 'empty';
}

/** Runs `write(temp)` into a fresh sibling of `out` and renames it to `out`; on failure removes it. */
async function writeFolderAtomic(out: string, write: (dir: string) => Promise<void>): Promise<void> {
  const state = await checkOut(out);
  const temp = join(dirname(out), `.${basename(out)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  try {
    await write(temp);
    if (state === 'empty')
      await rmdir(out).catch((e: unknown) => {
        throw fileError(out, `cannot replace the empty folder (${describeFsError(e)})`);
      });
    await rename(temp, out).catch((e: unknown) => {
      throw fileError(out, `cannot write (${describeFsError(e)})`);
    });
  } catch (err) {
    await rm(temp, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
}

export const convertCommand = defineCommand(
  {
    name: 'convert',
    summary: "Writes an SAE of any layout we load (SAELens, Gemma Scope, sparsify, Llama Scope) in SAELens's layout, or a topk one in sparsify's.",
    usage: 'sae convert IN OUT [--format saelens|gemma-scope|sparsify|llama-scope] [--to saelens|sparsify]',
    positionals: ['IN', 'OUT'],
    options: {
      format: { kind: 'string', help: 'layout of IN (default: found from its files)', choices: FORMAT_CHOICES },
      to: { kind: 'string', help: 'layout to write: saelens (default) or sparsify (topk SAEs only)', choices: ['saelens', 'sparsify'], default: 'saelens' },
    },
  },
  async ({ positionals: [input, out], format, to }, io) => {
    const options = format !== undefined ? { format } : {};
    let folded: string[] = [];
    await writeFolderAtomic(out, async (dir) => {
      ({ folded } = to === 'sparsify' ? await convertToSparsify(input, dir, options) : await convertToSaeLens(input, dir, options));
    });
    print(io.stdout, `wrote ${out} (${to === 'sparsify' ? 'sparsify' : 'SAELens'} layout)`);
    print(io.stdout, folded.length ? `folded: ${folded.join('; ')}` : 'folded: nothing (the weights are as stored)');
    return 0;
  },
);

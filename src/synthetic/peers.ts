/**
 * The peers of the recovery benchmark: reference recipes (dictionary_learning's BatchTopK,
 * Matryoshka, JumpReLU and Gated trainers, SAELens's JumpReLU), written from their sources in
 * tools/peers_recovery.py and run there with python3 + torch on the benchmark's data: the true
 * features and the held-out rows are written to a temporary folder, the peers train on fresh rows
 * of the same distribution and are scored on those held-out rows as ours are (MMCS, recovered, L0,
 * FVU, dead fraction). The script is run as a child process; nothing leaves the machine.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { matryoshka, prefixWidths } from '../arch/matryoshka.js';
import { UserError } from '../errors.js';
import { isRecord } from '../io/json.js';
import { writeNpy } from '../io/npy.js';
import type { OutStream } from '../io/terminal.js';
import type { SyntheticBatch, SyntheticSpec } from './generator.js';

export const PEERS = ['dl-batchtopk', 'dl-matryoshka', 'dl-jumprelu', 'dl-gated', 'saelens-jumprelu'] as const;
export type Peer = (typeof PEERS)[number];

/** The script, beside src/ and dist/ in a checkout. */
export const PEERS_SCRIPT = fileURLToPath(new URL('../../tools/peers_recovery.py', import.meta.url));

/** How the benchmark scores a trained SAE, ours or a peer's, on the held-out rows. */
export interface RecoveryScore {
  /** The sparsity knob's name and the value used. */
  readonly knob: string;
  readonly value: number;
  readonly mmcs: number;
  readonly recovered: number;
  readonly l0: number;
  readonly fvu: number;
  readonly deadFraction: number;
}

export interface PeerResult extends RecoveryScore {
  readonly architecture: Peer;
  readonly seconds: number;
}

export interface PeerRun {
  readonly peers: readonly Peer[];
  readonly data: SyntheticSpec;
  readonly dSae: number;
  readonly steps: number;
  readonly lr: number;
  readonly targetL0: number;
  readonly searchSteps: number;
  readonly maxProbes: number;
  readonly tolerance: number;
  readonly threshold: number;
  readonly threads: number;
  /** The python with torch (default /usr/bin/python3, or $SAE_PYTHON). */
  readonly python?: string;
}

function peerResults(v: unknown, file: string): PeerResult[] {
  if (!isRecord(v) || !Array.isArray(v['peers'])) throw new UserError(`${file}: the peers script wrote no results`);
  return v['peers'] as PeerResult[];
}

/** Runs the peers on `features` ([n, d]) and scores them on `evalSet`; progress lines go to `stream`. */
export async function runPeers(run: PeerRun, features: Float32Array, evalSet: SyntheticBatch, stream: OutStream | undefined): Promise<PeerResult[]> {
  if (!existsSync(PEERS_SCRIPT)) throw new UserError(`--peers needs ${PEERS_SCRIPT} (a checkout of the repository, not the published package)`);
  const python = run.python ?? process.env['SAE_PYTHON'] ?? '/usr/bin/python3';
  const dir = await mkdtemp(join(tmpdir(), 'sae-peers-'));
  try {
    const { dIn, features: n } = run.data;
    const featuresFile = join(dir, 'features.npy');
    const evalFile = join(dir, 'eval.npy');
    await writeNpy(featuresFile, features, [n, dIn]);
    await writeNpy(evalFile, evalSet.x, [evalSet.rows, dIn]);
    const prefixes = prefixWidths({ dIn, dSae: run.dSae }, matryoshka.hyper.parse({}));
    const cfg = {
      ...run.data,
      dSae: run.dSae,
      steps: run.steps,
      lr: run.lr,
      targetL0: run.targetL0,
      searchSteps: run.searchSteps,
      maxProbes: run.maxProbes,
      tolerance: run.tolerance,
      threshold: run.threshold,
      threads: run.threads,
      peers: run.peers,
      prefixes,
      featuresFile,
      evalFile,
    };
    const cfgFile = join(dir, 'config.json');
    const outFile = join(dir, 'peers.json');
    await writeFile(cfgFile, JSON.stringify(cfg));
    const tail: string[] = [];
    const code = await new Promise<number>((resolve, reject) => {
      const child = spawn(python, [PEERS_SCRIPT, cfgFile, outFile], { stdio: ['ignore', 'ignore', 'pipe'] });
      child.stderr.on('data', (chunk: Buffer) => {
        const text = chunk.toString();
        stream?.write(text);
        tail.push(...text.split('\n').filter((l) => l.trim() !== ''));
        tail.splice(0, Math.max(0, tail.length - 5));
      });
      child.on('error', (e) => reject(new UserError(`--peers: cannot run ${python} (${e.message}); the peers need python3 with torch`)));
      child.on('close', (c) => resolve(c ?? 1));
    });
    if (code !== 0) throw new UserError(`--peers: ${python} ${PEERS_SCRIPT} failed (exit ${code}): ${tail[tail.length - 1] ?? 'no message'}`);
    return peerResults(JSON.parse(await readFile(outFile, 'utf8')), outFile);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

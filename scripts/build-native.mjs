#!/usr/bin/env node
// Builds the native kernels (binding.gyp -> build/Release/sae_kernels.node) with node-gyp, offline.
// The package's `install` script: whatever goes wrong it prints one warning and exits 0, so that
// `npm install` always succeeds and the package runs on the TypeScript kernels instead.
//   node scripts/build-native.mjs            (install: quiet, never fails)
//   node scripts/build-native.mjs --strict   (npm run build:native: full log and exit 1 on failure)
// Env: SAE_SKIP_NATIVE=1 skips the build.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const ADDON = join('build', 'Release', 'sae_kernels.node');
const LOG = join('build', 'build-native.log');
const TAG = 'sparse-autoencoder:';
const GYP_JS = join('node-gyp', 'bin', 'node-gyp.js');

// node-gyp: the one npm runs lifecycle scripts with, else the one bundled with npm beside this node
// (Unix and Windows layouts), else one installed in the project. Null if none is found.
function findNodeGyp() {
  const npmDir = process.env.npm_execpath ? join(dirname(process.env.npm_execpath), '..') : undefined;
  const candidates = [
    process.env.npm_config_node_gyp,
    npmDir && join(npmDir, 'node_modules', GYP_JS),
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', GYP_JS),
    join(dirname(process.execPath), 'node_modules', 'npm', 'node_modules', GYP_JS),
    join(ROOT, 'node_modules', GYP_JS),
  ];
  return candidates.find((p) => p && existsSync(p)) ?? null;
}

// Node's headers: npm passes the user's `nodedir` as npm_config_nodedir; without it (run by hand)
// use the headers installed beside this node, if any, so that node-gyp never downloads them.
function nodedirArgs() {
  if (process.env.npm_config_nodedir) return [];
  const prefix = join(dirname(process.execPath), '..');
  return existsSync(join(prefix, 'include', 'node', 'common.gypi')) ? [`--nodedir=${prefix}`] : [];
}

// Runs node-gyp rebuild; returns null on success, else a one-line reason (the full output goes to LOG).
function build() {
  const gyp = findNodeGyp();
  if (!gyp) return 'node-gyp not found (it comes with npm)';
  const r = spawnSync(process.execPath, [gyp, 'rebuild', ...nodedirArgs()], { cwd: ROOT, encoding: 'utf8' });
  const log = `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`;
  mkdirSync(join(ROOT, 'build'), { recursive: true });
  writeFileSync(join(ROOT, LOG), log);
  if (r.status === 0 && existsSync(join(ROOT, ADDON))) return null;
  if (strict) process.stderr.write(log);
  return summarize(log) ?? `node-gyp exited with ${r.status}`;
}

// The most telling line of a failed build's log: a compiler diagnostic, a missing tool, node-gyp's error.
function summarize(log) {
  const lines = log.split('\n').map((l) => l.replace(/^gyp ERR! (find Python |stack )?/, '').trim());
  const telling = [/: (fatal )?error: /, /You need to install/, /^Error: /, /error|not found/i];
  const line = telling.map((re) => lines.find((l) => re.test(l))).find((l) => l !== undefined);
  const short = line?.replace(/\.$/, '');
  return short && (short.length > 160 ? `${short.slice(0, 157)}...` : short);
}

// Returns the exit code: 0, or 1 for a failed --strict build.
function main() {
  if (process.env.SAE_SKIP_NATIVE === '1') {
    console.log(`${TAG} SAE_SKIP_NATIVE=1, skipped building the native kernels (the TypeScript kernels will be used).`);
    return 0;
  }
  const failure = build();
  if (failure === null) {
    console.log(`${TAG} built the native kernels (${ADDON}).`);
    return 0;
  }
  console.warn(
    `${TAG} warning: could not build the native kernels (${failure}; log: ${LOG}). The package will run on ` +
      `the slower TypeScript kernels. To fix: install g++, make and python3, then run \`npm rebuild sparse-autoencoder\`.`,
  );
  return strict ? 1 : 0;
}

const strict = process.argv.includes('--strict');
process.exitCode = main();

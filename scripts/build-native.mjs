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
  const lines = log.split('\n').map((l) => l.trim());
  const reason = lines.find((l) => /error|not found/i.test(l) && !l.startsWith('gyp info')) ?? `node-gyp exited with ${r.status}`;
  return reason.length > 160 ? `${reason.slice(0, 157)}...` : reason;
}

const strict = process.argv.includes('--strict');
if (process.env.SAE_SKIP_NATIVE === '1') {
  console.log(`${TAG} SAE_SKIP_NATIVE=1, skipped building the native kernels (the TypeScript kernels will be used).`);
  process.exit(0);
}
const failure = build();
if (failure === null) {
  console.log(`${TAG} built the native kernels (${ADDON}).`);
} else {
  console.warn(
    `${TAG} warning: could not build the native kernels (${failure}; log: ${LOG}). The package will run on ` +
      `the slower TypeScript kernels. To fix: install g++, make and python3, then run \`npm rebuild sparse-autoencoder\`.`,
  );
  process.exitCode = strict ? 1 : 0;
}

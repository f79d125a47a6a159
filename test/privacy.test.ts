/**
 * Nothing leaves the machine and nothing is written outside the output folder: onnxruntime's own
 * telemetry (a database under ~/.cache/Microsoft/DeveloperTools, uploads to a collector) stays off.
 * A real command runs with HOME pointed at an empty folder, which must stay empty.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startSae } from './helpers/spawn.js';

describe('privacy', () => {
  it('onnxruntime writes nothing into HOME', async () => {
    const home = await mkdtemp(join(tmpdir(), 'sae-home-'));
    try {
      const r = await startSae(['conformance', 'test/fixtures/reference'], { HOME: home, ORT_DISABLE_TELEMETRY: '', SAE_ORT_TELEMETRY: '' }).done;
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(await readdir(home, { recursive: true })).toEqual([]);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });
});

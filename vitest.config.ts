import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // onnxruntime and the native addon hold threads of their own: separate processes are the safe pool.
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});

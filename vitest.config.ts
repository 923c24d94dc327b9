import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { defineConfig } from 'vitest/config';

// Workspace packages resolve to their TypeScript sources in tests, so a test never runs
// against a stale build. Services spawned as processes use their built dist instead.
const root = import.meta.dirname;
const alias: Record<string, string> = {};
for (const dir of ['libs', 'services']) {
  for (const name of existsSync(join(root, dir)) ? readdirSync(join(root, dir)) : []) {
    const src = join(root, dir, name, 'src', 'index.ts');
    if (existsSync(src)) alias[`@metaprune/${name}`] = resolve(src);
  }
}

export default defineConfig({
  resolve: { alias },
  test: {
    include: [
      'libs/*/test/**/*.test.ts',
      'services/*/test/**/*.test.ts',
      'tests/**/*.test.ts',
      'deploy/test/**/*.test.ts',
    ],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    reporters: ['default'],
  },
});

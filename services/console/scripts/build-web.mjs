#!/usr/bin/env node
// Builds the console's browser assets into dist/web: the pages and stylesheet as they are,
// the page scripts bundled with esbuild (tfjs, @metaprune/core and the engine's latency
// forward included: the browser loads nothing from elsewhere), and tfjs's wasm binaries.
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const web = join(pkg, 'web');
const out = join(pkg, 'dist', 'web');
mkdirSync(out, { recursive: true });

for (const f of ['index.html', 'profiler.html', 'style.css'])
  copyFileSync(join(web, f), join(out, f));

const require = createRequire(import.meta.url);
const wasmDir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
for (const f of readdirSync(join(wasmDir, 'dist')).filter((f) => f.endsWith('.wasm'))) {
  copyFileSync(join(wasmDir, 'dist', f), join(out, f));
}

await build({
  entryPoints: { console: join(web, 'console.ts'), profiler: join(web, 'profiler.ts') },
  outdir: out,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022'],
  minify: true,
  sourcemap: true,
  legalComments: 'none',
  logLevel: 'warning',
  // the engine's source files are bundled; Node-only code paths in them are never reached
  define: { 'process.env.NODE_ENV': '"production"' },
});

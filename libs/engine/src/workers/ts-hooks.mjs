// Module hooks for running the engine's TypeScript sources in worker threads (tests and
// scripts run from src/; the built package in dist/ needs none of this). Resolves
// `./x.js` to `./x.ts` when only the source exists, `@metaprune/<lib>` to the workspace
// sources (as vitest's aliases do), and transpiles .ts with esbuild.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

let esbuild;
const here = dirname(fileURLToPath(import.meta.url));
// libs/engine/src/workers -> repository root
const root = join(here, '..', '..', '..', '..');

export async function resolve(specifier, context, next) {
  const parent = context.parentURL;
  if (specifier.startsWith('@metaprune/')) {
    const name = specifier.slice('@metaprune/'.length);
    for (const dir of ['libs', 'services']) {
      const src = join(root, dir, name, 'src', 'index.ts');
      if (existsSync(src)) return { url: pathToFileURL(src).href, shortCircuit: true };
    }
  }
  if (parent?.endsWith('.ts') && specifier.endsWith('.js') && /^(\.|\/|file:)/.test(specifier)) {
    const url = new URL(specifier, parent);
    const ts = new URL(url.href.replace(/\.js$/, '.ts'));
    if (!existsSync(fileURLToPath(url)) && existsSync(fileURLToPath(ts))) {
      return { url: ts.href, shortCircuit: true };
    }
  }
  return next(specifier, context);
}

export async function load(url, context, next) {
  if (url.startsWith('file:') && url.endsWith('.ts')) {
    esbuild ??= await import('esbuild');
    const file = fileURLToPath(url);
    const out = await esbuild.transform(await readFile(file, 'utf8'), {
      loader: 'ts',
      format: 'esm',
      target: 'es2022',
      sourcefile: file,
      sourcemap: 'inline',
    });
    return { format: 'module', source: out.code, shortCircuit: true };
  }
  return next(url, context);
}

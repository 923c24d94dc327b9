#!/usr/bin/env node
/**
 * metaprune-deploy render <overlay-dir>   rendered YAML on stdout (kubectl kustomize's order)
 * metaprune-deploy check [<path>...]      check overlay directories, or files of YAML that
 *                                         another tool rendered (e.g. `kubectl kustomize`);
 *                                         default: every overlay and the Dockerfile.
 *                                         Exit 1 listing the problems.
 */
import { readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { checkDockerfile, checkDockerignore } from './dockerfile.js';
import { checkOverlay, checkRendered, overlayDirs, REPO_ROOT } from './index.js';
import { type KubeObject, KustomizeError, renderKustomization, toYaml } from './kustomize.js';
import { SERVICES } from './services.js';

function checkFile(file: string): { objects: KubeObject[]; problems: string[] } {
  const objects = parseAllDocuments(readFileSync(file, 'utf8'))
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => o !== null);
  return { objects, problems: checkRendered(objects) };
}

function main(argv: string[]): number {
  const [command, ...dirs] = argv;
  if (command === 'render' && dirs.length === 1) {
    process.stdout.write(toYaml(renderKustomization(dirs[0]!)));
    return 0;
  }
  if (command === 'check') {
    let failed = 0;
    for (const dir of dirs.length > 0 ? dirs : overlayDirs()) {
      const { objects, problems } = statSync(dir).isDirectory()
        ? checkOverlay(dir)
        : checkFile(dir);
      const name = relative(process.cwd(), dir) || dir;
      process.stdout.write(`${name}: ${objects.length} objects, ${problems.length} problems\n`);
      for (const p of problems) process.stdout.write(`  - ${p}\n`);
      failed += problems.length;
    }
    if (dirs.length === 0) {
      const problems = [
        ...checkDockerfile(
          readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8'),
          SERVICES,
          REPO_ROOT,
        ),
        ...checkDockerignore(readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8')),
      ];
      process.stdout.write(`Dockerfile: ${problems.length} problems\n`);
      for (const p of problems) process.stdout.write(`  - ${p}\n`);
      failed += problems.length;
    }
    return failed === 0 ? 0 : 1;
  }
  process.stderr.write(
    'usage: metaprune-deploy render <overlay-dir> | metaprune-deploy check [<overlay-dir>...]\n',
  );
  return 2;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (err) {
  process.stderr.write(
    `metaprune-deploy: ${err instanceof KustomizeError ? err.message : String(err)}\n`,
  );
  process.exitCode = 2;
}

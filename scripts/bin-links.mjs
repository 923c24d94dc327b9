// Links every workspace package's `bin` into node_modules/.bin, replacing missing or stale
// links. npm links bins during `npm ci`; this repairs a tree where that did not happen (an
// older checkout whose bins pointed at dist/ before it was built, or an install interrupted),
// so that `npx metaprune …` works right after setup. Only Node built-ins: runs from setup.mjs.
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { dirname, join, relative } from 'node:path';

/** Workspace folders named by the root package.json's `workspaces` globs ("dir/*" or "dir"). */
function workspaceDirs(root) {
  const { workspaces = [] } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const dirs = [];
  for (const pattern of workspaces) {
    if (pattern.endsWith('/*')) {
      const parent = join(root, pattern.slice(0, -2));
      if (!existsSync(parent)) continue;
      for (const name of readdirSync(parent)) dirs.push(join(parent, name));
    } else dirs.push(join(root, pattern));
  }
  return dirs.filter((d) => existsSync(join(d, 'package.json')));
}

/**
 * Ensures node_modules/.bin/<name> -> the package's bin file for every workspace bin.
 * Returns the names it (re)created.
 */
export function ensureBinLinks(root) {
  const binDir = join(root, 'node_modules', '.bin');
  mkdirSync(binDir, { recursive: true });
  const made = [];
  for (const dir of workspaceDirs(root)) {
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    const bins = typeof pkg.bin === 'string' ? { [pkg.name.split('/').pop()]: pkg.bin } : pkg.bin;
    for (const [name, file] of Object.entries(bins ?? {})) {
      const target = join(dir, file);
      if (!existsSync(target)) continue;
      chmodSync(target, 0o755);
      const link = join(binDir, name);
      const want = relative(dirname(link), target);
      let have;
      try {
        have = readlinkSync(link);
      } catch {
        have = undefined;
      }
      if (have === want && existsSync(link)) continue;
      rmSync(link, { force: true });
      symlinkSync(want, link);
      made.push(name);
    }
  }
  return made;
}

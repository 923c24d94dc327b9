/**
 * `npx metaprune …` on a fresh clone: the README's commands run the CLI through the workspace
 * bin link. These tests start from a tree whose node_modules/.bin has no link (as a fresh
 * `npm ci` left it when the bin pointed at a not-yet-built dist/) and check that setup's repair
 * makes `npx metaprune` work, and that every bin is a committed file npm can link at install.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
// @ts-expect-error plain ESM script without types, shared with scripts/setup.mjs
import { ensureBinLinks } from '../../scripts/bin-links.mjs';

const repo = join(import.meta.dirname, '..', '..');
const tmp = mkdtempSync(join(tmpdir(), 'metaprune-bin-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const BIN_PACKAGES = [
  'libs/cli',
  'services/console',
  'services/latency-profiler',
  'services/weight-generator',
];

describe('workspace bins', () => {
  it('every bin is a committed, executable launcher (npm links it before any build)', () => {
    const tracked = execFileSync('git', ['ls-files', '-s'], { cwd: repo, encoding: 'utf8' });
    for (const dir of BIN_PACKAGES) {
      const pkg = JSON.parse(readFileSync(join(repo, dir, 'package.json'), 'utf8'));
      const files = Object.values(pkg.bin as Record<string, string>);
      expect(files.length).toBeGreaterThan(0);
      for (const file of files) {
        expect(file.startsWith('./dist/'), `${dir} bin ${file} must not live in dist/`).toBe(false);
        const path = `${dir}/${file.replace(/^\.\//, '')}`;
        expect(tracked, `${path} tracked with mode 100755`).toMatch(
          new RegExp(`^100755 \\S+ 0\\t${path}$`, 'm'),
        );
      }
    }
  });

  it('npx metaprune works after setup repairs a tree with no bin link', () => {
    // A tree that shares the repository's packages but has an empty node_modules/.bin.
    writeFileSync(join(tmp, 'package.json'), readFileSync(join(repo, 'package.json')));
    for (const dir of ['libs', 'services', 'tests', 'deploy'])
      symlinkSync(join(repo, dir), join(tmp, dir));
    const npx = (args: string[]) =>
      spawnSync('npx', ['--no-install', ...args], {
        cwd: tmp,
        encoding: 'utf8',
        env: { ...process.env, npm_config_offline: 'true' },
      });

    expect(existsSync(join(tmp, 'node_modules', '.bin', 'metaprune'))).toBe(false);
    expect(npx(['metaprune', 'networks']).status).not.toBe(0);

    const made: string[] = ensureBinLinks(tmp);
    expect(made).toContain('metaprune');
    const r = npx(['metaprune', 'networks']);
    expect(r.stderr).not.toMatch(/could not determine executable/);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^mobilenetv2\s/m);
    // a second run has nothing to repair
    expect(ensureBinLinks(tmp)).toEqual([]);
  });
});

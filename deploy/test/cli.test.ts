/** The built CLI (`npm run -w @metaprune/deploy check|render`), as a pipeline would run it. */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { DEPLOY_DIR, renderKustomization, sortObjects, toYaml } from '../src/index.js';

const cli = join(DEPLOY_DIR, 'dist', 'cli.js');
const scratch = mkdtempSync(join(tmpdir(), 'metaprune-deploy-cli-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function run(...args: string[]): Promise<{ code: number; stdout: string }> {
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [cli, ...args], {
      cwd: DEPLOY_DIR,
      timeout: 60_000,
    });
    return { code: 0, stdout };
  } catch (err) {
    const e = err as { code?: number; stdout?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '' };
  }
}

describe('metaprune-deploy CLI', () => {
  it('check: every overlay and the Dockerfile, exit 0', async () => {
    const { code, stdout } = await run('check');
    expect(stdout).toMatch(/overlays\/local: \d+ objects, 0 problems/);
    expect(stdout).toMatch(/overlays\/gpu: \d+ objects, 0 problems/);
    expect(stdout).toMatch(/overlays\/external-nats: \d+ objects, 0 problems/);
    expect(stdout).toMatch(/Dockerfile: 0 problems/);
    expect(code).toBe(0);
  });

  it('render prints what the renderer makes; check of a rendered file finds a broken object', async () => {
    const { code, stdout } = await run('render', 'overlays/local');
    expect(code).toBe(0);
    const docs = parseAllDocuments(stdout).map((d) => d.toJS());
    const expected = sortObjects(renderKustomization(join(DEPLOY_DIR, 'overlays', 'local')));
    expect(docs).toEqual(JSON.parse(JSON.stringify(expected)));

    const broken = toYaml(expected).replace(
      'readOnlyRootFilesystem: true',
      'readOnlyRootFilesystem: false',
    );
    const file = join(scratch, 'rendered.yaml');
    writeFileSync(file, broken);
    const checked = await run('check', file);
    expect(checked.code).toBe(1);
    expect(checked.stdout).toMatch(
      /1 problems\n {2}- \w+\/[\w-]+: container [\w-]+: readOnlyRootFilesystem must be true/,
    );
  });

  it('usage errors exit 2', async () => {
    expect((await run('deploy')).code).toBe(2);
    expect((await run('render', 'overlays/nope')).code).toBe(2);
  });
});

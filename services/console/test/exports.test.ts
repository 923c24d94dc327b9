import { execFileSync } from 'node:child_process';
import {
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listExports, resolveInsideRoot, writeTar } from '../src/exports.js';

let base: string;
let root: string;

beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), 'console-exports-'));
  root = join(base, 'exports');
  const model = join(root, 'console', 's1', 'pn-v1-abc');
  mkdirSync(model, { recursive: true });
  writeFileSync(
    join(model, 'model.json'),
    JSON.stringify({
      modelTopology: {},
      userDefinedMetadata: { pruningnet: 'pn', pruningnet_version: 1 },
    }),
  );
  writeFileSync(join(model, 'group1-shard1of1.bin'), Buffer.alloc(1300, 7));
  mkdirSync(join(root, '.tmp-model'), { recursive: true });
  writeFileSync(join(root, '.tmp-model', 'model.json'), '{}');
  writeFileSync(join(base, 'secret.txt'), 'outside');
  symlinkSync(join(base, 'secret.txt'), join(root, 'link-out'));
  symlinkSync(base, join(root, 'dir-out'));
});

afterAll(() => rmSync(base, { recursive: true, force: true }));

describe('exports', () => {
  it('lists model directories with their metadata, not temporary ones', async () => {
    const list = await listExports(root);
    expect(list.map((x) => x.path)).toEqual(['console/s1/pn-v1-abc']);
    expect(list[0]!.files).toEqual(['group1-shard1of1.bin', 'model.json']);
    expect(list[0]!.metadata).toEqual({ pruningnet: 'pn', pruningnet_version: 1 });
    expect(list[0]!.sizeBytes).toBeGreaterThan(1300);
    expect(await listExports(join(base, 'missing'))).toEqual([]);
  });

  it('resolves only paths inside the root', async () => {
    expect(await resolveInsideRoot(root, 'console/s1/pn-v1-abc/model.json')).toBe(
      join(root, 'console/s1/pn-v1-abc/model.json'),
    );
    for (const bad of [
      '../secret.txt',
      'console/../../secret.txt',
      '/etc/passwd',
      'console//s1',
      'console\\s1',
      'link-out',
      'dir-out/secret.txt',
      'console/\0',
      '',
      'missing.json',
    ]) {
      expect(await resolveInsideRoot(root, bad), bad).toBeUndefined();
    }
  });

  it('writes a tar archive that tar reads back', async () => {
    const dir = join(root, 'console', 's1', 'pn-v1-abc');
    const file = join(base, 'model.tar');
    const out = createWriteStream(file);
    await writeTar(dir, 'pn-v1-abc', out);
    await new Promise<void>((ok) => out.end(ok));
    const listing = execFileSync('tar', ['-tf', file], { encoding: 'utf8' }).trim().split('\n');
    expect(listing).toEqual([
      'pn-v1-abc/',
      'pn-v1-abc/group1-shard1of1.bin',
      'pn-v1-abc/model.json',
    ]);
    const x = join(base, 'x');
    mkdirSync(x);
    execFileSync('tar', ['-xf', file, '-C', x]);
    expect(readFileSync(join(x, 'pn-v1-abc', 'group1-shard1of1.bin'))).toEqual(
      Buffer.alloc(1300, 7),
    );
  });
});

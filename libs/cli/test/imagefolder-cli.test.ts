import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSyntheticImageFolder } from '@metaprune/data';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// `--dataset imagefolder:DIR` as users run it: the built CLI on synthetic 96x96 RGB images
// (JPEG and PNG, sizes varying around 120 px), and the one-line errors for unusable folders.
const root = join(import.meta.dirname, '..', '..', '..');
const cli = join(root, 'libs', 'cli', 'dist', 'main.js');
const dir = mkdtempSync(join(tmpdir(), 'metaprune-cli-folder-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const run = (args: string[]) =>
  new Promise<{ code: number | null; out: string; err: string }>((done) => {
    execFile(
      process.execPath,
      [cli, ...args],
      { encoding: 'utf8', env: { ...process.env, METAPRUNE_BACKEND: 'wasm' }, maxBuffer: 1 << 26 },
      (error, out, err) =>
        done({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, out, err }),
    );
  });
const net = ['--network', 'mobilenetv2', '--preset', 'small', '--width', '0.25'];

beforeAll(async () => {
  await writeSyntheticImageFolder(join(dir, 'rgb'), {
    classes: 3,
    perClass: 20,
    size: 120,
    vary: true,
    seed: 2,
  });
});

describe('metaprune with an image folder', () => {
  it('trains and exports a 96x96 RGB network on it, classes named after the folders', async () => {
    const ck = join(dir, 'ck');
    const a = await run([
      'train',
      ...net,
      '--input-size',
      '96',
      '--dataset',
      `imagefolder:${join(dir, 'rgb')}`,
      '--epochs',
      '1',
      '--steps',
      '2',
      '--batch',
      '8',
      '--val-per-class',
      '3',
      '--workers',
      '0',
      '--out',
      ck,
      '--json',
    ]);
    expect(a.code, a.err).toBe(0);
    expect(JSON.parse(a.out).position).toMatchObject({ globalStep: 2 });
    const info = JSON.parse(readFileSync(join(ck, 'run.json'), 'utf8'));
    expect(info.spec).toMatchObject({ inputSize: 96, inputChannels: 3, numClasses: 3 });
    expect(info.imageChannels).toBe(3);
    const model = join(dir, 'model');
    const x = await run([
      'export',
      '--checkpoint',
      ck,
      '--uniform',
      '0.5',
      '--recal-batches',
      '1',
      '--verify-images',
      '9',
      '--out',
      model,
      '--json',
    ]);
    expect(x.code, x.err).toBe(0);
    const meta = JSON.parse(readFileSync(join(model, 'model.json'), 'utf8')).userDefinedMetadata;
    expect(meta.classNames).toEqual(['class000', 'class001', 'class002']);
    expect(meta.dataset).toBe(`imagefolder:${join(dir, 'rgb')}`);
  });

  it('refuses unusable folders with exit 2 and one line, writing nothing', async () => {
    mkdirSync(join(dir, 'empty'));
    const cases: [string, RegExp][] = [
      [join(dir, 'empty'), /expected one subfolder per class .* got an empty folder$/],
      [join(dir, 'missing'), /expected a readable image folder .* got ENOENT$/],
    ];
    for (const [i, [folder, msg]] of cases.entries()) {
      const out = join(dir, `out-${i}`);
      const r = await run(['train', ...net, '--dataset', `imagefolder:${folder}`, '--out', out]);
      expect(r.code).toBe(2);
      const lines = r.err.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(msg);
      expect(existsSync(out)).toBe(false);
    }
    const bad = await run(['train', ...net, '--dataset', 'imagenet', '--out', join(dir, 'x')]);
    expect(bad.code).toBe(2);
    expect(bad.err.trim()).toBe(
      'metaprune: --dataset: unknown value "imagenet"; allowed fashion-mnist, cifar10, imagefolder:<dir>',
    );
  });
});

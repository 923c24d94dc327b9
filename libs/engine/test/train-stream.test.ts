/**
 * Training from an image folder streamed with bounded memory (ImageFolderStream: decode
 * workers, a cache far smaller than the folder) is the same training as from the folder
 * loaded in memory: same batches, so the same losses step for step.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BatchIterator,
  DecodePool,
  ImageFolderStream,
  loadImageFolder,
  scanImageFolder,
  wholeSubset,
  writeImageFolder,
} from '@metaprune/data';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import { createPruningNet } from '../src/pruningnet/pruningnet.js';
import { trainPruningNet } from '../src/train/trainer.js';
import { tinyNet, toyDataset } from './fixtures.js';

let dir: string;
let pool: DecodePool;
beforeAll(async () => {
  await initBackend({ prefer: 'wasm' });
  dir = await mkdtemp(join(tmpdir(), 'metaprune-stream-'));
  pool = new DecodePool({ workers: 2 });
  const ds = toyDataset(160);
  await writeImageFolder(join(dir, 'train'), ds.train, ds.imageShape, ds.classNames, {
    format: 'png',
  });
  await writeImageFolder(join(dir, 'test'), ds.test, ds.imageShape, ds.classNames, {
    format: 'png',
  });
});
afterAll(async () => {
  await pool?.close();
  await rm(dir, { recursive: true, force: true });
});

it('streamed and in-memory training of an image folder take the same steps', async () => {
  const opts = { batchSize: 16, seed: 3, augment: true, shuffle: true };
  const loaded = await loadImageFolder(dir, { size: 8, pool });
  const memory = new BatchIterator(wholeSubset(loaded, 'train'), opts);
  const scan = await scanImageFolder(dir);
  // A cache of 20 images for a 160-image folder: most images are decoded again each epoch.
  const stream = new ImageFolderStream({
    ...opts,
    entries: scan.train,
    pool,
    size: 8,
    channels: 1,
    cacheBytes: 20 * 64,
  });
  const losses = async (data: typeof memory | typeof stream) => {
    const out: number[] = [];
    await trainPruningNet({
      pnet: createPruningNet(tinyNet(), { seed: 1 }),
      data,
      epochs: 2,
      stepsPerEpoch: 4,
      lr: 0.05,
      seed: 7,
      onProgress: (p) => {
        if (p.phase === 'step') out.push(p.stepLoss);
      },
    });
    return out;
  };
  const a = await losses(memory);
  const b = await losses(stream);
  expect(a).toHaveLength(8);
  expect(b).toEqual(a);
  expect(stream.decoded).toBeGreaterThan(64);
  expect(stream.cachedBytes).toBeLessThanOrEqual(20 * 64);
});

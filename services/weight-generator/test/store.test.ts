import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { common, weightgen } from '@metaprune/proto';
import { InvalidArgumentError, NotFoundError } from '@metaprune/runtime';
import { tempDir } from '@metaprune/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { CheckpointCorruptError } from '../src/errors.js';
import { resolveInside } from '../src/paths.js';
import { type CheckpointMeta, CheckpointStore, MANIFEST } from '../src/store.js';
import { resolveTrainingConfig } from '../src/validate.js';

const tmp = tempDir('wg-store-');
afterAll(() => tmp.remove());

const dataRoot = '/usr/share/datasets';

function config() {
  return resolveTrainingConfig(
    weightgen.TrainingConfig.fromPartial({
      network: {
        family: common.NetworkFamily.MOBILENET_V1,
        preset: common.NetworkPreset.SMALL,
        widthMultiplier: 0.25,
      },
      dataset: 'fashion-mnist',
      epochs: 1,
    }),
    dataRoot,
  );
}

function meta(id: string): CheckpointMeta {
  return {
    pruningnetId: id,
    jobId: 'job-1',
    displayName: 'test',
    epochsTrained: 1,
    config: config(),
    createTime: new Date().toISOString(),
  };
}

function engineDir(name: string, content: string): string {
  const dir = join(tmp.path, 'engine', name);
  mkdirSync(join(dir, 'sub'), { recursive: true });
  writeFileSync(join(dir, 'weights.bin'), content);
  writeFileSync(join(dir, 'sub', 'state.json'), JSON.stringify({ content }));
  return dir;
}

describe('CheckpointStore', () => {
  it('publishes numbered versions atomically and verifies them', async () => {
    const store = new CheckpointStore(join(tmp.path, 'ckpt-a'));
    await store.init();
    const v1 = await store.publish(engineDir('a1', 'one'.repeat(1000)), meta('pn-a'));
    const v2 = await store.publish(engineDir('a2', 'two'.repeat(1000)), meta('pn-a'));
    expect([v1.version, v2.version]).toEqual([1, 2]);
    expect(await store.versions('pn-a')).toEqual([1, 2]);
    expect(v2.manifest.files.map((f) => f.path)).toEqual(['sub/state.json', 'weights.bin']);
    expect((await store.resolve('pn-a', 0)).version).toBe(2);
    expect((await store.resolve('pn-a', 1)).version).toBe(1);
    expect(await readFile(join(v1.dir, 'weights.bin'), 'utf8')).toBe('one'.repeat(1000));
    await expect(store.resolve('pn-a', 7)).rejects.toBeInstanceOf(NotFoundError);
    await expect(store.resolve('pn-nope', 0)).rejects.toBeInstanceOf(NotFoundError);
    expect((await store.list()).map((v) => `${v.pruningnetId}@${v.version}`).sort()).toEqual([
      'pn-a@1',
      'pn-a@2',
    ]);
  });

  it('refuses a corrupted or truncated version; latest falls back to the last good one', async () => {
    const store = new CheckpointStore(join(tmp.path, 'ckpt-b'));
    await store.init();
    await store.publish(engineDir('b1', 'good'.repeat(500)), meta('pn-b'));
    const v2 = await store.publish(engineDir('b2', 'next'.repeat(500)), meta('pn-b'));
    expect((await store.resolve('pn-b', 0)).version).toBe(2); // verified once, cached

    // flip bytes without changing the size
    await writeFile(join(v2.dir, 'weights.bin'), 'nexT'.repeat(500));
    const err = await store.resolve('pn-b', 2).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointCorruptError);
    expect((err as CheckpointCorruptError).grpcCode).toBe(status.DATA_LOSS);
    expect((err as Error).message).toMatch(/pn-b v2 is corrupted.*weights\.bin fails its checksum/);
    expect((await store.resolve('pn-b', 0)).version).toBe(1);

    // truncation is named as such
    await truncate(join(v2.dir, 'weights.bin'), 10);
    await expect(store.resolve('pn-b', 2)).rejects.toThrow(/10 bytes, the manifest says 2000/);

    // a truncated manifest
    const text = await readFile(join(v2.dir, MANIFEST), 'utf8');
    await writeFile(join(v2.dir, MANIFEST), text.slice(0, 40));
    await expect(store.resolve('pn-b', 2)).rejects.toThrow(/not valid JSON/);
    expect((await store.resolve('pn-b', 0)).version).toBe(1);

    // every version bad → DATA_LOSS for latest too
    await writeFile(join(store.versionDir('pn-b', 1), 'sub', 'state.json'), '{}');
    await expect(store.resolve('pn-b', 0)).rejects.toBeInstanceOf(CheckpointCorruptError);
  });

  it('refuses an edited version.json (the digest covers the metadata): skipped in lists, latest falls back', async () => {
    const store = new CheckpointStore(join(tmp.path, 'ckpt-meta'));
    await store.init();
    await store.publish(engineDir('m1', 'one'.repeat(100)), meta('pn-m'));
    const v2 = await store.publish(engineDir('m2', 'two'.repeat(100)), meta('pn-m'));
    await store.publish(engineDir('o1', 'other'.repeat(100)), meta('pn-o'));
    const path = join(v2.dir, MANIFEST);
    const m = JSON.parse(await readFile(path, 'utf8'));
    // a plausible edit (more epochs) and a garbage one (what made every listing INTERNAL)
    for (const edit of [
      { ...m, meta: { ...m.meta, epochsTrained: 99 } },
      { ...m, meta: { ...m.meta, config: null } },
      { ...m, version: 7 },
    ]) {
      await writeFile(path, JSON.stringify(edit));
      const err = await store.resolve('pn-m', 2).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CheckpointCorruptError);
      expect((err as Error).message).toMatch(/digest does not match its contents/);
      expect((await store.resolve('pn-m', 0)).version).toBe(1);
      expect((await store.list()).map((v) => `${v.pruningnetId}@${v.version}`).sort()).toEqual([
        'pn-m@1',
        'pn-o@1',
      ]);
    }
  });

  it('moves files when asked, and prunes the oldest versions', async () => {
    const store = new CheckpointStore(join(tmp.path, 'ckpt-d'));
    await store.init();
    for (let i = 1; i <= 4; i++) {
      const src = engineDir(`d${i}`, `v${i}`);
      await store.publish(src, meta('pn-d'), true);
      await expect(readFile(join(src, 'weights.bin'))).rejects.toThrow(/ENOENT/);
    }
    expect(await store.prune('pn-d', 2)).toEqual([1, 2]);
    expect(await store.versions('pn-d')).toEqual([3, 4]);
    expect((await store.resolve('pn-d', 0)).version).toBe(4);
    expect(await readFile(join(store.versionDir('pn-d', 3), 'weights.bin'), 'utf8')).toBe('v3');
  });

  it('init removes staging leftovers of an interrupted publish', async () => {
    const root = join(tmp.path, 'ckpt-c');
    const store = new CheckpointStore(root);
    await store.init();
    await store.publish(engineDir('c1', 'x'), meta('pn-c'));
    const stale = join(store.pruningnetDir('pn-c'), '.staging-dead');
    mkdirSync(stale);
    writeFileSync(join(stale, 'weights.bin'), 'partial');
    await new CheckpointStore(root).init();
    expect(await store.versions('pn-c')).toEqual([1]);
    await expect(readFile(join(stale, 'weights.bin'))).rejects.toThrow(/ENOENT/);
  });
});

describe('resolveInside', () => {
  it('keeps request paths inside the root', () => {
    const root = join(tmp.path, 'exports');
    mkdirSync(root, { recursive: true });
    expect(resolveInside(root, 'a/b', 'output_dir')).toBe(join(root, 'a', 'b'));
    expect(resolveInside(root, '', 'output_dir')).toBe(root);
    expect(resolveInside(root, 'a/../b', 'output_dir')).toBe(join(root, 'b'));
    for (const bad of ['../x', 'a/../../x', '/etc', '..', 'x\0y']) {
      const err = (() => {
        try {
          resolveInside(root, bad, 'output_dir');
        } catch (e) {
          return e;
        }
      })();
      expect(err, bad).toBeInstanceOf(InvalidArgumentError);
      expect((err as InvalidArgumentError).field).toBe('output_dir');
    }
    symlinkSync(tmp.path, join(root, 'escape'));
    expect(() => resolveInside(root, 'escape/x', 'output_dir')).toThrow(/symbolic link/);
  });
});

describe('resolveTrainingConfig', () => {
  const base = () =>
    weightgen.TrainingConfig.fromPartial({
      network: {
        family: common.NetworkFamily.MOBILENET_V2,
        preset: common.NetworkPreset.SMALL,
        widthMultiplier: 0.5,
      },
      dataset: 'fashion-mnist',
      epochs: 1,
    });
  const fieldOf = (patch: (c: weightgen.TrainingConfig) => void): string | undefined => {
    const c = base();
    patch(c);
    try {
      resolveTrainingConfig(c, dataRoot);
      return undefined;
    } catch (e) {
      return e instanceof InvalidArgumentError ? e.field : `not invalid-argument: ${String(e)}`;
    }
  };

  it('fills defaults from the dataset and the reference recipe', () => {
    const r = resolveTrainingConfig(base(), dataRoot);
    expect(r.network).toMatchObject({
      family: 'mobilenetv2',
      width: 0.5,
      inputChannels: 1,
      numClasses: 10,
    });
    expect(r).toMatchObject({
      batchSize: 64,
      validationImages: 5000,
      hiddenUnits: 32,
      labelSmoothing: 0.1,
      weightDecay: 0,
    });
    expect(r.learningRate).toBeCloseTo(0.4);
    expect(r.dataDir).toBe('/usr/share/datasets/fashion-mnist');
  });

  it('names every bad field', () => {
    expect(fieldOf((c) => (c.network = undefined))).toBe('config.network');
    expect(fieldOf((c) => (c.network!.family = 0))).toBe('config.network.family');
    expect(fieldOf((c) => (c.network!.preset = 0))).toBe('config.network.preset');
    expect(fieldOf((c) => (c.network!.widthMultiplier = 3))).toBe(
      'config.network.width_multiplier',
    );
    expect(fieldOf((c) => (c.network!.widthMultiplier = Number.NaN))).toBe(
      'config.network.width_multiplier',
    );
    expect(fieldOf((c) => (c.network!.numClasses = 7))).toBe('config.network.num_classes');
    expect(fieldOf((c) => (c.dataset = 'imagenet'))).toBe('config.dataset');
    expect(fieldOf((c) => (c.dataset = 'dir:../../etc'))).toBe('config.dataset');
    expect(fieldOf((c) => (c.epochs = 0))).toBe('config.epochs');
    expect(fieldOf((c) => (c.batchSize = 9000))).toBe('config.batch_size');
    expect(fieldOf((c) => (c.learningRate = -1))).toBe('config.learning_rate');
    expect(fieldOf((c) => (c.learningRate = Number.POSITIVE_INFINITY))).toBe(
      'config.learning_rate',
    );
    expect(fieldOf((c) => (c.momentum = 1))).toBe('config.momentum');
    expect(fieldOf((c) => (c.labelSmoothing = Number.NaN))).toBe('config.label_smoothing');
    expect(fieldOf((c) => (c.validationImages = 30001))).toBe('config.validation_images');
    expect(fieldOf((c) => (c.hiddenUnits = 5000))).toBe('config.hidden_units');
    expect(fieldOf((c) => (c.hiddenUnits = 16))).toBe('config.hidden_units');
    expect(fieldOf((c) => (c.labelSmoothing = 0.2))).toBe('config.label_smoothing');
    expect(fieldOf((c) => (c.weightDecay = 1e-4))).toBe('config.weight_decay');
    expect(fieldOf(() => {})).toBeUndefined();
  });
});

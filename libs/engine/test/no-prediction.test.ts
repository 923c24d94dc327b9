/**
 * The ablation without weight prediction (RQ5): `weightPrediction: false` gives each layer
 * one shared max-width tensor that every candidate crops (the generator sees a constant
 * input), trained the same way; its checkpoints say so and reload as such. With weight
 * prediction the crops of different candidates differ (the control).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Encoding, fullEncoding, uniformEncoding } from '@metaprune/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import { CheckpointError, loadCheckpoint } from '../src/checkpoint/checkpoint.js';
import {
  createPruningNet,
  generateCandidate,
  type PruningNet,
} from '../src/pruningnet/pruningnet.js';
import { ParallelStepper } from '../src/train/parallel.js';
import { trainPruningNet } from '../src/train/trainer.js';
import { tinyNet, toyData } from './fixtures.js';

let dir: string;
beforeAll(async () => {
  await initBackend({ prefer: 'wasm' });
  dir = await mkdtemp(join(tmpdir(), 'metaprune-noprediction-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/**
 * Largest |difference| between the crop of `small` and the same channels of the crop of
 * `big`, over every generated layer (tfjs layouts: conv [kh, kw, cin, cout], depthwise
 * [kh, kw, c, 1]). Also returns how many weights were compared.
 */
function cropMismatch(pnet: PruningNet, small: Encoding, big: Encoding) {
  const a = generateCandidate(pnet, small);
  const b = generateCandidate(pnet, big);
  let worst = 0;
  let compared = 0;
  pnet.layout.gens.forEach((g, i) => {
    if (!g) return;
    const pa = a.plan[i]!;
    const pb = b.plan[i]!;
    const coutA = g.kind === 'depthwise' ? 1 : pa.cout;
    const coutB = g.kind === 'depthwise' ? 1 : pb.cout;
    for (let kk = 0; kk < g.kk; kk++) {
      for (let ci = 0; ci < pa.cin; ci++) {
        for (let co = 0; co < coutA; co++) {
          const va = a.arena[g.rowOff + (kk * pa.cin + ci) * coutA + co] as number;
          const vb = b.arena[g.rowOff + (kk * pb.cin + ci) * coutB + co] as number;
          worst = Math.max(worst, Math.abs(va - vb));
          compared++;
        }
      }
    }
  });
  return { worst, compared };
}

describe('no weight prediction (one shared tensor per layer, cropped)', () => {
  const net = tinyNet(0.25);
  const small = uniformEncoding(net, 0.4);
  const full = fullEncoding(net);

  it('every candidate crops the same tensor; with prediction they do not', () => {
    const shared = createPruningNet(net, { seed: 3, weightPrediction: false });
    expect(shared.weightPrediction).toBe(false);
    expect(shared.layout.weightPrediction).toBe(false);
    expect(shared.layout.gens.every((g) => g === null || (g.codeFree && g.codeLen === 1))).toBe(
      true,
    );
    const m = cropMismatch(shared, small, full);
    expect(m.compared).toBeGreaterThan(100);
    expect(m.worst).toBe(0);
    const predicted = createPruningNet(net, { seed: 3 });
    expect(predicted.weightPrediction).toBe(true);
    expect(cropMismatch(predicted, small, full).worst).toBeGreaterThan(1e-4);
  });

  it('trains (also on worker threads), stays shared, and checkpoints as such', async () => {
    const { train } = toyData(192, 32, 8);
    const pnet = createPruningNet(net, { seed: 4, weightPrediction: false, shared: true });
    const before = generateCandidate(pnet, full).arena.slice();
    const stepper = await ParallelStepper.create(pnet, { workers: 2 });
    try {
      await trainPruningNet({
        pnet,
        data: train,
        epochs: 1,
        stepsPerEpoch: 3,
        lr: 0.05,
        stepper,
        checkpointDir: join(dir, 'ckpt'),
      });
    } finally {
      await stepper.close();
    }
    const after = generateCandidate(pnet, full).arena;
    let moved = 0;
    for (let i = 0; i < after.length; i++)
      moved = Math.max(moved, Math.abs(after[i]! - before[i]!));
    expect(moved).toBeGreaterThan(1e-5);
    expect(cropMismatch(pnet, small, full).worst).toBe(0);

    const loaded = await loadCheckpoint(join(dir, 'ckpt'));
    expect(loaded.manifest.weightPrediction).toBe(false);
    expect(loaded.pnet.weightPrediction).toBe(false);
    const again = generateCandidate(loaded.pnet, full).arena;
    expect(
      Buffer.compare(
        Buffer.from(again.buffer, again.byteOffset, again.byteLength),
        Buffer.from(after.buffer, after.byteOffset, after.byteLength),
      ),
    ).toBe(0);
    // a checkpoint without weight prediction does not load into a PruningNet with it
    await expect(
      loadCheckpoint(join(dir, 'ckpt'), { into: createPruningNet(net, { seed: 4 }) }),
    ).rejects.toBeInstanceOf(CheckpointError);
  });
});

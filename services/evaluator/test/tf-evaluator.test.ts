import { buildNetwork, type Encoding, Rng, randomEncoding } from '@metaprune/core';
import {
  createPruningNet,
  evaluateCandidate,
  generateCandidate,
  initBackend,
} from '@metaprune/engine';
import { float32Tensor, weightgen } from '@metaprune/proto';
import { resolveDataSplit, resolveEvaluationSettings } from '@metaprune/wire';
import { describe, expect, it } from 'vitest';
import { EvaluationData } from '../src/data.js';
import { createTfEvaluator, cropShape, scoreCandidate } from '../src/tf-evaluator.js';
import type { EvaluationInput, GeneratedWeights } from '../src/types.js';

const NET = buildNetwork({
  family: 'mobilenetv2',
  preset: 'small',
  width: 0.25,
  inputSize: 32,
  inputChannels: 1,
});

/** Weights shaped like the weight generator's stream, seeded values (He-like scale). */
function weightsFor(enc: Encoding, seed: number): GeneratedWeights {
  const rng = new Rng(seed);
  const tensors = new Map<string, ReturnType<typeof float32Tensor>>();
  for (const layer of NET.layers) {
    const shape = cropShape(layer, enc);
    const n = shape.reduce((a, b) => a * b, 1);
    const fanIn = shape.length === 2 ? shape[0]! : shape[0]! * shape[1]! * shape[2]!;
    const scale = Math.sqrt(2 / Math.max(1, layer.kind === 'depthwise' ? shape[0]! ** 2 : fanIn));
    const v = Float32Array.from({ length: n }, () => (rng.next() * 2 - 1) * scale);
    tensors.set(`${layer.name}.weight`, float32Tensor(shape, v));
    if (layer.kind === 'fc') {
      tensors.set(`${layer.name}.bias`, float32Tensor([shape[1]!], new Float32Array(shape[1]!)));
    }
  }
  return { header: weightgen.WeightsHeader.fromPartial({}), tensors, bytes: 0 };
}

describe('tfjs candidate evaluation from streamed weights', () => {
  it('loads the split and scores a candidate deterministically; a bad stream is refused', async () => {
    const ev = await createTfEvaluator({ backend: 'auto', dataRoot: '/usr/share/datasets' });
    expect(['wasm', 'cpu', 'tensorflow', 'tensorflow-gpu']).toContain(ev.backend);
    const enc = randomEncoding(NET.genes.length, new Rng(3));
    const settings = resolveEvaluationSettings({
      recalibrationBatches: 2,
      batchSize: 32,
      validationImages: 96,
      seed: 5,
    });
    const data = resolveDataSplit({ dataset: 'fashion-mnist', seed: 1, validationImages: 500 });
    const phases: number[] = [];
    const input = (w: GeneratedWeights): EvaluationInput => ({
      job: {} as EvaluationInput['job'],
      network: NET,
      encoding: enc,
      settings,
      data,
      weights: w,
      signal: new AbortController().signal,
      onPhase: (p) => phases.push(p),
    });
    const a = await ev.evaluate(input(weightsFor(enc, 1)));
    const b = await ev.evaluate(input(weightsFor(enc, 1)));
    expect(a.images).toBe(96);
    expect(a.top1).toBeGreaterThanOrEqual(0);
    expect(a.top1).toBeLessThanOrEqual(1);
    expect(Number.isFinite(a.loss) && a.loss > 0).toBe(true);
    expect(b.top1).toBe(a.top1);
    expect(b.loss).toBe(a.loss);
    expect(phases).toContain(3); // RECALIBRATION
    expect(phases).toContain(4); // VALIDATION

    const broken = weightsFor(enc, 1);
    (broken.tensors as Map<string, unknown>).delete(`${NET.layers[3]!.name}.weight`);
    await expect(ev.evaluate(input(broken))).rejects.toThrow(/no tensor/);
  });

  it('the image sets follow the split: recalibration from sub-train, validation from sub-val', async () => {
    const data = new EvaluationData('/usr/share/datasets');
    const split = resolveDataSplit({ dataset: 'fashion-mnist', seed: 1, validationImages: 500 });
    const s = resolveEvaluationSettings({
      recalibrationBatches: 3,
      batchSize: 16,
      validationImages: 0,
      seed: 0,
    });
    const sets = await data.imageSets(NET.spec, split, s);
    expect(sets.recal.count).toBe(48);
    expect(sets.val.count).toBe(500); // the whole held-out split
    expect(sets.val.imageShape).toEqual([32, 32, 1]);
    // the validation images are balanced over the 10 classes
    const per = new Array(10).fill(0);
    for (const l of sets.val.labels) per[l]++;
    expect(per).toEqual(new Array(10).fill(50));
    // cached: the same object for the same settings
    expect(await data.imageSets(NET.spec, split, s)).toBe(sets);
  });

  it('an aborted evaluation stops between batches', async () => {
    const enc = randomEncoding(NET.genes.length, new Rng(4));
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    const images = new Float32Array(64 * 32 * 32);
    const set = { images, labels: new Int32Array(64), count: 64, imageShape: [32, 32, 1] as const };
    await expect(
      scoreCandidate(
        {
          network: NET,
          encoding: enc,
          weights: weightsFor(enc, 2),
          signal: ac.signal,
          onPhase: () => {},
          batchSize: 32,
        },
        { recal: set, val: set },
      ),
    ).rejects.toThrow('stop');
  });

  it("scores exactly what the engine's own evaluateCandidate scores for the same PruningNet", async () => {
    await initBackend({});
    const pnet = createPruningNet(NET, { seed: 3 });
    const rng = new Rng(9);
    const images = (n: number) => ({
      images: Float32Array.from({ length: n * 32 * 32 }, () => rng.next() * 2 - 1),
      labels: Int32Array.from({ length: n }, () => rng.int(10)),
      count: n,
      imageShape: [32, 32, 1] as const,
    });
    const recal = images(96);
    const val = images(256);
    for (let t = 0; t < 3; t++) {
      const enc = randomEncoding(NET.genes.length, rng);
      const ref = evaluateCandidate(pnet, enc, { recal, val, recalBatches: 3, batchSize: 32 });
      // the tensors GenerateWeights streams: every layer's crop, the classifier's bias
      const cand = generateCandidate(pnet, enc);
      const small = pnet.state.params.small;
      const tensors = new Map<string, ReturnType<typeof float32Tensor>>();
      cand.plan.forEach((p, i) => {
        const layer = NET.layers[i]!;
        const g = pnet.layout.gens[i];
        if (g) {
          tensors.set(
            `${layer.name}.weight`,
            float32Tensor(p.shape, cand.arena.slice(g.rowOff, g.rowOff + p.size)),
          );
          return;
        }
        const f = pnet.layout.fcs.find((x) => x.index === i)!;
        tensors.set(
          `${layer.name}.weight`,
          float32Tensor(p.shape, small.slice(f.wOff, f.wOff + p.size)),
        );
        tensors.set(
          `${layer.name}.bias`,
          float32Tensor([f.cout], small.slice(f.bOff, f.bOff + f.cout)),
        );
      });
      const mine = await scoreCandidate(
        {
          network: NET,
          encoding: enc,
          weights: { header: weightgen.WeightsHeader.fromPartial({}), tensors, bytes: 0 },
          signal: new AbortController().signal,
          onPhase: () => {},
          batchSize: 32,
        },
        { recal, val },
      );
      expect(mine.top1).toBe(ref.top1);
      expect(mine.images).toBe(ref.valImages);
    }
  });
});

/**
 * Correctness experiment (issue 3, item 4): a width-0.5 small MobileNetV2 PruningNet trained
 * for one epoch on Fashion-MNIST (55k sub-train, stratified seeded split) must reach >= 80%
 * sub-val top-1 at the full-width encoding after BN recalibration.
 *
 *   node libs/engine/dist/experiments/one-epoch.js [--workers 2] [--lr 0.4] [--epochs 1]
 *        [--classifier-lr-scale 0.05]
 *        [--batch 64] [--augment] [--out DIR] [--data-dir DIR] [--steps N] [--recal 100]
 *        [--full-only] [--seed 0]
 *
 * Prints progress to stderr and one JSON line with the results to stdout.
 */
import { buildNetwork, fullEncoding, uniformEncoding } from '@metaprune/core';
import {
  BatchIterator,
  computeChannelStats,
  loadDataset,
  preprocessConfig,
  splitTrainVal,
} from '@metaprune/data';
import { initBackend } from '../backend/select.js';
import { collectImages } from '../evaluate/data.js';
import { evaluateCandidate } from '../evaluate/evaluate.js';
import { createPruningNet } from '../pruningnet/pruningnet.js';
import { ParallelStepper } from '../train/parallel.js';
import { trainPruningNet } from '../train/trainer.js';

function arg(name: string, dflt: string | undefined): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

const workers = Number(arg('workers', '2'));
const lr = Number(arg('lr', '0.4'));
const classifierLrScale = Number(arg('classifier-lr-scale', '0.05'));
const epochs = Number(arg('epochs', '1'));
const batchSize = Number(arg('batch', '64'));
const steps = arg('steps', undefined);
const augment = process.argv.includes('--augment');
const out = arg('out', undefined);
const seed = Number(arg('seed', '0'));
const recalBatches = Number(arg('recal', '100'));
const evalAll = !process.argv.includes('--full-only');

const backend = await initBackend({});
const t0 = performance.now();
const ds = await loadDataset({ name: 'fashion-mnist', dir: arg('data-dir', undefined) });
const split = splitTrainVal(ds, { valPerClass: 500, seed: 0 });
const stats = computeChannelStats(split.train);
const preprocess = preprocessConfig(ds.imageShape, { size: 32, stats });
const train = new BatchIterator(split.train, {
  batchSize,
  seed,
  augment,
  preprocess,
  shuffle: true,
});
const recalSrc = new BatchIterator(split.train, {
  batchSize,
  seed: seed + 1,
  preprocess,
  shuffle: true,
});
const valSrc = new BatchIterator(split.val, { batchSize, preprocess, shuffle: false });
const recal = collectImages(recalSrc, { maxBatches: 100 });
const val = collectImages(valSrc);
process.stderr.write(
  `data: ${split.train.indices.length} sub-train, ${split.val.indices.length} sub-val, ${preprocess.outputShape.join('x')}, backend ${backend.name}, workers ${workers}\n`,
);

const net = buildNetwork({ family: 'mobilenetv2', preset: 'small', width: 0.5, inputChannels: 1 });
const pnet = createPruningNet(net, { seed, shared: workers > 0 });
const stepper = workers > 0 ? await ParallelStepper.create(pnet, { workers }) : undefined;
const trainStart = performance.now();
let result: Awaited<ReturnType<typeof trainPruningNet>>;
try {
  result = await trainPruningNet({
    pnet,
    data: train,
    epochs,
    lr,
    classifierLrScale,
    seed,
    stepper,
    stepsPerEpoch: steps ? Number(steps) : undefined,
    checkpointDir: out,
    progressEvery: 50,
    onProgress: (p) => {
      if (p.phase === 'step') {
        process.stderr.write(
          `epoch ${p.epoch + 1}/${p.epochs} step ${p.step}/${p.stepsPerEpoch} loss ${p.loss.toFixed(4)} acc ${(100 * p.accuracy).toFixed(1)}% lr ${p.lr.toFixed(4)} ${p.imagesPerSec.toFixed(1)} img/s eta ${p.etaSec.toFixed(0)}s\n`,
        );
      }
    },
  });
} finally {
  await stepper?.close();
}
const trainSeconds = (performance.now() - trainStart) / 1000;
const evals: Record<string, unknown> = {};
const candidates = [
  ['full', fullEncoding(net)],
  ['uniform0.75', uniformEncoding(net, 0.75)],
  ['uniform0.5', uniformEncoding(net, 0.5)],
  ['uniform0.25', uniformEncoding(net, 0.25)],
] as const;
for (const [name, enc] of evalAll ? candidates : candidates.slice(0, 1)) {
  const r = evaluateCandidate(pnet, enc, { recal, val, recalBatches, batchSize: 64 });
  evals[name] = r;
  process.stderr.write(`${name}: top1 ${(100 * r.top1).toFixed(2)}% (${r.seconds.toFixed(1)} s)\n`);
}
console.log(
  JSON.stringify({
    experiment: 'one-epoch',
    backend: backend.name,
    workers,
    lr,
    classifierLrScale,
    epochs,
    batchSize,
    augment,
    history: result.history,
    trainSeconds,
    totalSeconds: (performance.now() - t0) / 1000,
    evals,
  }),
);

#!/usr/bin/env node
/**
 * Child-process entry of one retraining job (see retrain-job.ts): `node retrain-worker.js
 * '<job JSON>'`. Prints JSON lines on stdout: progress, then one result (or an error).
 */
import { buildNetwork } from '@metaprune/core';
import { loadDataset, type Subset, wholeSubset } from '@metaprune/data';
import type { RetrainJob, WorkerMessage } from './retrain-job.js';

const emit = (m: WorkerMessage) => process.stdout.write(`${JSON.stringify(m)}\n`);

function firstN(s: Subset, n: number): Subset {
  return n > 0 && n < s.indices.length ? { ...s, indices: s.indices.slice(0, n) } : s;
}

async function main(job: RetrainJob): Promise<void> {
  const engine = await import('@metaprune/engine');
  await engine.initBackend({
    prefer: engine.parseBackendName(process.env[engine.BACKEND_ENV]),
  });
  const net = buildNetwork(job.spec);
  const dataset = await loadDataset({
    name: job.dataset,
    ...(job.dataDir ? { dir: job.dataDir } : {}),
  });
  const train = wholeSubset(dataset, 'train');
  const test = firstN(wholeSubset(dataset, 'test'), job.recipe.testImages);
  let last = 0;
  const r = await engine.retrainPlain({
    net,
    encoding: job.encoding,
    data: { train, test },
    epochs: job.recipe.epochs,
    batchSize: job.recipe.batchSize,
    ...(job.recipe.lr > 0 ? { lr: job.recipe.lr } : {}),
    seed: job.recipe.seed,
    ...(job.recipe.maxTrainImages > 0 ? { maxTrainImages: job.recipe.maxTrainImages } : {}),
    onProgress: (p) => {
      const now = Date.now();
      if (now - last < 1000 && p.fraction < 1) return;
      last = now;
      emit({
        type: 'progress',
        id: job.id,
        phase: p.phase,
        fraction: p.fraction,
        ...(p.loss !== undefined ? { loss: p.loss } : {}),
        imagesPerSec: p.imagesPerSec,
      });
    },
  });
  const lastEpoch = r.result.epochs[r.result.epochs.length - 1];
  const meta = engine.plainModelMetadata(net, job.encoding, {
    preprocess: r.preprocess,
    classNames: dataset.classNames,
    dataset: dataset.name,
    test_top1: r.result.test_top1,
    extra: {
      ...job.metadata,
      test_images: r.result.test_images,
      retrain: { ...job.recipe },
    },
  });
  await engine.exportPlainModel(r.model, job.outDir, meta);
  r.model.dispose();
  emit({
    type: 'result',
    id: job.id,
    test_top1: r.result.test_top1,
    test_images: r.result.test_images,
    train_images_per_epoch: Math.min(
      train.indices.length,
      job.recipe.maxTrainImages > 0 ? job.recipe.maxTrainImages : Number.POSITIVE_INFINITY,
    ),
    macs: r.result.macs,
    params: r.result.params,
    seconds: r.result.seconds,
    exported: job.outDir,
    train_loss: lastEpoch?.loss ?? Number.NaN,
    train_top1: lastEpoch?.top1 ?? Number.NaN,
  });
}

const raw = process.argv[2];
if (!raw) {
  process.stderr.write('usage: retrain-worker.js <job JSON>\n');
  process.exit(2);
}
const job = JSON.parse(raw) as RetrainJob;
main(job).then(
  () => process.exit(0),
  (err: unknown) => {
    emit({ type: 'error', id: job.id, message: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  },
);

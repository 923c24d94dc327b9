/**
 * Proxy scoring with one PruningNet snapshot, in this process: one engine `EvaluationWorkers`
 * (worker threads reading the snapshot's parameters and the images from shared memory)
 * does what the evaluator service does for a search — generate the weights, recalibrate BN
 * on `recalBatches` sub-train batches, top-1 on the first `valImages` sub-val images. The
 * pool holds the largest size's images; a smaller size is a per-request slice of them
 * (engine `EvaluationSlice`), so a racing search uses one pool for all its rungs and
 * every size scores exactly as a pool of that size alone would. No services: a study of
 * hours runs as one process.
 */
import type { Encoding } from '@metaprune/core';
import { type LocalData, recalBatches, valBatches } from '../../local-data.js';
import type { ProxySize } from './config.js';

export interface Scorer {
  readonly size: ProxySize;
  /** Proxy top-1 per encoding, in input order. */
  score(encodings: readonly Encoding[], onDone?: (done: number) => void): Promise<number[]>;
  /** Evaluator-seconds spent so far (sum of the evaluations' own durations). */
  readonly evalSeconds: number;
}

export interface Scorers {
  /** One per requested size, in the order given. */
  readonly views: Scorer[];
  close(): Promise<void>;
}

export async function openScorers(o: {
  checkpoint: string;
  data: LocalData;
  sizes: readonly ProxySize[];
  batchSize: number;
  seed: number;
  workers: number;
}): Promise<Scorers> {
  if (o.sizes.length === 0) throw new RangeError('openScorers: no proxy size');
  const engine = await import('@metaprune/engine');
  await engine.initBackend({ prefer: engine.parseBackendName(process.env[engine.BACKEND_ENV]) });
  const { pnet } = await engine.loadCheckpoint(o.checkpoint);
  const b = o.batchSize;
  const valBatchesOf = (s: ProxySize) => Math.ceil(s.valImages / b);
  const maxRecal = Math.max(...o.sizes.map((s) => s.recalBatches));
  const maxVal = Math.max(...o.sizes.map(valBatchesOf));
  const recal = engine.collectImages(recalBatches(o.data, b, o.seed), {
    maxBatches: maxRecal,
    shared: true,
  });
  const val = engine.collectImages(valBatches(o.data, b), { maxBatches: maxVal, shared: true });
  const pool = await engine.EvaluationWorkers.create(
    pnet,
    { recal, val },
    { workers: o.workers, recalBatches: maxRecal, batchSize: b, valBatches: maxVal },
  );
  const views = o.sizes.map((size): Scorer => {
    let evalSeconds = 0;
    const slice = { recalBatches: size.recalBatches, valBatches: valBatchesOf(size) };
    return {
      size,
      get evalSeconds() {
        return evalSeconds;
      },
      score(encodings, onDone) {
        let done = 0;
        return Promise.all(
          encodings.map((e) =>
            pool.evaluate(e, slice).then((r) => {
              evalSeconds += r.seconds;
              onDone?.(++done);
              return r.top1;
            }),
          ),
        );
      },
    };
  });
  return { views, close: () => pool.close() };
}

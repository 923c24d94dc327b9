/**
 * Proxy scoring with one PruningNet snapshot and one proxy size, in this process: an
 * engine `EvaluatorPool` (worker threads reading the snapshot's parameters and the images
 * from shared memory) does what the evaluator service does for a search — generate the
 * weights, recalibrate BN on `recalBatches` sub-train batches, top-1 on the first
 * `valImages` sub-val images. No services: a study of hours runs as one process.
 */
import type { Encoding } from '@metaprune/core';
import { type LocalData, recalBatches, valBatches } from '../../local-data.js';
import type { ProxySize } from './config.js';

type Engine = typeof import('@metaprune/engine');
type Pool = Awaited<ReturnType<Engine['EvaluatorPool']['create']>>;

export interface Scorer {
  readonly size: ProxySize;
  /** Proxy top-1 per encoding, in input order. */
  score(encodings: readonly Encoding[], onDone?: (done: number) => void): Promise<number[]>;
  /** Evaluator-seconds spent so far (sum of the evaluations' own durations). */
  readonly evalSeconds: number;
  close(): Promise<void>;
}

export async function openScorer(o: {
  checkpoint: string;
  data: LocalData;
  size: ProxySize;
  batchSize: number;
  seed: number;
  workers: number;
}): Promise<Scorer> {
  const engine = await import('@metaprune/engine');
  await engine.initBackend({ prefer: engine.parseBackendName(process.env[engine.BACKEND_ENV]) });
  const { pnet } = await engine.loadCheckpoint(o.checkpoint);
  const b = o.batchSize;
  const valBatchCount = Math.ceil(o.size.valImages / b);
  const recal = engine.collectImages(recalBatches(o.data, b, o.seed), {
    maxBatches: o.size.recalBatches,
    shared: true,
  });
  const val = engine.collectImages(valBatches(o.data, b), {
    maxBatches: valBatchCount,
    shared: true,
  });
  const pool: Pool = await engine.EvaluatorPool.create(
    pnet,
    { recal, val },
    {
      workers: o.workers,
      recalBatches: o.size.recalBatches,
      batchSize: b,
      valBatches: valBatchCount,
    },
  );
  let evalSeconds = 0;
  return {
    size: o.size,
    get evalSeconds() {
      return evalSeconds;
    },
    async score(encodings, onDone) {
      let done = 0;
      return Promise.all(
        encodings.map((e) =>
          pool.evaluate(e).then((r) => {
            evalSeconds += r.seconds;
            onDone?.(++done);
            return r.top1;
          }),
        ),
      );
    },
    close: () => pool.close(),
  };
}

/** An evaluator worker (see pool.ts). */
import { parentPort, workerData } from 'node:worker_threads';
import { buildNetwork, type NetworkSpec } from '@metaprune/core';
import { initBackend, parseBackendName } from '../backend/select.js';
import { buildLayout } from '../pruningnet/layout.js';
import { mapSharedState } from '../pruningnet/params.js';
import { PruningNet } from '../pruningnet/pruningnet.js';
import { GenKernels } from '../pruningnet/wasm-gen.js';
import { evaluateCandidate, type ImageSet } from './evaluate.js';
import type { EvalWorkerInit, EvalWorkerReply, EvalWorkerRequest, SharedImageSet } from './pool.js';

const init = workerData as EvalWorkerInit;
const port = parentPort;
if (!port) throw new Error('evaluator worker started outside a worker thread');

const net = buildNetwork(init.spec as NetworkSpec);
const layout = buildLayout(net, { weightPrediction: init.weightPrediction });
// Only the parameters are read; the optimiser state is never touched here.
const pnet = new PruningNet(
  net,
  mapSharedState(init.state, layout),
  init.seed,
  init.weightPrediction,
);
const kernels = GenKernels.for(pnet.state, layout);
if (pnet.layout.totalRows !== layout.totalRows) throw new Error('layout mismatch');

function set(s: SharedImageSet): ImageSet {
  return {
    images: new Float32Array(s.images),
    labels: new Int32Array(s.labels),
    count: s.count,
    imageShape: s.imageShape,
  };
}
const recal = set(init.recal);
const val = set(init.val);

function reply(m: EvalWorkerReply): void {
  port?.postMessage(m);
}

port.on('message', (m: EvalWorkerRequest) => {
  try {
    const result = evaluateCandidate(pnet, m.enc, {
      recal,
      val,
      recalBatches: m.recalBatches ?? init.recalBatches,
      batchSize: init.batchSize,
      valBatches: m.valBatches ?? init.valBatches,
    });
    reply({ type: 'result', id: m.id, result });
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    reply({ type: 'error', id: m.id, message: err.message, stack: err.stack });
  }
});

initBackend({ prefer: parseBackendName(init.backend) })
  .then(() => reply({ type: 'ready', slot: kernels?.slotIndex ?? -1 }))
  .catch((e: unknown) =>
    reply({ type: 'error', id: -1, message: e instanceof Error ? e.message : String(e) }),
  );

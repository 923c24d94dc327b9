/** An evaluator worker (see pool.ts). */
import { parentPort, workerData } from 'node:worker_threads';
import { buildNetwork, type NetworkSpec } from '@metaprune/core';
import { initBackend, parseBackendName } from '../backend/select.js';
import { buildLayout } from '../pruningnet/layout.js';
import { PruningNet } from '../pruningnet/pruningnet.js';
import { evaluateCandidate, type ImageSet } from './evaluate.js';
import type { EvalWorkerInit, EvalWorkerReply, EvalWorkerRequest, SharedImageSet } from './pool.js';

const init = workerData as EvalWorkerInit;
const port = parentPort;
if (!port) throw new Error('evaluator worker started outside a worker thread');

const net = buildNetwork(init.spec as NetworkSpec);
const layout = buildLayout(net);
// Only the parameters are read; optimiser state is never touched here.
const none = new Float32Array(0);
const pnet = new PruningNet(
  net,
  {
    params: {
      w2: new Float32Array(init.params.w2),
      b2: new Float32Array(init.params.b2),
      small: new Float32Array(init.params.small),
    },
    momentum: { w2: none, b2: none, small: none },
    lastStep: new Int32Array(0),
  },
  init.seed,
);
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
      recalBatches: init.recalBatches,
      batchSize: init.batchSize,
      valBatches: init.valBatches,
    });
    reply({ type: 'result', id: m.id, result });
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    reply({ type: 'error', id: m.id, message: err.message, stack: err.stack });
  }
});

initBackend({ prefer: parseBackendName(init.backend) })
  .then(() => reply({ type: 'ready' }))
  .catch((e: unknown) =>
    reply({ type: 'error', id: -1, message: e instanceof Error ? e.message : String(e) }),
  );

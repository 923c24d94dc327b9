/** A data-parallel training worker (see parallel.ts). */
import { parentPort, workerData } from 'node:worker_threads';
import { buildNetwork, type NetworkSpec } from '@metaprune/core';
import { initBackend, parseBackendName } from '../backend/select.js';
import { layerIndex } from '../pruningnet/forward.js';
import { CatchUp, type OptimConfig } from '../pruningnet/generator.js';
import { buildLayout } from '../pruningnet/layout.js';
import { mapSharedState, type PruningNetState } from '../pruningnet/params.js';
import {
  GenScratch,
  generateLayers,
  partitionLayers,
  planCrops,
  updateLayers,
} from '../pruningnet/step.js';
import { trainShard } from '../pruningnet/tfstep.js';
import { GenKernels } from '../pruningnet/wasm-gen.js';
import { Barrier } from '../workers/barrier.js';
import type { TrainWorkerInit, TrainWorkerReply, TrainWorkerRequest } from './parallel.js';
import { linearOptim } from './schedule.js';

const init = workerData as TrainWorkerInit;
const port = parentPort;
if (!port) throw new Error('train worker started outside a worker thread');

function reply(m: TrainWorkerReply): void {
  port?.postMessage(m);
}

const net = buildNetwork(init.spec as NetworkSpec);
const layout = buildLayout(net, { weightPrediction: init.weightPrediction });
const index = layerIndex(net);
const st: PruningNetState = mapSharedState(init.state, layout);
// Claim this thread's scratch slot for the generator kernels now (reported, so the main
// thread can free it when this worker is gone).
const kernels = GenKernels.for(st, layout);
const arena = new Float32Array(init.arena);
const grads = init.grads.map((g) => new Float32Array(g));
const barrier = new Barrier(new Int32Array(init.ctl), init.shards);
const scratch = new GenScratch(layout);
let optim: OptimConfig | null = null;
let cu: CatchUp | null = null;
let images: Float32Array | null = null;
let labels: Int32Array | null = null;

/** Shard k of n images: contiguous, sizes differing by at most one. */
function shardRange(n: number, k: number, K: number): [number, number] {
  const base = Math.floor(n / K);
  const extra = n % K;
  const start = k * base + Math.min(k, extra);
  return [start, start + base + (k < extra ? 1 : 0)];
}

function step(m: Extract<TrainWorkerRequest, { type: 'step' }>): TrainWorkerReply {
  if (!optim || !cu) throw new Error('no optimiser set');
  if (!images || !labels) throw new Error('no input buffers');
  const t0 = performance.now();
  const { t, enc, n, imageShape } = m;
  const plan = planCrops(layout, enc);
  const mine = partitionLayers(layout, plan, init.shards)[init.shard] as number[];
  try {
    generateLayers(layout, st, enc, plan, scratch, arena, mine, { t, cu });
  } catch (e) {
    barrier.abort();
    throw e;
  }
  const t1 = performance.now();
  barrier.wait();
  const t2 = performance.now();
  const K = init.shards;
  const [a, b] = shardRange(n, init.shard, K);
  const per = imageShape[0] * imageShape[1] * imageShape[2];
  let loss = 0;
  let correct = 0;
  const own = grads[init.shard] as Float32Array;
  try {
    if (b > a) {
      const r = trainShard(
        layout,
        index,
        plan,
        arena,
        st.params.small,
        {
          images: images.subarray(a * per, b * per),
          labels: labels.subarray(a, b),
          n: b - a,
          imageShape,
        },
        own,
      );
      loss = r.loss;
      correct = r.correct;
    }
  } catch (e) {
    barrier.abort();
    throw e;
  }
  const t3 = performance.now();
  barrier.wait();
  const t4 = performance.now();
  const weights: number[] = [];
  const used: Float32Array[] = [];
  for (let k = 0; k < K; k++) {
    const [s, e] = shardRange(n, k, K);
    if (e > s) {
      weights.push((e - s) / n);
      used.push(grads[k] as Float32Array);
    }
  }
  updateLayers(
    layout,
    st,
    plan,
    scratch,
    used,
    weights,
    { t, lr: optim.lrAt(t), momentum: optim.momentum, classifierLrScale: optim.classifierLrScale },
    mine,
  );
  // The next step starts only when the main thread has every worker's reply, so no worker
  // can overwrite an arena another is still reading.
  const t5 = performance.now();
  return {
    type: 'done',
    loss,
    correct,
    n: b - a,
    seconds: (t5 - t0) / 1000,
    phases: {
      generate: (t1 - t0) / 1000,
      waitGenerated: (t2 - t1) / 1000,
      forwardBackward: (t3 - t2) / 1000,
      waitGradients: (t4 - t3) / 1000,
      update: (t5 - t4) / 1000,
    },
  };
}

port.on('message', (m: TrainWorkerRequest) => {
  try {
    if (m.type === 'optim') {
      optim = linearOptim(m.schedule);
      cu = new CatchUp(optim);
    } else if (m.type === 'inputs') {
      images = new Float32Array(m.images);
      labels = new Int32Array(m.labels);
    } else if (m.type === 'step') {
      reply(step(m));
    }
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    reply({ type: 'error', message: err.message, stack: err.stack });
  }
});

initBackend({ prefer: parseBackendName(init.backend) })
  .then(() => reply({ type: 'ready', slot: kernels?.slotIndex ?? -1 }))
  .catch((e: unknown) =>
    reply({ type: 'error', message: e instanceof Error ? e.message : String(e) }),
  );

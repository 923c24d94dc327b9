/**
 * Worker-thread entry of `measureEntriesInWorkers`: starts its own tfjs backend, measures
 * one shard of the plan's jobs and posts progress and the entries back.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { buildNetwork, planLatencyTable } from '@metaprune/core';
import { type BackendName, initBackend } from '../backend/select.js';
import { measureInContext } from './context.js';
import { measureEntries, warmUpBackend } from './measure.js';
import type { ShardWorkerData, WorkerMessage } from './workers.js';

const data = workerData as ShardWorkerData;
const post = (m: WorkerMessage) => parentPort?.postMessage(m);

try {
  await initBackend({ prefer: data.backend as BackendName });
  const net = buildNetwork(data.spec);
  const plan = planLatencyTable(net, data.grid);
  warmUpBackend(net, { batchSize: data.batchSize, ms: data.warmupMs });
  const common = {
    batchSize: data.batchSize,
    ...(data.warmup !== undefined ? { warmup: data.warmup } : {}),
    ...(data.repeats !== undefined ? { repeats: data.repeats } : {}),
    shard: data.shard,
    onProgress: (p: { done: number; layer: string }) =>
      post({ type: 'progress', done: p.done, layer: p.layer }),
  };
  if (data.method === 'in-context') {
    const samples = await measureInContext(net, data.grid, common);
    post({ type: 'done', entries: [], samples });
  } else {
    const entries = await measureEntries(plan, common);
    post({ type: 'done', entries, samples: [] });
  }
} catch (err) {
  post({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
}

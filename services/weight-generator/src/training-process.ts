/**
 * Child-process entry of a training job (spawned by ProcessTrainer). Receives one `start`
 * message, runs the engine's trainer, forwards progress and checkpoints over IPC and exits.
 * It ignores SIGINT / SIGTERM (the parent decides when to stop it, with a `stop` message,
 * after a checkpoint) and exits if the parent goes away.
 */
import type { FromChild, ToChild } from './runner.js';
import type { StopReason, TrainerCheckpoint } from './types.js';

const controller = new AbortController();
const pending = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
let nextId = 1;
let started = false;

function send(msg: FromChild): Promise<void> {
  return new Promise((resolve) => {
    if (!process.connected || !process.send) return resolve();
    process.send(msg, undefined, {}, () => resolve());
  });
}

function checkpoint(c: TrainerCheckpoint): Promise<void> {
  const id = nextId++;
  return new Promise<void>((resolve, reject) => {
    pending.set(id, { resolve, reject });
    void send({ type: 'checkpoint', id, checkpoint: c });
  });
}

async function run(msg: Extract<ToChild, { type: 'start' }>): Promise<void> {
  try {
    const { createTrainer } = await import('./engine-adapter.js');
    const trainer = createTrainer();
    const outcome = await trainer.train(msg.request, {
      signal: controller.signal,
      onProgress: (progress) => void send({ type: 'progress', progress }),
      onCheckpoint: checkpoint,
    });
    await send({ type: 'done', outcome });
    process.exit(0);
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    await send({ type: 'failed', error: e.message, ...(e.stack ? { stack: e.stack } : {}) });
    process.exit(1);
  }
}

process.on('message', (raw) => {
  const msg = raw as ToChild;
  switch (msg.type) {
    case 'start':
      if (!started) {
        started = true;
        void run(msg);
      }
      break;
    case 'stop':
      if (!controller.signal.aborted) controller.abort(msg.reason satisfies StopReason);
      break;
    case 'checkpoint-done': {
      const p = pending.get(msg.id);
      pending.delete(msg.id);
      if (p) {
        if (msg.error) p.reject(new Error(`saving the checkpoint failed: ${msg.error}`));
        else p.resolve();
      }
      break;
    }
  }
});
process.on('disconnect', () => process.exit(1));
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});

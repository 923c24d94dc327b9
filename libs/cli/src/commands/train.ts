import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildNetwork, type NetworkSpec } from '@metaprune/core';
import { num, parseFlags, requireStr, str } from '../args.js';
import { UsageError } from '../errors.js';
import { DATA_OPTIONS, datasetClasses, prepareLocalData, trainBatches } from '../local-data.js';
import { NETWORK_OPTIONS, networkFromFlags } from '../network-flags.js';
import { ProgressBar } from '../ui/progress.js';
import { trainRemote } from './train-remote.js';

export const trainHelp = `metaprune train --network mobilenetv2 --preset small --width 0.5 --dataset fashion-mnist
                (or --dataset cifar10 --data-dir DIR, or --dataset imagefolder:DIR) --epochs N --out DIR [--resume] [--batch 64] [--lr 0.4] [--seed 0]
                [--workers 2] [--backend wasm|cpu|tensorflow|tensorflow-gpu] [--json]
metaprune train --remote ...   (through the weight-generator service of "metaprune up")
  Trains a PruningNet by stochastic structure sampling. Writes a checkpoint every epoch
  (atomic, checksummed); --resume continues exactly where the last checkpoint stopped.`;

/** What a checkpoint directory records besides the engine's own checkpoint. */
export interface RunInfo {
  spec: NetworkSpec;
  dataset: string;
  dataDir?: string;
  splitSeed: number;
  valPerClass: number;
  batchSize: number;
  lr: number;
  seed: number;
  /** Channels an image folder was stored with (absent for other datasets and older runs). */
  imageChannels?: number;
}

export const RUN_FILE = 'run.json';

export function readRunInfo(dir: string): RunInfo {
  const file = join(dir, RUN_FILE);
  if (!existsSync(file))
    throw new UsageError(
      `--checkpoint: ${dir} has no ${RUN_FILE}; expected a directory written by "metaprune train --out"`,
    );
  return JSON.parse(readFileSync(file, 'utf8')) as RunInfo;
}

export async function trainCommand(argv: string[]): Promise<number> {
  if (argv.includes('--remote')) return trainRemote(argv);
  const v = parseFlags(argv, {
    ...NETWORK_OPTIONS,
    ...DATA_OPTIONS,
    epochs: { type: 'string' },
    out: { type: 'string' },
    resume: { type: 'boolean' },
    batch: { type: 'string' },
    lr: { type: 'string' },
    seed: { type: 'string' },
    steps: { type: 'string' },
    workers: { type: 'string' },
    backend: { type: 'string' },
    json: { type: 'boolean' },
  });
  const out = resolve(requireStr(v, 'out'));
  const resume = v['resume'] === true;
  const saved = resume && existsSync(join(out, RUN_FILE)) ? readRunInfo(out) : undefined;
  const net = saved
    ? buildNetwork(saved.spec)
    : networkFromFlags(v, { preset: 'small', numClasses: await datasetClasses(v) });
  const epochs = num(v, 'epochs', { min: 1, max: 10000, integer: true }, 1) as number;
  const batchSize =
    saved?.batchSize ?? (num(v, 'batch', { min: 1, max: 4096, integer: true }, 64) as number);
  const lr = saved?.lr ?? (num(v, 'lr', { min: 1e-6, max: 10 }, 0.4) as number);
  const seed =
    saved?.seed ?? (num(v, 'seed', { min: 0, max: 2 ** 31, integer: true }, 0) as number);
  const steps = num(v, 'steps', { min: 1, max: 1e9, integer: true });
  const workers = num(v, 'workers', { min: 0, max: 64, integer: true }, 2) as number;
  const engine = await import('@metaprune/engine');
  const backend = await engine.initBackend({
    prefer: engine.parseBackendName(str(v, 'backend') ?? process.env[engine.BACKEND_ENV]),
  });
  const data = await prepareLocalData(v, net, saved);
  mkdirSync(out, { recursive: true });
  const info: RunInfo = {
    spec: net.spec,
    dataset: data.dataset.name,
    dataDir: str(v, 'data-dir'),
    splitSeed: data.splitSeed,
    valPerClass: data.valPerClass,
    batchSize,
    lr,
    seed,
    ...(data.dataset.name.startsWith('imagefolder:') ? { imageChannels: data.imageChannels } : {}),
  };
  if (!saved) writeFileSync(join(out, RUN_FILE), `${JSON.stringify(info, null, 2)}\n`);
  const batches = trainBatches(data, batchSize, seed, false);
  const pnet = engine.createPruningNet(net, { seed, shared: workers > 0 });
  const stepper = workers > 0 ? await engine.ParallelStepper.create(pnet, { workers }) : undefined;
  const perEpoch = steps ?? batches.batchesPerEpoch;
  const bar = new ProgressBar({
    label: 'train',
    total: epochs * perEpoch,
    unit: 'step',
    silent: v['json'] === true,
  });
  process.stderr.write(
    v['json']
      ? ''
      : `backend ${backend.name}, ${data.split.train.indices.length} sub-train images, ${epochs} epoch(s) of ${perEpoch} steps\n`,
  );
  let result: Awaited<ReturnType<typeof engine.trainPruningNet>>;
  try {
    result = await engine.trainPruningNet({
      pnet,
      data: batches,
      epochs,
      lr,
      seed,
      stepper,
      stepsPerEpoch: steps,
      checkpointDir: out,
      resumeFrom: resume ? out : undefined,
      progressEvery: 10,
      onProgress: (p) => {
        if (p.phase === 'step') {
          bar.update(
            p.globalStep,
            `loss ${p.loss.toFixed(3)} acc ${(100 * p.accuracy).toFixed(1)}% ${p.imagesPerSec.toFixed(0)} img/s`,
          );
        }
      },
    });
  } finally {
    await stepper?.close();
  }
  bar.finish();
  const summary = {
    checkpoint: out,
    backend: backend.name,
    epochs: result.history,
    position: result.position,
  };
  console.log(v['json'] ? JSON.stringify(summary) : `checkpoint written to ${out}`);
  return 0;
}

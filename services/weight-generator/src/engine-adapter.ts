/**
 * The thin adapter between this service's seams (types.ts) and @metaprune/engine:
 * - `createTrainer()` (runs in the training child process): the data pipeline of a
 *   ResolvedTrainingConfig, `trainPruningNet` with data-parallel workers, checkpoints handed
 *   to the service as they are written, a full-width validation at every epoch end;
 * - `createWeightEngine()` (runs in the service): loads checkpoints, generates + crops the
 *   weights of a candidate as named tensors, exports plain tfjs models (BN statistics
 *   recalibrated on sub-train first).
 * Loaded lazily (dynamic import), so that importing the package does not load tfjs.
 */
import { rm } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import {
  buildNetwork,
  type Encoding,
  fullEncoding,
  type Network,
  validateEncoding,
} from '@metaprune/core';
import {
  BatchIterator,
  type Dataset,
  FASHION_MNIST_CLASSES,
  loadCifar10,
  loadIdxDataset,
  loadImageFolder,
  type NetworkData,
  networkData,
} from '@metaprune/data';
import {
  buildPlainModel,
  collectImages,
  createPruningNet,
  evaluateCandidate,
  exportPlainModel,
  generateCandidate,
  generatedPlainWeights,
  type ImageSet,
  initBackend,
  loadCheckpoint,
  ParallelStepper,
  type PruningNet,
  parseBackendName,
  plainModelMetadata,
  trainPruningNet,
} from '@metaprune/engine';
import { type Logger, nullLogger } from '@metaprune/runtime';
import type {
  ExportRequest,
  LoadedPruningNet,
  NamedTensor,
  ResolvedTrainingConfig,
  Trainer,
  TrainerHooks,
  TrainerOutcome,
  TrainerRequest,
  WeightEngine,
} from './types.js';

/** Batch size of BN recalibration and validation. */
const EVAL_BATCH = 64;
/** Recalibration batches of the epoch-end validation. */
const EPOCH_RECAL_BATCHES = 20;
/** Validation images scored at an epoch end (the first ones of sub-val). */
const EPOCH_VAL_BATCHES = 16;
/** Epochs shorter than this skip the epoch-end validation (quick test runs). */
const MIN_STEPS_FOR_VALIDATION = 20;

let backendReady: Promise<unknown> | undefined;
function ensureBackend(backend: string): Promise<unknown> {
  backendReady ??= initBackend(
    backend === 'auto' ? {} : { prefer: parseBackendName(backend) ?? 'cpu' },
  );
  return backendReady;
}

/** The dataset, split and preprocessing a configuration describes (DESIGN.md 3). */
export type PreparedData = NetworkData;

const datasets = new Map<string, Promise<Dataset>>();

function loadData(cfg: ResolvedTrainingConfig): Promise<Dataset> {
  const { inputSize, inputChannels } = cfg.network;
  const key = `${cfg.dataFormat}:${cfg.dataDir}:${inputSize}:${inputChannels}`;
  let p = datasets.get(key);
  if (!p) {
    p =
      cfg.dataFormat === 'cifar10'
        ? loadCifar10(cfg.dataDir)
        : cfg.dataFormat === 'imagefolder'
          ? // Decoded exactly as the evaluators decode it (services/evaluator/src/data.ts).
            loadImageFolder(cfg.dataDir, {
              size: inputSize,
              channels: inputChannels === 1 ? 1 : 3,
              onSkip: (b) => process.stderr.write(`skipped ${b.path}: ${b.reason}\n`),
            })
          : loadIdxDataset(cfg.dataDir, { name: cfg.dataset, classNames: FASHION_MNIST_CLASSES });
    datasets.set(key, p);
    p.catch(() => datasets.delete(key));
  }
  return p;
}

/**
 * Sub-train / sub-val: stratified, seeded by the config's seed, validation_images spread
 * evenly over the classes; preprocessing normalises with sub-train's channel statistics
 * and pads / resizes / replicates to the network's input.
 */
export async function prepareData(cfg: ResolvedTrainingConfig): Promise<PreparedData> {
  const dataset = await loadData(cfg);
  return networkData(dataset, {
    valPerClass: Math.max(1, Math.round(cfg.validationImages / dataset.classNames.length)),
    splitSeed: cfg.seed,
    inputSize: cfg.network.inputSize,
    inputChannels: cfg.network.inputChannels,
  });
}

function recalSet(data: PreparedData, seed: number, batches: number): ImageSet {
  const it = new BatchIterator(data.split.train, {
    batchSize: EVAL_BATCH,
    seed: seed + 1,
    preprocess: data.preprocess,
    shuffle: true,
  });
  return collectImages(it, { maxBatches: batches });
}

function valSet(data: PreparedData, batches: number): ImageSet {
  const it = new BatchIterator(data.split.val, {
    batchSize: EVAL_BATCH,
    preprocess: data.preprocess,
    shuffle: false,
  });
  return collectImages(it, { maxBatches: batches });
}

/** Default data-parallel training threads: two where there are two cores. */
export function defaultTrainingWorkers(): number {
  return Math.max(1, Math.min(2, availableParallelism()));
}

async function train(req: TrainerRequest, hooks: TrainerHooks): Promise<TrainerOutcome> {
  const cfg = req.config;
  await ensureBackend(req.backend);
  const net = buildNetwork(cfg.network);
  const data = await prepareData(cfg);
  const batches = new BatchIterator(data.split.train, {
    batchSize: cfg.batchSize,
    seed: cfg.seed,
    preprocess: data.preprocess,
    shuffle: true,
  });
  const stepsPerEpoch = Math.min(
    cfg.maxStepsPerEpoch > 0 ? cfg.maxStepsPerEpoch : batches.batchesPerEpoch,
    batches.batchesPerEpoch,
  );
  const workers = cfg.workers ?? defaultTrainingWorkers();
  const pnet = createPruningNet(net, {
    seed: cfg.seed,
    shared: workers > 1,
    weightPrediction: cfg.noWeightPrediction !== true,
  });
  if (req.initFrom) await initFromCheckpoint(pnet, req.initFrom);

  const engineDir = join(req.workDir, 'engine');
  await rm(engineDir, { recursive: true, force: true });
  const validate = stepsPerEpoch >= MIN_STEPS_FOR_VALIDATION;
  const recal = validate ? recalSet(data, cfg.seed, EPOCH_RECAL_BATCHES) : undefined;
  const val = validate ? valSet(data, EPOCH_VAL_BATCHES) : undefined;

  // Checkpoints are handed over in order; the engine does not wait for them (it never
  // touches an older checkpoint directory again: keepCheckpoints is unbounded).
  let handing: Promise<void> = Promise.resolve();
  let handingError: unknown;
  const handOver = (dir: string, epochsTrained: number, complete: boolean, acc?: number) => {
    handing = handing
      .then(() =>
        hooks.onCheckpoint({
          dir,
          epochsTrained,
          epochComplete: complete,
          ...(acc !== undefined ? { validationAccuracy: acc } : {}),
        }),
      )
      .then(() => rm(dir, { recursive: true, force: true }))
      .catch((err: unknown) => {
        handingError ??= err;
      });
  };
  let epochAccuracy: number | undefined;

  const stepper = workers > 1 ? await ParallelStepper.create(pnet, { workers }) : undefined;
  let result: Awaited<ReturnType<typeof trainPruningNet>>;
  try {
    result = await trainPruningNet({
      pnet,
      data: batches,
      epochs: cfg.epochs,
      batchSize: cfg.batchSize,
      lr: cfg.learningRate,
      momentum: cfg.momentum,
      seed: cfg.seed,
      stepsPerEpoch,
      ...(stepper ? { stepper } : {}),
      checkpointDir: engineDir,
      keepCheckpoints: Number.MAX_SAFE_INTEGER,
      ...(req.resumeFrom ? { resumeFrom: req.resumeFrom } : {}),
      signal: hooks.signal,
      progressEvery: 1,
      onProgress: (p) => {
        switch (p.phase) {
          case 'step':
            hooks.onProgress({
              epoch: p.epoch + 1,
              epochs: p.epochs,
              step: p.step,
              stepsPerEpoch: p.stepsPerEpoch,
              loss: p.loss,
              accuracy: p.accuracy,
              learningRate: p.lr,
              imagesPerSecond: p.imagesPerSec,
              etaSeconds: p.etaSec,
            });
            break;
          case 'epoch':
            epochAccuracy = undefined;
            if (recal && val) {
              epochAccuracy = evaluateCandidate(pnet, fullEncoding(net), {
                recal,
                val,
                recalBatches: EPOCH_RECAL_BATCHES,
                batchSize: EVAL_BATCH,
              }).top1;
            }
            break;
          case 'checkpoint':
            if (p.checkpoint) handOver(p.checkpoint, p.epoch, true, epochAccuracy);
            break;
          case 'stopped':
            // a pause keeps the mid-epoch state; a cancel needs nothing more
            if (p.checkpoint && hooks.signal.reason === 'pause') {
              handOver(p.checkpoint, p.epoch, false);
            }
            break;
        }
      },
    });
  } finally {
    await stepper?.close();
  }
  await handing;
  if (handingError) throw handingError;
  return result.stopped ? { status: 'stopped' } : { status: 'completed' };
}

/**
 * Starts a new training run from the weights of a checkpoint (continuing a PruningNet):
 * the generator parameters are loaded, the optimiser state and step counters start afresh.
 */
async function initFromCheckpoint(pnet: PruningNet, dir: string): Promise<void> {
  const { pnet: loaded } = await loadCheckpoint(dir);
  if (loaded.weightPrediction !== pnet.weightPrediction) {
    throw new Error(
      `the PruningNet to continue was trained ${loaded.weightPrediction ? 'with' : 'without'} weight prediction, this job ${pnet.weightPrediction ? 'with' : 'without'}`,
    );
  }
  loaded.flush();
  const from = loaded.state.params;
  const to = pnet.state.params;
  to.w2.set(from.w2);
  to.b2.set(from.b2);
  to.small.set(from.small);
  pnet.state.momentum.w2.fill(0);
  pnet.state.momentum.b2.fill(0);
  pnet.state.momentum.small.fill(0);
  pnet.state.lastStep.fill(-1);
  pnet.step = 0;
  pnet.flushedAt = 0;
}

export function createTrainer(): Trainer {
  return { train };
}

/** Generated + cropped tensors of a candidate, named "<layer>.<part>", in layer order. */
export function candidateTensors(pnet: PruningNet, enc: Encoding): NamedTensor[] {
  const cand = generateCandidate(pnet, enc);
  const { layout, net } = pnet;
  const small = pnet.state.params.small;
  const out: NamedTensor[] = [];
  cand.plan.forEach((p, i) => {
    const layer = net.layers[i]!;
    const g = layout.gens[i];
    if (g) {
      out.push({
        name: `${layer.name}.weight`,
        shape: [...p.shape],
        values: cand.arena.slice(g.rowOff, g.rowOff + p.size),
      });
      return;
    }
    const f = layout.fcs.find((x) => x.index === i);
    if (!f) throw new Error(`layer ${layer.name} has neither a generator nor a classifier`);
    out.push({
      name: `${layer.name}.weight`,
      shape: [...p.shape],
      values: small.slice(f.wOff, f.wOff + p.size),
    });
    out.push({
      name: `${layer.name}.bias`,
      shape: [f.cout],
      values: small.slice(f.bOff, f.bOff + f.cout),
    });
  });
  return out;
}

export interface WeightEngineOptions {
  backend: string;
  logger?: Logger;
}

/** Writes a candidate of a checkpoint as a plain tfjs layers model (runs in a child process). */
export async function exportCandidate(req: ExportRequest): Promise<void> {
  await ensureBackend(req.backend);
  const { pnet } = await loadCheckpoint(req.checkpointDir);
  const net: Network = pnet.net;
  const enc = validateEncoding(net, req.encoding);
  const data = await prepareData(req.config);
  const set = recalSet(data, req.config.seed, req.recalBatches);
  const model = buildPlainModel(net, enc, {
    init: generatedPlainWeights(pnet, enc, set, { batchSize: EVAL_BATCH }),
    inputPreprocess: data.preprocess,
  });
  try {
    await exportPlainModel(
      model,
      req.outDir,
      plainModelMetadata(net, enc, {
        preprocess: data.preprocess,
        classNames: data.dataset.classNames,
        dataset: req.config.dataset,
        extra: { ...req.metadata, recal_batches: Math.ceil(set.count / EVAL_BATCH) },
      }),
    );
  } finally {
    model.dispose();
  }
}

export function createWeightEngine(opts: WeightEngineOptions): WeightEngine {
  const logger = opts.logger ?? nullLogger;
  return {
    async load(dir: string, _cfg: ResolvedTrainingConfig): Promise<LoadedPruningNet> {
      await ensureBackend(opts.backend);
      const t0 = Date.now();
      const { pnet } = await loadCheckpoint(dir);
      logger.debug('checkpoint loaded by the engine', { dir, ms: Date.now() - t0 });
      const net: Network = pnet.net;
      return {
        async generate(encoding: Encoding) {
          return candidateTensors(pnet, validateEncoding(net, encoding));
        },
        dispose() {
          // parameters are plain arrays: nothing to release beyond dropping the reference
        },
      };
    },
  };
}

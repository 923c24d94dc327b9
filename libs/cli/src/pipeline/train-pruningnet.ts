/**
 * Phase: train a PruningNet through the weight generator (StartTraining, then GetTraining
 * until the job ends), with a live progress line. An abort cancels the remote job.
 */
import type { Network } from '@metaprune/core';
import { weightgen } from '@metaprune/proto';
import {
  isTerminal,
  networkFromProto,
  specToProto,
  unary,
  weightGeneratorClient,
} from '@metaprune/wire';
import { formatSeconds } from '../ui/progress.js';
import type { TrainRecipe } from './config.js';
import { bar, pct, type Reporter } from './reporter.js';
import { throwIfAborted } from './session.js';

export interface TrainedPruningNet {
  pruningnetId: string;
  version: number;
  jobId: string;
  /** The network the PruningNet generates weights for, as the service resolved it. */
  network: Network;
  record: weightgen.PruningNet;
  seconds: number;
  /** Last reported training loss and accuracy, and sub-val accuracy when measured. */
  loss: number;
  accuracy: number;
  validationAccuracy: number | undefined;
}

export interface TrainOptions {
  address: string;
  network: Network;
  dataset: string;
  recipe: TrainRecipe;
  displayName?: string;
  reporter: Reporter;
  signal?: AbortSignal;
  label?: string;
  /** The RQ5 ablation: one shared tensor per layer, cropped (no weight prediction). */
  noWeightPrediction?: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function statusLine(label: string, p: weightgen.TrainingProgress, elapsed: number): string {
  const total = Math.max(1, p.epochs * Math.max(1, p.stepsPerEpoch));
  const done = p.epoch > 0 ? (p.epoch - 1) * p.stepsPerEpoch + p.step : 0;
  const parts = [
    `${label} ${bar(done / total)} step ${done}/${p.stepsPerEpoch ? total : '?'}`,
    `epoch ${p.epoch}/${p.epochs}`,
    `loss ${p.loss.toFixed(3)}`,
    `acc ${pct(p.accuracy)}`,
    `${p.imagesPerSecond.toFixed(0)} img/s`,
    `ETA ${p.etaSeconds > 0 ? formatSeconds(p.etaSeconds) : '--:--'}`,
    `${formatSeconds(elapsed)} elapsed`,
  ];
  if (p.validationAccuracy !== undefined) parts.push(`sub-val ${pct(p.validationAccuracy)}`);
  return parts.join('  ');
}

export async function trainPruningNet(o: TrainOptions): Promise<TrainedPruningNet> {
  const client = weightGeneratorClient(o.address);
  const label = o.label ?? 'train';
  const t0 = Date.now();
  let jobId: string | undefined;
  try {
    const started = await unary(
      client,
      client.startTraining,
      weightgen.StartTrainingRequest.fromPartial({
        config: {
          network: specToProto(o.network.spec),
          dataset: o.dataset,
          epochs: o.recipe.epochs,
          batchSize: o.recipe.batchSize,
          learningRate: o.recipe.learningRate,
          momentum: 0.9,
          seed: o.recipe.seed,
          maxStepsPerEpoch: o.recipe.stepsPerEpoch,
          validationImages: o.recipe.validationImages,
          noWeightPrediction: o.noWeightPrediction === true,
        },
        displayName: o.displayName ?? '',
      }),
      { timeoutMs: 30_000 },
    );
    jobId = started.jobId;
    o.reporter.line(`training job ${jobId}: PruningNet ${started.pruningnetId}`);
    let job: weightgen.TrainingJob | undefined;
    let lastSeq = -1;
    for (;;) {
      throwIfAborted(o.signal);
      job = (await unary(client, client.getTraining, { jobId }, { timeoutMs: 30_000 })).job;
      const p = job?.progress;
      if (p && p.stepsPerEpoch > 0 && Number(p.sequence) !== lastSeq) {
        lastSeq = Number(p.sequence);
        o.reporter.status(
          statusLine(label, p, (Date.now() - t0) / 1000),
          p.checkpointVersion !== undefined,
        );
      }
      if (p && isTerminal(p.state)) break;
      await sleep(500);
    }
    o.reporter.clear();
    const p = job!.progress!;
    if (p.state !== weightgen.TrainingState.SUCCEEDED) {
      throw new Error(
        `training job ${jobId} ended ${weightgen.trainingStateToJSON(p.state)}${job?.error ? `: ${job.error}` : ''}`,
      );
    }
    const list = await unary(
      client,
      client.listPruningNets,
      { pruningnetId: started.pruningnetId, pageSize: 1000, pageToken: '', latestOnly: false },
      { timeoutMs: 30_000 },
    );
    const record = list.pruningnets.find((n) => n.version === job!.latestVersion);
    if (!record?.network) {
      throw new Error(
        `PruningNet ${started.pruningnetId} v${job!.latestVersion} is not listed by the weight generator`,
      );
    }
    return {
      pruningnetId: started.pruningnetId,
      version: job!.latestVersion,
      jobId,
      network: networkFromProto(record.network),
      record,
      seconds: (Date.now() - t0) / 1000,
      loss: p.loss,
      accuracy: p.accuracy,
      validationAccuracy: record.validationAccuracy ?? p.validationAccuracy,
    };
  } catch (err) {
    o.reporter.clear();
    if (jobId && o.signal?.aborted) {
      await unary(client, client.cancelTraining, { jobId }, { timeoutMs: 5000 }).catch(() => {});
    }
    throw err;
  } finally {
    client.close();
  }
}

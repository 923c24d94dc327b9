/**
 * The study's one PruningNet run: `chunks` chunks of `stepsPerChunk` steps (the learning
 * rate decays linearly over all of them), a resumable checkpoint after every chunk in
 * `<work>/pruningnet/train`, and a copy kept after each chunk named in `snapshots`
 * (`<work>/pruningnet/c<N>`), which the proxy scores and searches load. A unit file per
 * snapshot records its loss, accuracy and duration.
 */
import { cpSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Network } from '@metaprune/core';
import { type LocalData, trainBatches } from '../../local-data.js';
import { formatSeconds } from '../../ui/progress.js';
import { bar, type Reporter } from '../reporter.js';
import type { StudyConfig } from './config.js';
import type { UnitStore } from './units.js';

export interface SnapshotUnit {
  chunk: number;
  steps: number;
  images: number;
  /** Training length in epochs of the sub-train split. */
  epochs: number;
  loss: number;
  accuracy: number;
  /** Wall seconds of the whole run up to this snapshot (this process only on a resume). */
  seconds: number;
  finishedAt: string;
}

export const snapshotDir = (work: string, chunk: number) => join(work, 'pruningnet', `c${chunk}`);
export const snapshotUnit = (chunk: number) => `pruningnet/c${chunk}`;

/** Steps of the resumable PruningNet checkpoint in `work` (0 when there is none). */
export function trainedSteps(work: string): number {
  try {
    const latest = JSON.parse(
      readFileSync(join(work, 'pruningnet', 'train', 'latest.json'), 'utf8'),
    ) as { checkpoint?: string };
    return Number(/g(\d+)$/.exec(latest.checkpoint ?? '')?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** True when every snapshot's checkpoint is on disk. */
export function snapshotsReady(cfg: StudyConfig, work: string): boolean {
  return cfg.pruningnet.snapshots.every((c) =>
    existsSync(join(snapshotDir(work, c), 'manifest.json')),
  );
}

export async function trainStudyPruningNet(o: {
  cfg: StudyConfig;
  net: Network;
  data: LocalData;
  work: string;
  units: UnitStore;
  reporter: Reporter;
  /** Stops at the next step with a checkpoint there (a rerun resumes from it). */
  signal?: AbortSignal;
}): Promise<void> {
  const { cfg, net, data, work, units, reporter: ui } = o;
  const p = cfg.pruningnet;
  if (snapshotsReady(cfg, work)) return;
  const engine = await import('@metaprune/engine');
  const trainDir = join(work, 'pruningnet', 'train');
  const resume = existsSync(join(trainDir, 'latest.json'));
  const pnet = engine.createPruningNet(net, { seed: p.seed, shared: cfg.jobs > 1 });
  const stepper =
    cfg.jobs > 1 ? await engine.ParallelStepper.create(pnet, { workers: cfg.jobs }) : undefined;
  const perImage = data.split.train.indices.length;
  const t0 = Date.now();
  ui.line(
    `PruningNet: ${p.chunks} chunks x ${p.stepsPerChunk} steps x ${p.batchSize} images (${((p.chunks * p.stepsPerChunk * p.batchSize) / perImage).toFixed(2)} epochs of ${perImage} sub-train images)${resume ? ', resuming from the last checkpoint' : ''}`,
  );
  try {
    await engine.trainPruningNet({
      pnet,
      data: trainBatches(data, p.batchSize, p.seed, false),
      epochs: p.chunks,
      seed: p.seed,
      stepper,
      stepsPerEpoch: p.stepsPerChunk,
      checkpointDir: trainDir,
      resumeFrom: resume ? trainDir : undefined,
      progressEvery: 10,
      ...(o.signal ? { signal: o.signal } : {}),
      onProgress: (e) => {
        if (e.phase === 'step') {
          ui.status(
            `pruningnet ${bar(e.globalStep / e.totalSteps)} step ${e.globalStep}/${e.totalSteps} chunk ${e.epoch}/${e.epochs} loss ${e.loss.toFixed(3)} acc ${(100 * e.accuracy).toFixed(1)}% ${e.imagesPerSec.toFixed(0)} img/s ETA ${formatSeconds(e.etaSec)}`,
          );
        } else if (e.phase === 'checkpoint' && e.checkpoint && p.snapshots.includes(e.epoch)) {
          const dst = snapshotDir(work, e.epoch);
          rmSync(dst, { recursive: true, force: true });
          cpSync(e.checkpoint, dst, { recursive: true });
          const steps = e.epoch * p.stepsPerChunk;
          const unit: SnapshotUnit = {
            chunk: e.epoch,
            steps,
            images: steps * p.batchSize,
            epochs: (steps * p.batchSize) / perImage,
            loss: e.loss,
            accuracy: e.accuracy,
            seconds: (Date.now() - t0) / 1000,
            finishedAt: new Date().toISOString(),
          };
          units.put(snapshotUnit(e.epoch), unit);
          ui.line(
            `  snapshot after chunk ${e.epoch} (${unit.epochs.toFixed(2)} epochs): loss ${e.loss.toFixed(3)}, train acc ${(100 * e.accuracy).toFixed(1)}%`,
          );
        }
      },
    });
  } finally {
    await stepper?.close();
    ui.clear();
  }
}

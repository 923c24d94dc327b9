/**
 * The study's retraining units, in the order they run (the most informative first, since
 * a run can stop at any point): the stability subset with the recipe, the same with twice
 * the recipe, the headline networks with the other seeds, then the remaining candidates.
 * Each unit is one network, one length, one seed; its file records test top-1 and where
 * its model went (headline networks under <out>/models, the rest under the work folder).
 */
import { join } from 'node:path';
import type { NetworkSpec } from '@metaprune/core';
import type { RetrainJob, RetrainOutcome } from '../retrain-job.js';
import type { CandidatesUnit, StudyCandidate } from './candidates.js';
import type { StudyConfig } from './config.js';

export interface RetrainUnit {
  candidate: string;
  epochs: number;
  seed: number;
  encoding: number[];
  macs: number;
  params: number;
  test_top1: number;
  test_images: number;
  train_images_per_epoch: number;
  seconds: number;
  train_loss: number;
  train_top1: number;
  /** model.json folder, relative to the study's output folder (headline networks only). */
  model: string | null;
  finishedAt: string;
}

export const retrainUnitName = (candidate: string, epochs: number, seed: number) =>
  `retrain/${candidate}-ep${epochs}-s${seed}`;

export interface PlannedRetrain {
  name: string;
  candidate: StudyCandidate;
  epochs: number;
  seed: number;
  /** Its model is kept in the output folder (headline rows of summary.json). */
  keepModel: boolean;
}

export function plannedRetrains(cfg: StudyConfig, c: CandidatesUnit): PlannedRetrain[] {
  const E = cfg.retrain.epochs;
  const [s1, ...others] = cfg.retrain.seeds;
  const seed1 = s1 ?? 1;
  const byId = new Map(c.candidates.map((x) => [x.id, x]));
  const out: PlannedRetrain[] = [];
  const seen = new Set<string>();
  const add = (cand: StudyCandidate | undefined, epochs: number, seed: number) => {
    if (!cand) return;
    const name = retrainUnitName(cand.id, epochs, seed);
    if (seen.has(name)) return;
    seen.add(name);
    out.push({ name, candidate: cand, epochs, seed, keepModel: !!cand.headline && epochs === E });
  };
  for (const id of c.stability) add(byId.get(id), E, seed1);
  for (const id of c.stability) add(byId.get(id), 2 * E, seed1);
  for (const seed of others) for (const x of c.candidates) if (x.headline) add(x, E, seed);
  for (const x of c.candidates) add(x, E, seed1);
  return out;
}

export function retrainJob(
  cfg: StudyConfig,
  spec: NetworkSpec,
  p: PlannedRetrain,
  out: string,
  work: string,
): RetrainJob {
  return {
    id: p.name,
    label: `${p.candidate.id} ${p.epochs}ep s${p.seed}`,
    spec,
    encoding: p.candidate.encoding,
    dataset: 'fashion-mnist',
    recipe: {
      epochs: p.epochs,
      batchSize: cfg.retrain.batchSize,
      maxTrainImages: cfg.retrain.images,
      lr: 0,
      seed: p.seed,
      testImages: cfg.retrain.testImages,
    },
    outDir: join(p.keepModel ? out : work, 'models', p.name.replace(/^retrain\//, '')),
    metadata: {
      study: 'metaprune fidelity',
      candidate: p.candidate.id,
      source: p.candidate.source,
      ...(p.candidate.headline ? { headline: p.candidate.headline } : {}),
      seed: p.seed,
    },
  };
}

export function retrainUnit(p: PlannedRetrain, r: RetrainOutcome): RetrainUnit {
  return {
    candidate: p.candidate.id,
    epochs: p.epochs,
    seed: p.seed,
    encoding: p.candidate.encoding,
    macs: r.macs,
    params: r.params,
    test_top1: r.test_top1,
    test_images: r.test_images,
    train_images_per_epoch: r.train_images_per_epoch,
    seconds: r.seconds,
    train_loss: r.train_loss,
    train_top1: r.train_top1,
    model: p.keepModel ? join('models', p.name.replace(/^retrain\//, '')) : null,
    finishedAt: new Date().toISOString(),
  };
}

/**
 * One retraining job: a pruned network trained from scratch as a plain network (engine
 * `retrainPlain`, no generators), its test-set top-1 measured, and the model exported as a
 * tfjs model (model.json + weights) whose metadata records `test_top1` and the job's extras.
 * Runs in a child process (`retrain-worker.ts`) so several run at once, one per core.
 */
import type { NetworkSpec } from '@metaprune/core';
import type { RetrainRecipe } from './config.js';

export interface RetrainJob {
  /** Unique within a run; names the job in progress lines. */
  id: string;
  label: string;
  spec: NetworkSpec;
  encoding: number[];
  dataset: 'fashion-mnist' | 'cifar10';
  /** Dataset directory (default: the dataset's system location). */
  dataDir?: string;
  recipe: RetrainRecipe;
  /** Export directory: model.json and its weights file are written here. */
  outDir: string;
  /** Extra metadata recorded in model.json (role, budget, proxy top-1, ids...). */
  metadata: Record<string, unknown>;
}

export interface RetrainOutcome {
  id: string;
  test_top1: number;
  test_images: number;
  train_images_per_epoch: number;
  macs: number;
  params: number;
  seconds: number;
  /** Directory holding model.json. */
  exported: string;
  /** Final training loss and top-1 (last epoch). */
  train_loss: number;
  train_top1: number;
}

/** Lines the worker prints on stdout, one JSON object each. */
export type WorkerMessage =
  | {
      type: 'progress';
      id: string;
      phase: 'train' | 'eval';
      fraction: number;
      loss?: number;
      imagesPerSec: number;
    }
  | ({ type: 'result' } & RetrainOutcome)
  | { type: 'error'; id: string; message: string };

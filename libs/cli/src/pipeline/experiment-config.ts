/**
 * Configuration of `metaprune experiment` (issue 8): which networks, the PruningNet and
 * retraining recipes, the searches, the latency budget, the fidelity study and the
 * ablation. The default takes about 75 minutes on a 2-core machine; `--quick` a
 * few minutes (it runs in `npm test`).
 */
import type { NetworkSpecInput } from '@metaprune/core';
import {
  FASHION_MNIST,
  type RetrainRecipe,
  type SearchRecipe,
  type TrainRecipe,
} from './config.js';

export interface ExperimentNetwork {
  /** Short key: "mobilenetv2", "resnet50". */
  key: string;
  spec: NetworkSpecInput & { family: string };
  train: TrainRecipe;
  search: SearchRecipe;
  /** MACs budgets, fractions of the full network. */
  budgetFractions: number[];
}

export interface ExperimentConfig {
  dataset: 'fashion-mnist';
  /** The first network also gets the latency budget, the fidelity study and the ablation. */
  networks: ExperimentNetwork[];
  retrain: RetrainRecipe;
  /** Latency budget: table grid points per axis, constant fit / validation networks. */
  latency: { grid: number; fit: number; validate: number; warmupMs: number };
  /** Random MACs-stratified candidates added to the fidelity study (plus winners and baselines). */
  fidelityRandom: number;
  /** At least this many distinct candidates in the fidelity study. */
  fidelityMin: number;
  /**
   * Retraining-seed variance: the first network's middle MACs row (winner and uniform
   * baseline) is also retrained with these seeds (besides `retrain.seed`); empty: none.
   */
  seedStudy: number[];
  evaluators: number;
  retrainConcurrency: number;
  seed: number;
}

export function experimentConfig(quick = false): ExperimentConfig {
  if (quick) {
    const search: SearchRecipe = {
      generations: 2,
      population: 4,
      recalibrationBatches: 1,
      batchSize: 32,
      validationImages: 64,
      seed: 1,
    };
    const train: TrainRecipe = {
      epochs: 1,
      batchSize: 32,
      stepsPerEpoch: 4,
      learningRate: 0.1,
      seed: 1,
      validationImages: 500,
    };
    return {
      dataset: 'fashion-mnist',
      networks: [
        {
          key: 'mobilenetv2',
          spec: { family: 'mobilenetv2', preset: 'small', width: 0.25, ...FASHION_MNIST },
          train,
          search,
          budgetFractions: [0.25, 0.5, 0.75],
        },
        {
          key: 'resnet50',
          spec: { family: 'resnet50', preset: 'small', width: 0.1, ...FASHION_MNIST },
          train,
          search,
          budgetFractions: [0.25, 0.5, 0.75],
        },
      ],
      retrain: { epochs: 1, batchSize: 32, maxTrainImages: 96, lr: 0, seed: 1, testImages: 200 },
      latency: { grid: 2, fit: 2, validate: 0, warmupMs: 200 },
      fidelityRandom: 4,
      fidelityMin: 12,
      seedStudy: [2],
      evaluators: 2,
      retrainConcurrency: 2,
      seed: 1,
    };
  }
  const search: SearchRecipe = {
    generations: 4,
    population: 8,
    recalibrationBatches: 4,
    batchSize: 64,
    validationImages: 512,
    seed: 1,
  };
  return {
    dataset: 'fashion-mnist',
    networks: [
      {
        key: 'mobilenetv2',
        spec: { family: 'mobilenetv2', preset: 'small', width: 0.5, ...FASHION_MNIST },
        train: {
          epochs: 1,
          batchSize: 64,
          stepsPerEpoch: 300,
          learningRate: 0,
          seed: 1,
          validationImages: 5000,
        },
        search,
        budgetFractions: [0.25, 0.5, 0.75],
      },
      {
        key: 'resnet50',
        spec: { family: 'resnet50', preset: 'small', width: 0.25, ...FASHION_MNIST },
        train: {
          epochs: 1,
          batchSize: 64,
          stepsPerEpoch: 200,
          learningRate: 0,
          seed: 1,
          validationImages: 5000,
        },
        search,
        budgetFractions: [0.25, 0.5, 0.75],
      },
    ],
    // ~65 images/s per retraining process here (engine's hand-written backward pass), two
    // at a time: 19 networks x 16k images take ~40 minutes; top-1 on the whole test set.
    retrain: { epochs: 1, batchSize: 32, maxTrainImages: 16384, lr: 0, seed: 1, testImages: 0 },
    latency: { grid: 3, fit: 5, validate: 10, warmupMs: 1000 },
    fidelityRandom: 4,
    fidelityMin: 12,
    seedStudy: [2, 3],
    evaluators: 2,
    retrainConcurrency: 2,
    seed: 1,
  };
}
